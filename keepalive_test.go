package wsclient

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/wstest"
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
// against srv, whose first connection reads but answers no ping, until that
// connection is lost, and returns the client's recorder, the server's side of
// the connection, its Disconnect, and how long after OnConnect the
// OnDisconnect came.
func keepaliveUntilLost(t *testing.T, srv *wstest.Server, interval, timeout time.Duration) (*recorder, *wstest.Conn, Disconnect, time.Duration) {
	t.Helper()
	rec := newRecorder()
	times := timedDisconnects(rec)
	connectedAt := make(chan time.Time, 10)
	rec.onConnect = func(*Conn) error { connectedAt <- time.Now(); return nil }
	o := testOptions()
	o.PingInterval, o.PongTimeout = interval, timeout
	startClient(t, mustNew(t, srv.URL(), rec, o))
	// At once: the first ping goes out after PingInterval (an earlier answer
	// would only delay the end by one interval, well within the bounds).
	sc := nextConn(t, srv)
	sc.SetAnswerPings(false)
	rec.next(t, "connect")
	d := rec.next(t, "disconnect").disc
	took := (<-times).Sub(<-connectedAt)
	if _, answered := sc.Pings(); answered > 0 {
		t.Logf("%d ping(s) answered before SetAnswerPings(false)", answered)
	}
	return rec, sc, d, took
}

func TestKeepaliveDetectsBlackholeAndReconnects(t *testing.T) {
	const interval, timeout = 100 * time.Millisecond, 100 * time.Millisecond
	srv := wstest.Start(t, &wstest.Options{Echo: true})
	px := srv.Network()
	rec := newRecorder()
	conns := collectConns(rec)
	times := timedDisconnects(rec)
	o := testOptions()
	o.PingInterval, o.PongTimeout = interval, timeout
	o.HandshakeTimeout = 150 * time.Millisecond // attempts into the blackhole time out
	c := mustNew(t, srv.URL(), rec, o)
	startClient(t, c)
	rec.next(t, "connect")
	first := <-conns
	require.Eventually(t, func() bool { return first.RTT() > 0 }, 5*time.Second, time.Millisecond,
		"keepalive works through the proxy")

	px.SetBlackhole(true) // half-open: both sockets stay up, nothing gets through
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

	px.SetBlackhole(false)
	ev := rec.next(t, "connect")
	assert.Greater(t, ev.gen, uint64(2))
	echoThrough(t, c, rec, TextFrame("back"))
	assert.ErrorIs(t, first.SendText("old"), ErrNotConnected)
}

func TestKeepaliveSilentServerGetsClose1011(t *testing.T) {
	const interval, timeout = 50 * time.Millisecond, 50 * time.Millisecond
	srv := wstest.Start(t, &wstest.Options{Echo: true})
	rec, sc, d, took := keepaliveUntilLost(t, srv, interval, timeout)
	t.Logf("silent server detected %v after OnConnect (PingInterval %v + PongTimeout %v)", took, interval, timeout)
	assert.ErrorIs(t, d.Err, ErrKeepaliveTimeout)
	var ce *CloseError
	require.ErrorAs(t, d.Err, &ce)
	assert.True(t, ce.Local)
	assert.GreaterOrEqual(t, took, interval+timeout, "the first ping goes out after PingInterval, and has PongTimeout")
	assert.Less(t, took, interval+timeout+300*time.Millisecond)
	code, reason, err := sc.WaitClosed(t.Context())
	require.NoError(t, err, "the server got no close frame")
	assert.Equal(t, CloseInternalError, code, "the socket still took writes: the server is told")
	assert.Equal(t, "keepalive timeout", reason)
	rec.next(t, "connect") // and the policy reconnected
}

// pingsReceived is how many pings the client sent on the server's connection sc.
func pingsReceived(sc *wstest.Conn) int {
	n, _ := sc.Pings()
	return n
}

func TestKeepaliveBusyConnectionWithoutPongsStaysUp(t *testing.T) {
	// The server sends a frame every 5 ms and never answers a ping: the frames
	// are proof of life enough.
	srv := wstest.Start(t, &wstest.Options{Echo: true})
	rec := newRecorder()
	o := testOptions()
	o.PingInterval, o.PongTimeout = 50*time.Millisecond, 100*time.Millisecond
	c := mustNew(t, srv.URL(), rec, o)
	startClient(t, c)
	sc := nextConn(t, srv)
	sc.SetAnswerPings(false)
	t.Cleanup(everyTick(5*time.Millisecond, func() error { return sc.SendText("tick") }))
	rec.next(t, "connect")
	require.NoError(t, srv.Wait(t.Context(), func(wstest.Stats) bool { return pingsReceived(sc) >= 10 }))
	noEvent(t, rec, "disconnect")
	assert.Equal(t, Open, c.State())
	assert.Equal(t, 1, srv.Stats().Requests)
}

