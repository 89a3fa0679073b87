package wsclient

import (
	"encoding/binary"
	"fmt"
	"time"
)

// keepalive pings the peer every interval and declares it dead when nothing at
// all (no pong, no frame, not a byte of a message) arrived within timeout of a
// ping. It is one timer in the owner's select, not a goroutine, and belongs to
// one connection: serve stops it when the connection ends, and pongs reach only
// the Conn whose reader read them, so a late pong of an old connection touches
// nothing.
//
// Pings go out every interval, whether or not the peer answered. The deadline
// belongs to the oldest ping that nothing has arrived since: a newer ping sent
// while nothing arrived does not move it, and any arrival answers every ping
// out. So a peer that goes silent is found within interval + timeout, also
// when timeout > interval.
//
// A busy handler is not a dead peer: while the reader sits inside a callback
// (or waits for the handler lock) the pong waits unread in the socket, so a
// deadline that runs out while the reader was seen busy is extended by timeout
// instead; once the reader is free again, a silent peer is found within about
// 2*timeout.
//
// Conn.RTT is the round trip of the last ping timed: while a timed ping is
// unanswered, later pings are sent but not timed (see ping).
//
// Detection never depends on being able to write: a ping never waits for the
// socket (the transport queues it behind a write in progress), so a ping stuck
// behind a blocked write (a silent peer with the send buffer full) simply goes
// unanswered, and the peer is found within interval + timeout all the same.
//
// Once a close frame went out (Client.Close, Conn.Close, or the answer to the
// server's close) the keepalive stops: no ping may follow a close frame, and
// CloseTimeout bounds the wait for the server's close.
type keepalive struct {
	conn              *Conn
	clk               clock
	interval, timeout time.Duration
	timer             timer // nil when keepalive is off
	nextPing          time.Time
	waiting           bool      // a ping is out and nothing arrived since
	deadline          time.Time // when the oldest unanswered ping runs out
	lifeAtPing        uint64    // conn.life when that ping went out
	busySeen          bool      // the reader was seen busy since that ping

	// Round trip: conn.pingSent holds the send time of one timed ping, and
	// the reader's onPong sets conn.rtt when the pong with that payload comes
	// back. A timed ping stays timed until its pong came back (so RTT works
	// also when it is longer than interval) or for rttPatience.
	timedAt    int64 // UnixNano of the timed ping, 0 before the first ping
	rttAtTimed int64 // conn.rtt when the timed ping went out
}

// rttPatience is how long, in units of interval + timeout, a timed ping may
// stay unanswered (a peer that never answers pings but sends frames) before a
// later ping is timed instead.
const rttPatience = 4

// startKeepalive starts the keepalive of conn; interval <= 0 turns it off
// (server pings are still answered, by the reader).
func startKeepalive(conn *Conn, clk clock, interval, timeout time.Duration) *keepalive {
	k := &keepalive{conn: conn, clk: clk, interval: interval, timeout: timeout}
	if interval > 0 {
		k.nextPing = clk.Now().Add(interval)
		k.timer = clk.NewTimer(interval)
	}
	return k
}

// C is the channel the owner waits on; nil (never ready) when keepalive is off.
func (k *keepalive) C() <-chan time.Time {
	if k.timer == nil {
		return nil
	}
	return k.timer.C()
}

func (k *keepalive) stop() {
	if k.timer != nil {
		k.timer.Stop()
	}
}

// tick runs on the owner goroutine when the timer fires: judge the oldest
// unanswered ping if its deadline has come, send a ping if it is time, and
// set the timer for whichever comes next.
func (k *keepalive) tick() {
	if !k.conn.writable() {
		return // the close handshake or the reader's end decides now
	}
	now := k.clk.Now()
	// Read life before a ping goes out, so that its pong always changes it.
	life, busy := k.conn.w.Life(), k.conn.inHandler.Load()
	if k.waiting && !now.Before(k.deadline) {
		switch {
		case life != k.lifeAtPing:
			k.waiting = false // alive
		case busy || k.busySeen:
			k.deadline, k.busySeen = now.Add(k.timeout), busy
		default:
			k.conn.client.stats.keepaliveTimeouts.Add(1)
			k.conn.fail(CloseInternalError, "keepalive timeout",
				fmt.Errorf("%w (nothing received within %v of a ping)", ErrKeepaliveTimeout, k.timeout))
			return
		}
	}
	if !now.Before(k.nextPing) {
		if !k.ping(now) {
			return
		}
		k.nextPing = now.Add(k.interval)
		if !k.waiting || life != k.lifeAtPing {
			k.waiting, k.deadline, k.lifeAtPing, k.busySeen = true, now.Add(k.timeout), life, busy
		} else {
			k.busySeen = k.busySeen || busy
		}
	}
	next := k.nextPing
	if k.waiting && k.deadline.Before(next) {
		next = k.deadline
	}
	k.timer.Reset(next.Sub(now))
}

// ping queues a keepalive ping; it never waits for the socket. It reports
// false when the keepalive must stop: a close frame went out first, or the
// connection has ended.
func (k *keepalive) ping(now time.Time) bool {
	sent := now.UnixNano()
	if k.timedAt == 0 || k.conn.rtt.Load() != k.rttAtTimed ||
		now.Sub(time.Unix(0, k.timedAt)) > rttPatience*(k.interval+k.timeout) {
		k.timedAt, k.rttAtTimed = sent, k.conn.rtt.Load()
		k.conn.pingSent.Store(sent)
	}
	// Counted first: its pong (and the RTT) can be in before Ping returns.
	k.conn.client.stats.pings.Add(1)
	if err := k.conn.w.Ping(pingPayload(sent)); err != nil {
		// Not sent after all: a close went out meanwhile, or the connection
		// ended. They decide.
		k.conn.client.stats.pings.Add(^uint64(0))
		return false
	}
	return true
}

// pingPayload is the 8 bytes of a keepalive ping: its send time, to match the pong.
func pingPayload(unixNano int64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(unixNano))
}
