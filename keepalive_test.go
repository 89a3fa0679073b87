package wsclient

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/internal/rawws"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// conns collects the Conn of every OnConnect.
func collectConns(rec *recorder) chan *Conn {
	ch := make(chan *Conn, 100)
	rec.onConnect = func(c *Conn) error { ch <- c; return nil }
	return ch
}

// timedDisconnects makes rec's OnDisconnect note when it ran.
func timedDisconnects(rec *recorder) chan time.Time {
	ch := make(chan time.Time, 1000)
	rec.decide = func(Disconnect) Decision { ch <- time.Now(); return Decision{} }
	return ch
}

// noEvent fails if one of kinds is among the events recorded so far.
func noEvent(t *testing.T, rec *recorder, kinds ...string) {
	t.Helper()
	for {
		select {
		case ev := <-rec.events:
			for _, k := range kinds {
				if ev.kind == k {
					t.Fatalf("unexpected %s event: %+v", k, ev)
				}
			}
		default:
			return
		}
	}
}

// keepaliveUntilLost runs a client with keepalive timings interval and timeout
// against url until its first connection is lost, and returns its recorder,
// that Disconnect, and how long after OnConnect the OnDisconnect came.
func keepaliveUntilLost(t *testing.T, url string, interval, timeout time.Duration) (*recorder, Disconnect, time.Duration) {
	t.Helper()
	rec := newRecorder()
	times := timedDisconnects(rec)
	connectedAt := make(chan time.Time, 10)
	rec.onConnect = func(*Conn) error { connectedAt <- time.Now(); return nil }
	o := testOptions()
	o.PingInterval, o.PongTimeout = interval, timeout
	startClient(t, mustNew(t, url, rec, o))
	rec.next(t, "connect")
	d := rec.next(t, "disconnect").disc
	return rec, d, (<-times).Sub(<-connectedAt)
}

func TestKeepaliveDetectsBlackholeAndReconnects(t *testing.T) {
	const interval, timeout = 100 * time.Millisecond, 100 * time.Millisecond
	srv := newTestServer(t, serverConfig{})
	px := newFaultProxy(t, srv.addr())
	rec := newRecorder()
	conns := collectConns(rec)
	times := timedDisconnects(rec)
	o := testOptions()
	o.PingInterval, o.PongTimeout = interval, timeout
	o.HandshakeTimeout = 150 * time.Millisecond // attempts into the blackhole time out
	c := mustNew(t, "ws://"+px.Addr()+"/", rec, o)
	startClient(t, c)
	rec.next(t, "connect")
	first := <-conns
	require.Eventually(t, func() bool { return first.RTT() > 0 }, 5*time.Second, time.Millisecond,
		"keepalive works through the proxy")

	px.Blackhole(true) // half-open: both sockets stay up, nothing gets through
	start := time.Now()
	d := rec.next(t, "disconnect").disc
	detected := (<-times).Sub(start)
	t.Logf("blackhole detected after %v (PingInterval %v + PongTimeout %v)", detected, interval, timeout)
	assert.ErrorIs(t, d.Err, ErrKeepaliveTimeout)
	assert.Equal(t, CloseInternalError, CloseStatus(d.Err))
	assert.True(t, d.Connected)
	assert.False(t, d.Suggested.IsStop(), "the default policy reconnects")
	assert.Less(t, detected, interval+timeout+300*time.Millisecond)

	// While the blackhole lasts, attempts time out and are retried.
	d = rec.next(t, "disconnect").disc
	assert.False(t, d.Connected)
	assert.Contains(t, d.Err.Error(), "timed out")
	assert.False(t, d.Suggested.IsStop())

	px.Blackhole(false)
	ev := rec.next(t, "connect")
	assert.Greater(t, ev.gen, uint64(2))
	echoThrough(t, c, rec, TextFrame("back"))
	assert.ErrorIs(t, first.SendText("old"), ErrNotConnected)
}

