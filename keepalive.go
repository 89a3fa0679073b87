package wsclient

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/gorilla/websocket"
)

// keepalive pings the peer every interval and declares it dead when nothing at
// all (no pong, no frame, not a byte of a message) arrived within timeout of a
// ping. It is a timer in the owner's select, not a goroutine, and belongs to one
// connection: it stops with it, so a late pong of an old connection touches nothing.
//
// A busy handler is not a dead peer: while the reader sits inside HandleFrame the
// pong waits unread in the socket, so the deadline is extended instead.
// Pings go out at a steady cadence, so a peer that goes silent is found within
// interval + timeout.
type keepalive struct {
	conn              *Conn
	interval, timeout time.Duration
	timer             *time.Timer
	waiting           bool   // a ping is out and unanswered
	lifeAtPing        uint64 // conn.life when the ping went out
	busyAtPing        bool   // the handler held the reader when the ping went out
}

func startKeepalive(conn *Conn, interval, timeout time.Duration) *keepalive {
	k := &keepalive{conn: conn, interval: interval, timeout: timeout}
	if interval > 0 {
		k.timer = time.NewTimer(interval)
	}
	return k
}

// C is the channel the owner waits on; nil (never ready) when keepalive is off.
func (k *keepalive) C() <-chan time.Time {
	if k.timer == nil {
		return nil
	}
	return k.timer.C
}

func (k *keepalive) stop() {
	if k.timer != nil {
		k.timer.Stop()
	}
}

// tick runs when the timer fires: send a ping, or judge the last one.
func (k *keepalive) tick() {
	life, busy := k.conn.life.Load(), k.conn.inHandler.Load()
	switch {
	case !k.waiting:
		k.ping(life, busy)
	case life != k.lifeAtPing:
		k.waiting = false // alive; the next ping keeps the cadence
		k.timer.Reset(max(k.interval-k.timeout, 0))
	case busy || k.busyAtPing:
		k.lifeAtPing, k.busyAtPing = life, busy
		k.timer.Reset(k.timeout)
	default:
		k.conn.fail(CloseInternalError, "keepalive timeout",
			fmt.Errorf("%w (%v)", ErrKeepaliveTimeout, k.timeout))
	}
}

func (k *keepalive) ping(life uint64, busy bool) {
	k.waiting, k.lifeAtPing, k.busyAtPing = true, life, busy
	now := time.Now()
	k.conn.pingSent.Store(now.UnixNano())
	err := k.conn.ws.WriteControl(websocket.PingMessage, pingPayload(now.UnixNano()), now.Add(k.conn.client.opts.WriteTimeout))
	if err != nil {
		k.conn.end(fmt.Errorf("wsclient: write ping: %w", err), 0)
		return
	}
	k.timer.Reset(k.timeout)
}

// pingPayload is the 8 bytes of a keepalive ping: its send time, to match the pong.
func pingPayload(unixNano int64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(unixNano))
}
