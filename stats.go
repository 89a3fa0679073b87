package wsclient

import (
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a client's counters and state, for dashboards and
// fleets. Counters start at zero with New and only grow.
type Stats struct {
	// State is the current state, entered at StateSince.
	State      State
	StateSince time.Time
	// Generation numbers the attempts so far.
	Generation uint64
	// Connects counts the handshakes that succeeded, Disconnects the open
	// connections that ended.
	Connects, Disconnects uint64
	// Failures is the current count of consecutive failures (Disconnect.Attempt
	// of the last disconnect; zero once a connection stayed open for
	// Options.StableAfter).
	Failures int
	// LastCause is the cause of the last disconnect or failed attempt (nil
	// before the first), LastCloseCode the code of the last close frame sent
	// or received (0 before the first).
	LastCause     error
	LastCloseCode int
	// Messages and payload bytes of data messages (Text, Binary) received
	// (as delivered, after inflating) and sent (as given to Send).
	MessagesReceived, BytesReceived uint64
	MessagesSent, BytesSent         uint64
	// PingsSent counts keepalive pings; KeepaliveTimeouts the connections
	// the keepalive found dead.
	PingsSent, KeepaliveTimeouts uint64
	// RTT is the round trip of the last timed keepalive ping (0: none yet).
	RTT time.Duration
	// Outbox and InfoQueue are how many frames wait for the next connection
	// and how many Info messages wait for HandleInfo.
	Outbox, InfoQueue int
	// Uptime is how long the current connection has been open (0: none).
	Uptime time.Duration
}

// Stats returns a snapshot of the client's counters and state. It is cheap
// (a few atomic loads and one short lock) and safe from any goroutine,
// callbacks included.
func (c *Client) Stats() Stats {
	s := &c.stats
	st := Stats{
		State:             c.m.current(),
		StateSince:        time.Unix(0, c.m.since.Load()),
		Generation:        s.generation.Load(),
		Connects:          s.connects.Load(),
		Disconnects:       s.disconnects.Load(),
		Failures:          int(s.failures.Load()),
		LastCloseCode:     int(s.lastCloseCode.Load()),
		MessagesReceived:  s.msgsIn.Load(),
		BytesReceived:     s.bytesIn.Load(),
		MessagesSent:      s.msgsOut.Load(),
		BytesSent:         s.bytesOut.Load(),
		PingsSent:         s.pings.Load(),
		KeepaliveTimeouts: s.keepaliveTimeouts.Load(),
		RTT:               time.Duration(s.rtt.Load()),
	}
	if p := s.lastCause.Load(); p != nil {
		st.LastCause = *p
	}
	c.mu.Lock()
	st.Outbox, st.InfoQueue = len(c.outbox), len(c.infos)
	cur := c.cur
	c.mu.Unlock()
	if cur != nil {
		st.Uptime = c.clk.Now().Sub(cur.opened)
	}
	return st
}

// counters are the client's running totals, for Stats. The reader alone adds
// to the received ones, so they are never contended; the sent ones are added
// by whichever goroutine sent; the owner sets the rest.
type counters struct {
	msgsIn, bytesIn   atomic.Uint64
	msgsOut, bytesOut atomic.Uint64
	pings             atomic.Uint64
	keepaliveTimeouts atomic.Uint64
	connects          atomic.Uint64
	disconnects       atomic.Uint64
	generation        atomic.Uint64
	failures          atomic.Int64
	lastCloseCode     atomic.Int64
	lastCause         atomic.Pointer[error]
	rtt               atomic.Int64
}

func (s *counters) received(f Frame) {
	if f.Type == Text || f.Type == Binary {
		s.msgsIn.Add(1)
		s.bytesIn.Add(uint64(len(f.Data)))
	}
}

func (s *counters) sent(f Frame) {
	if f.Type == Text || f.Type == Binary {
		s.msgsOut.Add(1)
		s.bytesOut.Add(uint64(len(f.Data)))
	}
}

// disconnected notes a disconnect's cause and attempt count.
func (s *counters) disconnected(d Disconnect) {
	err := d.Err
	s.lastCause.Store(&err)
	s.failures.Store(int64(d.Attempt))
	if code := CloseStatus(err); code > 0 {
		s.lastCloseCode.Store(int64(code))
	}
}