func TestKeepaliveSilentServerGetsClose1011(t *testing.T) {
	const interval, timeout = 50 * time.Millisecond, 50 * time.Millisecond
	type closeFrame struct {
		code   int
		reason string
	}
	closes := make(chan closeFrame, 10)
	srv := newTestServer(t, serverConfig{serve: func(ws *websocket.Conn, n int) {
		if n > 1 {
			echo(ws)
			return
		}
		ws.SetPingHandler(func(string) error { return nil }) // never answers
		ws.SetCloseHandler(func(code int, reason string) error { closes <- closeFrame{code, reason}; return nil })
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}})
	rec, d, took := keepaliveUntilLost(t, srv.wsURL(), interval, timeout)
	t.Logf("silent server detected %v after OnConnect (PingInterval %v + PongTimeout %v)", took, interval, timeout)
	assert.ErrorIs(t, d.Err, ErrKeepaliveTimeout)
	var ce *CloseError
	require.ErrorAs(t, d.Err, &ce)
	assert.True(t, ce.Local)
	assert.GreaterOrEqual(t, took, interval+timeout, "the first ping goes out after PingInterval, and has PongTimeout")
	assert.Less(t, took, interval+timeout+300*time.Millisecond)
	select {
	case cf := <-closes:
		assert.Equal(t, CloseInternalError, cf.code, "the socket still took writes: the server is told")
		assert.Equal(t, "keepalive timeout", cf.reason)
	case <-time.After(5 * time.Second):
		t.Fatal("the server got no close frame")
	}
	rec.next(t, "connect") // and the policy reconnected
}

// pingCounter serves frames every tick (if tick > 0) and counts the client's
// pings; with answer it answers them.
func pingCounter(pings *atomic.Int32, answer bool, tick time.Duration) func(ws *websocket.Conn, n int) {
	return func(ws *websocket.Conn, n int) {
		ws.SetPingHandler(func(data string) error {
			pings.Add(1)
			if !answer {
				return nil
			}
			err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
			if errors.Is(err, websocket.ErrCloseSent) {
				return nil
			}
			return err
		})
		defer everyTick(tick, func() error {
			ws.SetWriteDeadline(time.Now().Add(time.Second))
			return ws.WriteMessage(websocket.TextMessage, []byte("tick"))
		})()
		echo(ws)
	}
}

func TestKeepaliveBusyConnectionWithoutPongsStaysUp(t *testing.T) {
	// The server sends a frame every 5 ms and never answers a ping: the frames
	// are proof of life enough.
	var pings atomic.Int32
	srv := newTestServer(t, serverConfig{serve: pingCounter(&pings, false, 5*time.Millisecond)})
	rec := newRecorder()
	o := testOptions()
	o.PingInterval, o.PongTimeout = 50*time.Millisecond, 100*time.Millisecond
	c := mustNew(t, srv.wsURL(), rec, o)
	startClient(t, c)
	rec.next(t, "connect")
	require.Eventually(t, func() bool { return pings.Load() >= 10 }, 5*time.Second, time.Millisecond)
	noEvent(t, rec, "disconnect")
	assert.Equal(t, Open, c.State())
	assert.Equal(t, int32(1), srv.conns.Load())
}

func TestKeepaliveBusyHandlerIsNotADeadPeer(t *testing.T) {
	// The handler sits in HandleFrame while the client keeps pinging: the
	// server answers every ping, but the pongs wait unread in the socket.
	var pings atomic.Int32
	srv := newTestServer(t, serverConfig{serve: func(ws *websocket.Conn, n int) {
		ws.WriteMessage(websocket.TextMessage, []byte("block"))
		pingCounter(&pings, true, 0)(ws, n)
	}})
	const interval, timeout = 20 * time.Millisecond, 50 * time.Millisecond
	var blocked time.Duration
	rec := newRecorder()
	conns := collectConns(rec)
	rec.onFrame = func(c *Conn, f Frame) error {
		if string(f.Data) != "block" {
			return nil
		}
		start, from := time.Now(), pings.Load()
		// Block until 8 more pings were sent: far longer than PongTimeout,
		// and long enough for the pongs of the first ones to be overdue.
		for (pings.Load() < from+8 || time.Since(start) < 3*timeout) && time.Since(start) < 2*time.Second {
			time.Sleep(time.Millisecond)
		}
		blocked = time.Since(start)
		return nil
	}
	o := testOptions()
	o.PingInterval, o.PongTimeout = interval, timeout
	c := mustNew(t, srv.wsURL(), rec, o)
	startClient(t, c)
	rec.next(t, "connect")
	conn := <-conns
	assert.Equal(t, "block", string(rec.next(t, "frame").frame.Data))
	echoThrough(t, c, rec, TextFrame("still here"))
	t.Logf("the handler blocked for %v (PongTimeout %v)", blocked, timeout)
	assert.Greater(t, blocked, 2*timeout)
	assert.GreaterOrEqual(t, pings.Load(), int32(8), "pings went on while the handler was busy")
	noEvent(t, rec, "disconnect")
	assert.Equal(t, uint64(1), conn.Generation())
	require.Eventually(t, func() bool { return conn.RTT() > 0 }, 5*time.Second, time.Millisecond)
}