func TestKeepaliveBusyHandlerIsNotADeadPeer(t *testing.T) {
	// The handler sits in HandleFrame while the client keeps pinging: the
	// server answers every ping, but the pongs wait unread in the socket.
	srv := wstest.Start(t, &wstest.Options{Echo: true})
	var server atomic.Pointer[wstest.Conn] // set before "block" is sent
	pings := func() int { return pingsReceived(server.Load()) }
	const interval, timeout = 20 * time.Millisecond, 50 * time.Millisecond
	var blocked time.Duration
	rec := newRecorder()
	conns := collectConns(rec)
	rec.onFrame = func(c *Conn, f Frame) error {
		if string(f.Data) != "block" {
			return nil
		}
		start, from := time.Now(), pings()
		// Block until 8 more pings were sent: far longer than PongTimeout,
		// and long enough for the pongs of the first ones to be overdue.
		for (pings() < from+8 || time.Since(start) < 3*timeout) && time.Since(start) < 2*time.Second {
			time.Sleep(time.Millisecond)
		}
		blocked = time.Since(start)
		return nil
	}
	o := testOptions()
	o.PingInterval, o.PongTimeout = interval, timeout
	c := mustNew(t, srv.URL(), rec, o)
	startClient(t, c)
	sc := nextConn(t, srv)
	server.Store(sc)
	require.NoError(t, sc.SendText("block"))
	rec.next(t, "connect")
	conn := <-conns
	assert.Equal(t, "block", string(rec.next(t, "frame").frame.Data))
	echoThrough(t, c, rec, TextFrame("still here"))
	t.Logf("the handler blocked for %v (PongTimeout %v)", blocked, timeout)
	assert.Greater(t, blocked, 2*timeout)
	assert.GreaterOrEqual(t, pings(), 8, "pings went on while the handler was busy")
	noEvent(t, rec, "disconnect")
	assert.Equal(t, uint64(1), conn.Generation())
	require.Eventually(t, func() bool { return conn.RTT() > 0 }, 5*time.Second, time.Millisecond)
}

func TestKeepaliveDisabledStillAnswersServerPings(t *testing.T) {
	srv := wstest.Start(t, nil)
	tap := &wireTap{record: true} // the pong, as the client with keepalive off wrote it

	off := newRecorder()
	o := testOptions()
	o.PingInterval = -1
	o.PongTimeout = time.Millisecond // irrelevant when off
	o.NetDialContext = tap.dial
	cOff := mustNew(t, srv.URL(), off, o)
	startClient(t, cOff)
	scOff := nextConn(t, srv)
	require.NoError(t, scOff.Ping([]byte("server ping")))
	off.next(t, "connect")
	tap.waitFrame(t, 0, wstest.OpPong, "server ping")

	// A second client, with keepalive on, shows how many pings the first
	// would have sent meanwhile.
	on := newRecorder()
	o = testOptions()
	o.PingInterval = 10 * time.Millisecond
	startClient(t, mustNew(t, srv.URL(), on, o))
	scOn := nextConn(t, srv)
	on.next(t, "connect")
	require.NoError(t, srv.Wait(t.Context(), func(wstest.Stats) bool { return pingsReceived(scOn) >= 5 }))
	assert.Zero(t, pingsReceived(scOff), "keepalive off: no pings")
	noEvent(t, off, "disconnect")
}

