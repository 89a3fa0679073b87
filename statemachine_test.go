package wsclient

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/internal/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ownerIn builds an owner in state s, with what that state has: a dial under
// way (Connecting), an open connection on the fake transport (Open, Closing),
// a scheduled retry (Reconnecting).
func ownerIn(t *testing.T, s State) (*owner, *fakeNet, *fakeWire) {
	t.Helper()
	c, n, clk := fakeClient(t, &BaseHandler{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	o := &owner{c: c, ctx: ctx, url: c.url, header: c.opts.Header, bo: newBackoff(c.opts.Backoff)}
	var w *fakeWire
	switch s {
	case Connecting:
		o.startDial(input{})
	case Open, Closing:
		w = newFakeWire()
		o.gen = 1
		o.conn = newConn(c, 1, w)
		c.setCurrent(o.conn)
		go o.conn.readLoop()
		o.ka = startKeepalive(o.conn, clk, time.Second, time.Second)
		if s == Closing {
			o.conn.startClose(CloseNormal, "")
			o.closeTimer = clk.NewTimer(time.Second)
		}
		conn := o.conn
		t.Cleanup(func() { w.Abort(); <-conn.readerDone })
	case Reconnecting:
		o.retryTimer = clk.NewTimer(time.Second)
	}
	c.m.state.Store(int32(s))
	t.Cleanup(func() {
		if o.dialRes != nil {
			o.dialCancel()
			<-o.dialRes
		}
	})
	return o, n, w
}

// inputFor is a plausible input of event ev.
func inputFor(ev event, n *fakeNet) input {
	switch ev {
	case evDialed:
		return input{ev: ev, w: newFakeWire()}
	case evDialFailed:
		return input{ev: ev, err: errors.New("refused")}
	case evLost:
		return input{ev: ev}
	case evReconnect:
		return input{ev: ev, delay: time.Second}
	case evCtxDone:
		return input{ev: ev, err: context.Canceled}
	}
	return input{ev: ev}
}

// TestTransitionTableIsTheBehaviour walks every (state, event) pair: a pair in
// the table moves to the state it names and runs its action; any other pair
// changes nothing. The owner loop has no other way to change state.
func TestTransitionTableIsTheBehaviour(t *testing.T) {
	for s := Idle; s <= Closed; s++ {
		for ev := event(0); ev < numEvents; ev++ {
			t.Run(s.String()+"/"+ev.String(), func(t *testing.T) {
				o, n, w := ownerIn(t, s)
				in := inputFor(ev, n)
				if ev == evLost && o.conn != nil {
					o.conn.end(&CloseError{Code: CloseNormal}, 0)
					<-o.conn.readerDone
				}
				if ev == evDialed {
					defer in.w.Abort()
				}
				tr, ok := transitions[s][ev]
				o.handle(in)
				if !ok {
					assert.Equal(t, s, o.c.State(), "an event not in the table changes nothing")
					assert.Empty(t, o.queue, "and posts nothing")
					return
				}
				assert.Equal(t, tr.to, o.c.State())
				switch { // the action ran: each leaves its mark
				case ev == evRun, s == Reconnecting && ev == evRetry:
					assert.NotNil(t, o.dialRes, "a dial is under way")
				case ev == evDialed:
					assert.NotNil(t, o.conn, "the connection is open")
					o.conn.end(ErrClosed, 0)
					<-o.conn.readerDone
				case ev == evDialFailed, ev == evLost:
					require.Len(t, o.queue, 1, "a decision is posted")
					assert.Contains(t, []event{evReconnect, evStop}, o.queue[0].ev)
				case (s == Connecting) && (ev == evClose || ev == evCtxDone):
					require.Len(t, o.queue, 1)
					assert.Equal(t, evDialFailed, o.queue[0].ev, "the dial was cut")
				case ev == evReconnect:
					assert.NotNil(t, o.retryTimer, "the retry is scheduled")
				case ev == evClose && (s == Open || s == Closing), ev == evConnClose:
					assert.NotNil(t, o.closeTimer, "CloseTimeout runs")
					if ev == evClose {
						sent, _, _ := w.closeFrame()
						assert.True(t, sent, "the close frame went out")
					}
				case ev == evCloseTimeout, ev == evAbort, ev == evCtxDone && (s == Open || s == Closing):
					assert.True(t, o.conn.ended(), "the connection was dropped")
				case ev == evStop, tr.to == Closed:
					assert.Nil(t, o.retryTimer, "nothing is left scheduled")
				}
			})
		}
	}
}

// TestKeepaliveFindsASilentPeerWhileAWriteIsStuck: a peer that goes silent
// while the client is sending (its send buffer full, every write blocked) is
// found within PingInterval + PongTimeout: the ping does not wait behind the
// blocked write, and the blocked Send returns an error then too.
func TestKeepaliveFindsASilentPeerWhileAWriteIsStuck(t *testing.T) {
	o := testOptions()
	o.PingInterval, o.PongTimeout = 300*time.Millisecond, 300*time.Millisecond
	o.WriteTimeout = time.Hour // the keepalive, not the write timeout, must find it
	rec := newRecorder()
	c, n, clk := fakeClient(t, rec, o)
	w := n.accept()
	w.block = make(chan struct{}) // never unblocked: a blackhole
	runFake(t, c)
	rec.next(t, "connect")
	clk.waitTimers(t, 1) // the keepalive timer
	sendErr := make(chan error, 1)
	go func() { sendErr <- c.Send(context.Background(), TextFrame("stuck")) }()
	clk.Advance(300 * time.Millisecond) // the ping goes out (queued behind the write)
	waitFor(t, "the ping", func() bool { w.mu.Lock(); defer w.mu.Unlock(); return len(w.pings) == 1 })
	clk.waitTimers(t, 1)
	clk.Advance(300 * time.Millisecond) // PongTimeout after it: dead
	d := rec.next(t, "disconnect").disc
	assert.ErrorIs(t, d.Err, ErrKeepaliveTimeout)
	assert.Equal(t, 600*time.Millisecond, d.Uptime, "found at PingInterval + PongTimeout")
	select {
	case err := <-sendErr:
		assert.Error(t, err, "the blocked Send fails with the connection")
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked Send did not return")
	}
}

// TestKeepaliveBusyHandlerIsNotDead: while HandleFrame runs, a pong waits
// unread; the deadline is extended instead of failing the connection.
func TestKeepaliveBusyHandlerIsNotDead(t *testing.T) {
	o := testOptions()
	o.PingInterval, o.PongTimeout = time.Second, time.Second
	rec := newRecorder()
	release := make(chan struct{})
	rec.onFrame = func(*Conn, Frame) error { <-release; return nil }
	c, n, clk := fakeClient(t, rec, o)
	w := n.accept()
	runFake(t, c)
	rec.next(t, "connect")
	clk.waitTimers(t, 1)
	w.send(transport.OpText, "slow")
	rec.next(t, "frame") // the handler is now busy
	for range 5 {
		clk.Advance(time.Second)
		clk.waitTimers(t, 1)
	}
	close(release)
	noEvent(t, rec, "disconnect")
	assert.Equal(t, Open, c.State())
}