func TestKeepaliveDisabledStillAnswersServerPings(t *testing.T) {
	var pingsOff, pingsOn atomic.Int32
	serverPong := make(chan string, 1)
	srv := newTestServer(t, serverConfig{serve: func(ws *websocket.Conn, n int) {
		if n == 1 { // the client with keepalive off
			ws.SetPongHandler(func(s string) error { serverPong <- s; return nil })
			ws.WriteControl(websocket.PingMessage, []byte("server ping"), time.Now().Add(time.Second))
			pingCounter(&pingsOff, true, 0)(ws, n)
			return
		}
		pingCounter(&pingsOn, true, 0)(ws, n)
	}})

	off := newRecorder()
	o := testOptions()
	o.PingInterval = -1
	o.PongTimeout = time.Millisecond // irrelevant when off
	cOff := mustNew(t, srv.wsURL(), off, o)
	startClient(t, cOff)
	off.next(t, "connect")
	select {
	case s := <-serverPong:
		assert.Equal(t, "server ping", s)
	case <-time.After(5 * time.Second):
		t.Fatal("the server's ping was not answered")
	}

	// A second client, with keepalive on, shows how many pings the first
	// would have sent meanwhile.
	on := newRecorder()
	o = testOptions()
	o.PingInterval = 10 * time.Millisecond
	startClient(t, mustNew(t, srv.wsURL(), on, o))
	on.next(t, "connect")
	require.Eventually(t, func() bool { return pingsOn.Load() >= 5 }, 5*time.Second, time.Millisecond)
	assert.Zero(t, pingsOff.Load(), "keepalive off: no pings")
	noEvent(t, off, "disconnect")
}

func TestKeepaliveRTT(t *testing.T) {
	const latency = 25 * time.Millisecond
	srv := newTestServer(t, serverConfig{})
	px := newFaultProxy(t, srv.addr())
	px.SetLatency(latency)
	rec := newRecorder()
	conns := collectConns(rec)
	o := testOptions()
	o.PingInterval, o.PongTimeout = 20*time.Millisecond, time.Second
	c := mustNew(t, "ws://"+px.Addr()+"/", rec, o)
	startClient(t, c)
	rec.next(t, "connect")
	conn := <-conns
	assert.Zero(t, conn.RTT(), "no ping answered yet")
	require.Eventually(t, func() bool { return conn.RTT() > 0 }, 5*time.Second, time.Millisecond)
	t.Logf("RTT %v through a proxy adding %v each way", conn.RTT(), latency)
	assert.GreaterOrEqual(t, conn.RTT(), 2*latency)
	assert.Less(t, conn.RTT(), time.Second)
}

func TestKeepaliveBelongsToOneConnection(t *testing.T) {
	// The first connection is slow: its pongs come back after PongTimeout, and
	// arrive, late, once the connection is gone. The second one is fast and
	// must neither inherit the old connection's timer nor its late pong.
	const interval, timeout, latency = 20 * time.Millisecond, 40 * time.Millisecond, 150 * time.Millisecond
	var pings atomic.Int32
	srv := newTestServer(t, serverConfig{serve: pingCounter(&pings, true, 0)})
	px := newFaultProxy(t, srv.addr())
	px.SetLatency(latency)
	rec := newRecorder()
	conns := collectConns(rec)
	rec.decide = func(Disconnect) Decision {
		px.SetLatency(0) // the next connection is fast
		return Decision{}
	}
	o := testOptions()
	o.PingInterval, o.PongTimeout = interval, timeout
	c := mustNew(t, "ws://"+px.Addr()+"/", rec, o)
	startClient(t, c)
	rec.next(t, "connect")
	old := <-conns
	d := rec.next(t, "disconnect").disc
	assert.ErrorIs(t, d.Err, ErrKeepaliveTimeout)
	rec.next(t, "connect")
	cur := <-conns
	require.Eventually(t, func() bool { return cur.RTT() > 0 }, 5*time.Second, time.Millisecond)
	from := pings.Load()
	require.Eventually(t, func() bool { return pings.Load() >= from+10 }, 5*time.Second, time.Millisecond)
	noEvent(t, rec, "disconnect")
	assert.Less(t, cur.RTT(), latency, "the new connection's RTT is its own")
	assert.Zero(t, old.RTT(), "the old connection's late pong changed nothing")
	echoThrough(t, c, rec, TextFrame("fast"))
}