func TestKeepaliveRTT(t *testing.T) {
	const latency = 25 * time.Millisecond
	srv := wstest.Start(t, nil)
	srv.Network().SetLatency(latency)
	rec := newRecorder()
	conns := collectConns(rec)
	o := testOptions()
	o.PingInterval, o.PongTimeout = 20*time.Millisecond, time.Second
	c := mustNew(t, srv.URL(), rec, o)
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
	srv := wstest.Start(t, &wstest.Options{Echo: true})
	px := srv.Network()
	px.SetLatency(latency)
	rec := newRecorder()
	conns := collectConns(rec)
	rec.decide = func(Disconnect) Decision {
		px.SetLatency(0) // the next connection is fast
		return Decision{}
	}
	o := testOptions()
	o.PingInterval, o.PongTimeout = interval, timeout
	c := mustNew(t, srv.URL(), rec, o)
	startClient(t, c)
	rec.next(t, "connect")
	old := <-conns
	nextConn(t, srv) // the slow one
	d := rec.next(t, "disconnect").disc
	assert.ErrorIs(t, d.Err, ErrKeepaliveTimeout)
	rec.next(t, "connect")
	cur := <-conns
	scCur := nextConn(t, srv)
	require.Eventually(t, func() bool { return cur.RTT() > 0 }, 5*time.Second, time.Millisecond)
	from := pingsReceived(scCur)
	require.NoError(t, srv.Wait(t.Context(), func(wstest.Stats) bool { return pingsReceived(scCur) >= from+10 }))
	noEvent(t, rec, "disconnect")
	assert.Less(t, cur.RTT(), latency, "the new connection's RTT is its own")
	assert.Zero(t, old.RTT(), "the old connection's late pong changed nothing")
	echoThrough(t, c, rec, TextFrame("fast"))
}

func TestKeepaliveStopsWhileClosing(t *testing.T) {
	// The server neither answers pings nor the close: the close handshake,
	// bounded by CloseTimeout, must decide, not a ping written after the
	// close frame (an error) nor the keepalive deadline.
	srv := wstest.Start(t, nil)
	silenced := make(chan struct{})
	rec := newRecorder()
	rec.onConnect = func(c *Conn) error {
		select { // the close goes out once the server is silent
		case <-silenced:
		case <-time.After(5 * time.Second):
			return errors.New("the server was not silenced")
		}
		return c.Close(CloseNormal, "bye")
	}
	o := testOptions()
	o.PingInterval, o.PongTimeout = 5*time.Millisecond, 10*time.Millisecond
	o.CloseTimeout = 200 * time.Millisecond
	c := mustNew(t, srv.URL(), rec, o)
	wait := startClient(t, c)
	nextConn(t, srv).Silence() // reads nothing, answers nothing
	close(silenced)
	err := wait()
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
	srv := wstest.Start(t, &wstest.Options{Echo: true})
	_, sc, d, took := keepaliveUntilLost(t, srv, interval, timeout)
	t.Logf("detected %v after OnConnect, %d pings sent (PingInterval %v, PongTimeout %v)", took, pingsReceived(sc), interval, timeout)
	assert.ErrorIs(t, d.Err, ErrKeepaliveTimeout)
	assert.GreaterOrEqual(t, took, interval+timeout)
	assert.Less(t, took, interval+timeout+300*time.Millisecond)
	assert.GreaterOrEqual(t, pingsReceived(sc), 2, "pings kept their cadence while waiting")
}

// TestKeepaliveFindsABlackholeWhileSending: on real sockets, a peer that goes
// silent (a blackhole) while the client is sending a message too large for
// the socket buffers is found by the keepalive, not by the write timeout: the
// ping does not wait behind the blocked write. The blocked Send fails then too.
func TestKeepaliveFindsABlackholeWhileSending(t *testing.T) {
	srv := wstest.Start(t, nil)
	rec := newRecorder()
	o := testOptions()
	o.PingInterval, o.PongTimeout = 300*time.Millisecond, 300*time.Millisecond
	o.WriteTimeout = time.Hour // only the keepalive can find it
	c := mustNew(t, srv.URL(), rec, o)
	startClient(t, c)
	rec.next(t, "connect")
	nextConn(t, srv).Silence() // upgraded, then neither reads nor writes
	sendErr := make(chan error, 1)
	go func() { sendErr <- c.Send(context.Background(), BinaryFrame(make([]byte, 256<<20))) }()
	d := rec.next(t, "disconnect").disc
	assert.ErrorIs(t, d.Err, ErrKeepaliveTimeout, "%v", d.Err)
	select {
	case err := <-sendErr:
		require.Error(t, err, "the blocked Send fails with the connection")
		assert.Equal(t, 1, strings.Count(err.Error(), "wsclient: write:"), "one prefix: %v", err)
		assert.ErrorIs(t, err, ErrKeepaliveTimeout, "the Send says why the connection ended")
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked Send did not return")
	}
}
