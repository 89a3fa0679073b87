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
	// of the last disconnect; zero as soon as the open connection has been
	// open for Options.StableAfter).
	Failures int
	// LastCause is the cause of the last disconnect or failed attempt (nil
	// before the first), LastCloseCode the code of the last close frame sent
	// or received, or 1006 (CloseAbnormal) for a connection that ended
	// without one (0 before the first).
	LastCause     error
	LastCloseCode int
	// Data messages (Text, Binary) received (as delivered, after inflating)
	// and sent (as given to Send), with their payload bytes.
	Received, Sent Traffic
	// PingsSent counts keepalive pings; KeepaliveTimeouts the connections
	// the keepalive found dead.
	PingsSent, KeepaliveTimeouts uint64
	// RTT is the round trip of the last timed keepalive ping (0: none yet);
	// LastPong is when the last pong arrived (zero: none yet), for a
	// last-heartbeat age.
	RTT      time.Duration
	LastPong time.Time
	// Outbox and InfoQueue are how many frames wait for the next connection
	// and how many Info messages wait for HandleInfo.
	Outbox, InfoQueue int
	// Uptime is how long the current connection has been open (0: none).
	Uptime time.Duration
}

// Traffic counts data messages of one direction, by type.
type Traffic struct {
	TextMessages, TextBytes     uint64
	BinaryMessages, BinaryBytes uint64
}

// Messages is the count of messages of both types.
func (t Traffic) Messages() uint64 { return t.TextMessages + t.BinaryMessages }

// Bytes is the payload bytes of both types.
func (t Traffic) Bytes() uint64 { return t.TextBytes + t.BinaryBytes }

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
		Received:          s.in.load(),
		Sent:              s.out.load(),
		PingsSent:         s.pings.Load(),
		KeepaliveTimeouts: s.keepaliveTimeouts.Load(),
		RTT:               time.Duration(s.rtt.Load()),
	}
	if t := s.lastPong.Load(); t != 0 {
		st.LastPong = time.Unix(0, t)
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
		if st.Uptime >= c.opts.StableAfter {
			// Stable now: the count starts afresh, also while it stays open.
			st.Failures = 0
		}
	}
	return st
}

// counters are the client's running totals, for Stats. The reader alone adds
// to the received ones, so they are never contended; the sent ones are added
// by whichever goroutine sent; the owner sets the rest.
type counters struct {
	in, out           trafficCounters
	pings             atomic.Uint64
	keepaliveTimeouts atomic.Uint64
	connects          atomic.Uint64
	disconnects       atomic.Uint64
	generation        atomic.Uint64
	failures          atomic.Int64
	lastCloseCode     atomic.Int64
	lastCause         atomic.Pointer[error]
	rtt               atomic.Int64
	lastPong          atomic.Int64
}

type trafficCounters struct {
	textMsgs, textBytes, binMsgs, binBytes atomic.Uint64
}

func (t *trafficCounters) add(f Frame) {
	switch f.Type {
	case Text:
		t.textMsgs.Add(1)
		t.textBytes.Add(uint64(len(f.Data)))
	case Binary:
		t.binMsgs.Add(1)
		t.binBytes.Add(uint64(len(f.Data)))
	}
}

func (t *trafficCounters) load() Traffic {
	return Traffic{TextMessages: t.textMsgs.Load(), TextBytes: t.textBytes.Load(),
		BinaryMessages: t.binMsgs.Load(), BinaryBytes: t.binBytes.Load()}
}

func (s *counters) received(f Frame) { s.in.add(f) }
func (s *counters) sent(f Frame)     { s.out.add(f) }

// disconnected notes a disconnect's cause and attempt count.
func (s *counters) disconnected(d Disconnect) {
	err := d.Err
	s.lastCause.Store(&err)
	s.failures.Store(int64(d.Attempt))
	if code := CloseStatus(err); code > 0 {
		s.lastCloseCode.Store(int64(code))
	}
}