func TestKeepaliveStopsWhileClosing(t *testing.T) {
	// The server neither answers pings nor the close: the close handshake,
	// bounded by CloseTimeout, must decide, not a ping written after the
	// close frame (an error) nor the keepalive deadline.
	srv := newTestServer(t, serverConfig{serve: func(ws *websocket.Conn, _ int) { discardRaw(ws) }})
	rec := newRecorder()
	rec.onConnect = func(c *Conn) error { return c.Close(CloseNormal, "bye") }
	o := testOptions()
	o.PingInterval, o.PongTimeout = 5*time.Millisecond, 10*time.Millisecond
	o.CloseTimeout = 200 * time.Millisecond
	c := mustNew(t, srv.wsURL(), rec, o)
	err := c.Run(ctxTimeout(t, 5*time.Second))
	assert.NoError(t, err, "a close the handler asked for ends Run with nil")
	d := rec.next(t, "disconnect").disc
	var ce *CloseError
	require.ErrorAs(t, d.Err, &ce)
	assert.True(t, ce.Local)
	assert.Equal(t, "bye", ce.Reason)
	assert.NoError(t, ce.Err)
	assert.True(t, d.Suggested.IsStop())
}

func TestKeepaliveTimeoutLongerThanInterval(t *testing.T) {
	// PongTimeout > PingInterval: pings keep their cadence while one is
	// unanswered, and the deadline stays that of the oldest one.
	const interval, timeout = 20 * time.Millisecond, 100 * time.Millisecond
	var pings atomic.Int32
	srv := newTestServer(t, serverConfig{serve: pingCounter(&pings, false, 0)})
	_, d, took := keepaliveUntilLost(t, srv.wsURL(), interval, timeout)
	t.Logf("detected %v after OnConnect, %d pings sent (PingInterval %v, PongTimeout %v)", took, pings.Load(), interval, timeout)
	assert.ErrorIs(t, d.Err, ErrKeepaliveTimeout)
	assert.GreaterOrEqual(t, took, interval+timeout)
	assert.Less(t, took, interval+timeout+300*time.Millisecond)
	assert.GreaterOrEqual(t, pings.Load(), int32(2), "pings kept their cadence while waiting")
}

// TestKeepaliveFindsABlackholeWhileSending: on real sockets, a peer that goes
// silent (a blackhole) while the client is sending a message too large for
// the socket buffers is found by the keepalive, not by the write timeout: the
// ping does not wait behind the blocked write. The blocked Send fails then too.
func TestKeepaliveFindsABlackholeWhileSending(t *testing.T) {
	testDone := make(chan struct{})
	srv, err := rawws.NewServer(func(*rawws.Conn) { <-testDone }) // upgrades, then neither reads nor writes
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(testDone) })
	rec := newRecorder()
	o := testOptions()
	o.PingInterval, o.PongTimeout = 300*time.Millisecond, 300*time.Millisecond
	o.WriteTimeout = time.Hour // only the keepalive can find it
	c := mustNew(t, srv.URL(), rec, o)
	startClient(t, c)
	rec.next(t, "connect")
	sendErr := make(chan error, 1)
	go func() { sendErr <- c.Send(context.Background(), BinaryFrame(make([]byte, 256<<20))) }()
	d := rec.next(t, "disconnect").disc
	assert.ErrorIs(t, d.Err, ErrKeepaliveTimeout, "%v", d.Err)
	select {
	case err := <-sendErr:
		assert.Error(t, err, "the blocked Send fails with the connection")
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked Send did not return")
	}
}
