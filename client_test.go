package wsclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/wstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEchoTextBinaryAndLarge(t *testing.T) {
	srv := wstest.Start(t, &wstest.Options{Echo: true})
	rec := newRecorder()
	c := mustNew(t, srv.URL(), rec, testOptions())
	wait := startClient(t, c)
	rec.next(t, "connect")
	require.Equal(t, Open, c.State())

	ctx := ctxTimeout(t, 5*time.Second)
	require.NoError(t, c.Send(ctx, TextFrame("hello")))
	f := rec.next(t, "frame").frame
	assert.Equal(t, Text, f.Type)
	assert.Equal(t, "hello", string(f.Data))

	require.NoError(t, c.Send(ctx, BinaryFrame([]byte{0, 1, 2, 255})))
	f = rec.next(t, "frame").frame
	assert.Equal(t, Binary, f.Type)
	assert.Equal(t, []byte{0, 1, 2, 255}, f.Data)

	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	require.NoError(t, c.Send(ctx, BinaryFrame(big)))
	f = rec.next(t, "frame").frame
	assert.Equal(t, big, f.Data)

	require.NoError(t, c.Send(ctx, TextFrame("")))
	f = rec.next(t, "frame").frame
	assert.Equal(t, Text, f.Type)
	assert.Empty(t, f.Data)

	require.NoError(t, c.Close(ctx, CloseNormal, "bye"))
	require.NoError(t, wait())
	assert.Equal(t, Closed, c.State())
	d := rec.next(t, "disconnect").disc
	assert.True(t, d.Final)
	assert.Equal(t, CloseNormal, CloseStatus(d.Err))
	assert.Zero(t, rec.overlaps.Load())
}

func TestServerPingAnsweredAndDelivered(t *testing.T) {
	srv := wstest.Start(t, &wstest.Options{Echo: true})
	tap := &wireTap{record: true} // the pong, as the client wrote it
	rec := newRecorder()
	o := testOptions()
	o.NetDialContext = tap.dial
	c := mustNew(t, srv.URL(), rec, o)
	startClient(t, c)
	require.NoError(t, nextConn(t, srv).Ping([]byte("are you there")))
	f := rec.next(t, "frame").frame
	assert.Equal(t, Ping, f.Type)
	assert.Equal(t, "are you there", string(f.Data))
	tap.waitFrame(t, 0, wstest.OpPong, "are you there")
}

func TestReconnectAfterServerDrops(t *testing.T) {
	srv := wstest.Start(t, nil)
	rec := newRecorder()
	var states []State
	var smu sync.Mutex
	o := testOptions()
	o.OnStateChange = func(sc StateChange) { smu.Lock(); states = append(states, sc.To); smu.Unlock() }
	c := mustNew(t, srv.URL(), rec, o)
	startClient(t, c)
	for i := 1; i <= 3; i++ {
		sc := nextConn(t, srv)
		require.NoError(t, sc.SendText(fmt.Sprint("conn ", i)))
		ev := rec.next(t, "connect")
		assert.Equal(t, uint64(i), ev.gen)
		assert.Equal(t, fmt.Sprint("conn ", i), string(rec.next(t, "frame").frame.Data))
		sc.Drop() // without a close frame
		d := rec.next(t, "disconnect").disc
		assert.Equal(t, i, d.Attempt, "attempts count consecutive failures")
		assert.True(t, d.Connected)
		assert.False(t, d.Suggested.IsStop(), "a dropped connection is retried: %v", d.Err)
	}
	nextConn(t, srv).SetEcho(true)
	rec.next(t, "connect")
	require.NoError(t, c.Send(ctxTimeout(t, time.Second), TextFrame("after")))
	for {
		f := rec.next(t, "frame").frame
		if string(f.Data) == "after" {
			break
		}
	}
	smu.Lock()
	defer smu.Unlock()
	assert.Equal(t, []State{Connecting, Open, Reconnecting, Connecting, Open}, states[:5])
}

func TestAcceptAndCloseAtOnceBacksOff(t *testing.T) {
	srv := wstest.Start(t, &wstest.Options{Check: func(*http.Request) *wstest.Response {
		return &wstest.Response{Drop: true} // upgrade, then close the socket at once
	}})
	rec := newRecorder()
	o := testOptions()
	o.Backoff = Backoff{Initial: 20 * time.Millisecond, Max: 80 * time.Millisecond, Multiplier: 2, Jitter: -1}
	c := mustNew(t, srv.URL(), rec, o)
	startClient(t, c)
	var delays []time.Duration
	for i := 0; i < 5; i++ {
		d := rec.next(t, "disconnect").disc
		assert.Equal(t, i+1, d.Attempt)
		delays = append(delays, d.Suggested.Delay())
	}
	assert.Equal(t, []time.Duration{20, 40, 80, 80, 80}, scale(delays, time.Millisecond))
}

func scale(ds []time.Duration, unit time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d / unit
	}
	return out
}

func TestHandshake401Stops(t *testing.T) {
	srv := wstest.Start(t, &wstest.Options{Check: func(*http.Request) *wstest.Response {
		return &wstest.Response{Status: http.StatusUnauthorized, Body: "no token"}
	}})
	rec := newRecorder()
	c := mustNew(t, srv.URL(), rec, testOptions())
	err := c.Run(ctxTimeout(t, 5*time.Second))
	var he *HandshakeError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, http.StatusUnauthorized, he.StatusCode)
	assert.Contains(t, string(he.Body), "no token")
	d := rec.next(t, "disconnect").disc
	assert.True(t, d.Suggested.IsStop())
	assert.ErrorIs(t, rec.next(t, "terminate").err, err)
	assert.Equal(t, 1, srv.Stats().Requests)
}

func TestHandshake503RetryAfter(t *testing.T) {
	srv := wstest.Start(t, nil)
	srv.Enqueue(wstest.Response{Status: http.StatusServiceUnavailable, Header: http.Header{"Retry-After": {"1"}}, Body: "busy"})
	rec := newRecorder()
	c := mustNew(t, srv.URL(), rec, testOptions())
	start := time.Now()
	startClient(t, c)
	d := rec.next(t, "disconnect").disc
	assert.False(t, d.Suggested.IsStop())
	assert.GreaterOrEqual(t, d.Suggested.Delay(), time.Second)
	rec.next(t, "connect")
	assert.GreaterOrEqual(t, time.Since(start), time.Second)
}

func TestDecisionReconnectAfterAndStop(t *testing.T) {
	srv := wstest.Start(t, nil)
	rec := newRecorder()
	var times []time.Time
	rec.decide = func(d Disconnect) Decision {
		times = append(times, time.Now())
		if d.Attempt < 3 {
			return ReconnectAfter(150 * time.Millisecond)
		}
		return Stop()
	}
	c := mustNew(t, srv.URL(), rec, testOptions())
	wait := startClient(t, c)
	for range 3 { // each connection: the server's close 1012
		require.NoError(t, nextConn(t, srv).Close(CloseServiceRestart, "restart"))
	}
	err := wait()
	assert.Equal(t, CloseServiceRestart, CloseStatus(err))
	var ce *CloseError
	require.ErrorAs(t, err, &ce)
	assert.False(t, ce.Local)
	assert.Equal(t, "restart", ce.Reason)
	require.Len(t, times, 3)
	assert.GreaterOrEqual(t, times[1].Sub(times[0]), 150*time.Millisecond)
	assert.GreaterOrEqual(t, times[2].Sub(times[1]), 150*time.Millisecond)
}

func TestCloseSendsNormalAndWaitsForEcho(t *testing.T) {
	srv := wstest.Start(t, &wstest.Options{Echo: true})
	rec := newRecorder()
	c := mustNew(t, srv.URL(), rec, testOptions())
	wait := startClient(t, c)
	rec.next(t, "connect")
	sc := nextConn(t, srv)
	// 25 ms each way: the server's answer comes back 50 ms after the client's
	// close at the earliest, and the client must wait for it.
	srv.Network().SetLatency(25 * time.Millisecond)
	start := time.Now()
	require.NoError(t, c.Close(ctxTimeout(t, 5*time.Second), CloseNormal, "done"))
	assert.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
	code, reason, err := sc.WaitClosed(t.Context())
	require.NoError(t, err)
	assert.Equal(t, CloseNormal, code)
	assert.Equal(t, "done", reason)
	assert.NoError(t, wait())
	d := rec.next(t, "disconnect").disc
	var ce *CloseError
	require.ErrorAs(t, d.Err, &ce)
	assert.True(t, ce.Local)
	assert.Equal(t, "done", ce.Reason)
	assert.ErrorIs(t, c.Send(context.Background(), TextFrame("x")), ErrClosed)
}

func TestCloseWithoutServerAnswerTimesOut(t *testing.T) {
	srv := wstest.Start(t, nil)
	rec := newRecorder()
	o := testOptions()
	o.CloseTimeout = 100 * time.Millisecond
	c := mustNew(t, srv.URL(), rec, o)
	wait := startClient(t, c)
	rec.next(t, "connect")
	nextConn(t, srv).Silence() // answers nothing from now on
	start := time.Now()
	require.NoError(t, c.Close(ctxTimeout(t, 5*time.Second), CloseNormal, ""))
	assert.Less(t, time.Since(start), time.Second)
	assert.NoError(t, wait())
}

func TestCloseDuringBackoffReturnsAtOnce(t *testing.T) {
	srv := wstest.Start(t, &wstest.Options{Check: func(*http.Request) *wstest.Response {
		return &wstest.Response{Status: http.StatusBadGateway, Body: "down"}
	}})
	rec := newRecorder()
	rec.decide = func(Disconnect) Decision { return ReconnectAfter(time.Hour) }
	c := mustNew(t, srv.URL(), rec, testOptions())
	wait := startClient(t, c)
	rec.next(t, "disconnect")
	require.Eventually(t, func() bool { return c.State() == Reconnecting }, time.Second, time.Millisecond)
	start := time.Now()
	require.NoError(t, c.Close(ctxTimeout(t, 5*time.Second), CloseNormal, ""))
	assert.Less(t, time.Since(start), 500*time.Millisecond)
	assert.NoError(t, wait())
	assert.Equal(t, Closed, c.State())
}

func TestCloseCutsAHangingDial(t *testing.T) {
	// A server that accepts TCP and never answers the upgrade.
	srv := wstest.Start(t, &wstest.Options{Check: func(*http.Request) *wstest.Response {
		return &wstest.Response{Stall: true}
	}})
	rec := newRecorder()
	o := testOptions()
	o.HandshakeTimeout = time.Minute
	c := mustNew(t, srv.URL(), rec, o)
	wait := startClient(t, c)
	require.NoError(t, srv.Wait(ctxTimeout(t, 2*time.Second), func(st wstest.Stats) bool { return st.Requests == 1 }))
	start := time.Now()
	require.NoError(t, c.Close(ctxTimeout(t, 5*time.Second), CloseNormal, ""))
	assert.Less(t, time.Since(start), 500*time.Millisecond)
	assert.NoError(t, wait())
	d := rec.next(t, "disconnect").disc
	assert.True(t, d.Final)
	assert.ErrorIs(t, d.Err, ErrClosed)
}

func TestHandshakeTimeoutIsRetried(t *testing.T) {
	srv := wstest.Start(t, nil)
	srv.Enqueue(wstest.Response{Stall: true}) // the first upgrade is never answered
	rec := newRecorder()
	o := testOptions()
	o.HandshakeTimeout = 100 * time.Millisecond
	c := mustNew(t, srv.URL(), rec, o)
	startClient(t, c)
	d := rec.next(t, "disconnect").disc
	assert.Contains(t, d.Err.Error(), "timed out")
	assert.False(t, d.Suggested.IsStop())
	rec.next(t, "connect")
}

func TestSendWhileNotOpen(t *testing.T) {
	rec := newRecorder()
	c := mustNew(t, "ws://127.0.0.1:1/", rec, testOptions())
	assert.ErrorIs(t, c.Send(context.Background(), TextFrame("x")), ErrNotConnected)
	assert.Error(t, c.Send(context.Background(), Frame{Type: 3}))
	assert.ErrorIs(t, c.Send(context.Background(), Frame{Type: Text, Data: []byte{0xff}}), ErrInvalidUTF8)
}

func TestOutboxFlushesAfterOnConnectInOrder(t *testing.T) {
	gate := make(chan struct{})
	testCtx := t.Context() // ends before the server's cleanup, should the test fail before close(gate)
	srv := wstest.Start(t, &wstest.Options{Check: func(*http.Request) *wstest.Response {
		select { // the upgrade waits for the gate
		case <-gate:
		case <-testCtx.Done():
		}
		return nil
	}})
	rec := newRecorder()
	rec.onConnect = func(c *Conn) error {
		if err := c.SendText("subscribe-1"); err != nil {
			return err
		}
		return c.SendText("subscribe-2")
	}
	o := testOptions()
	o.OutboxSize = 3
	c := mustNew(t, srv.URL(), rec, o)
	startClient(t, c)
	require.Eventually(t, func() bool { return c.State() == Connecting }, time.Second, time.Millisecond)

	ctx := ctxTimeout(t, 5*time.Second)
	results := make(chan error, 3)
	for i := 1; i <= 3; i++ {
		go func(i int) { results <- c.Send(ctx, TextFrame(fmt.Sprint("queued-", i))) }(i)
		// each Send must be in the outbox before the next, so that the order is known
		require.Eventually(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.outbox) == i }, time.Second, time.Millisecond)
	}
	assert.ErrorIs(t, c.Send(ctx, TextFrame("one too many")), ErrOutboxFull)
	close(gate)
	for i := 0; i < 3; i++ {
		assert.NoError(t, <-results)
	}
	require.NoError(t, c.Send(ctx, TextFrame("direct")))
	sc := nextConn(t, srv)
	var got []string
	for i := 0; i < 6; i++ {
		s, err := sc.ReadText(ctx)
		require.NoError(t, err, "missing frames: got %q", got)
		got = append(got, s)
	}
	assert.Equal(t, []string{"subscribe-1", "subscribe-2", "queued-1", "queued-2", "queued-3", "direct"}, got)
}

func TestOutboxFailsOnCloseAndCtx(t *testing.T) {
	rec := newRecorder()
	o := testOptions()
	o.OutboxSize = 2
	o.Backoff = Backoff{Initial: time.Hour, Max: time.Hour}
	c := mustNew(t, "ws://127.0.0.1:1/", rec, o) // nothing listens there
	wait := startClient(t, c)
	rec.next(t, "disconnect")

	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, c.Send(short, TextFrame("gives up")), context.DeadlineExceeded)

	res := make(chan error, 1)
	go func() { res <- c.Send(context.Background(), TextFrame("waits")) }()
	require.Eventually(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.outbox) == 1 }, time.Second, time.Millisecond)
	require.NoError(t, c.Close(ctxTimeout(t, 5*time.Second), CloseNormal, ""))
	assert.ErrorIs(t, <-res, ErrClosed)
	assert.NoError(t, wait())
}

// checkServerMessageFails: the server sends one message (a single frame of
// opcode op) that the client, with options o, must refuse with close code
// want. The connection fails with want, the policy stops, and the server is
// told want.
func checkServerMessageFails(t *testing.T, op byte, data []byte, o *Options, want int) {
	t.Helper()
	srv := wstest.Start(t, nil)
	rec := newRecorder()
	c := mustNew(t, srv.URL(), rec, o)
	startClient(t, c)
	sc := nextConn(t, srv)
	require.NoError(t, sc.SendFrame(wstest.Frame{Op: op, Fin: true, Payload: data}))
	d := rec.next(t, "disconnect").disc
	assert.Equal(t, want, CloseStatus(d.Err))
	assert.True(t, d.Suggested.IsStop())
	code, _, err := sc.WaitClosed(t.Context())
	require.NoError(t, err)
	assert.Equal(t, want, code)
}

func TestInvalidUTF8FromServerFails1007(t *testing.T) {
	checkServerMessageFails(t, wstest.OpText, []byte{'o', 'k', 0xc3, 0x28}, testOptions(), CloseInvalidPayload)
}

func TestOversizeMessageFails1009(t *testing.T) {
	o := testOptions()
	o.ReadLimit = 1000
	checkServerMessageFails(t, wstest.OpBinary, make([]byte, 2000), o, CloseMessageTooBig)
}

func TestCallbackErrorAndPanicFail1011(t *testing.T) {
	for _, mode := range []string{"error", "panic"} {
		t.Run(mode, func(t *testing.T) {
			srv := wstest.Start(t, &wstest.Options{Echo: true})
			rec := newRecorder()
			boom := errors.New("boom")
			// The handler may fail while the Send of "x" still holds the
			// frame lock: the close frame goes out after that frame anyway.
			rec.onFrame = func(c *Conn, f Frame) error {
				if mode == "panic" {
					panic("boom")
				}
				return boom
			}
			c := mustNew(t, srv.URL(), rec, testOptions())
			startClient(t, c)
			rec.next(t, "connect")
			sc := nextConn(t, srv)
			require.NoError(t, c.Send(ctxTimeout(t, time.Second), TextFrame("x")))
			d := rec.next(t, "disconnect").disc
			assert.Equal(t, CloseInternalError, CloseStatus(d.Err))
			if mode == "error" {
				assert.ErrorIs(t, d.Err, boom)
			} else {
				var pe *PanicError
				require.ErrorAs(t, d.Err, &pe)
				assert.Contains(t, string(pe.Stack), "TestCallbackErrorAndPanicFail1011")
			}
			assert.False(t, d.Suggested.IsStop())
			code, _, err := sc.WaitClosed(t.Context())
			require.NoError(t, err)
			assert.Equal(t, CloseInternalError, code)
			rec.next(t, "connect") // and it reconnects
		})
	}
}

func TestStaleConnCannotTouchNewConnection(t *testing.T) {
	srv := wstest.Start(t, &wstest.Options{Echo: true})
	rec := newRecorder()
	var old *Conn
	rec.onConnect = func(c *Conn) error {
		if old == nil {
			old = c
		}
		return nil
	}
	c := mustNew(t, srv.URL(), rec, testOptions())
	startClient(t, c)
	first := nextConn(t, srv)
	require.NoError(t, first.SendText("first"))
	rec.next(t, "connect")
	assert.Equal(t, "first", string(rec.next(t, "frame").frame.Data))
	first.Drop()
	rec.next(t, "disconnect")
	ev := rec.next(t, "connect")
	require.Equal(t, uint64(2), ev.gen)
	assert.ErrorIs(t, old.SendText("late"), ErrNotConnected)
	assert.ErrorIs(t, old.Close(CloseNormal, ""), ErrNotConnected)
	require.NoError(t, c.Send(ctxTimeout(t, time.Second), TextFrame("new")))
	for {
		ev := rec.next(t, "frame")
		if string(ev.frame.Data) == "new" {
			assert.Equal(t, uint64(2), ev.gen)
			break
		}
		assert.NotEqual(t, "late", string(ev.frame.Data))
	}
	assert.Equal(t, Open, c.State())
}

func TestHandlerNeverEnteredConcurrently(t *testing.T) {
	srv := wstest.Start(t, &wstest.Options{Echo: true})
	rec := newRecorder()
	c := mustNew(t, srv.URL(), rec, testOptions())
	startClient(t, c)
	rec.next(t, "connect")
	ctx := ctxTimeout(t, 10*time.Second)
	var wg sync.WaitGroup
	const senders, each = 8, 50
	for g := 0; g < senders; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				assert.NoError(t, c.Send(ctx, TextFrame(fmt.Sprint(g, "-", i))))
				assert.NoError(t, c.Info(ctx, i))
			}
		}(g)
	}
	wg.Wait()
	frames, infos := 0, 0
	for frames < senders*each || infos < senders*each {
		switch rec.next(t, "frame", "info").kind {
		case "frame":
			frames++
		case "info":
			infos++
		}
	}
	assert.Zero(t, rec.overlaps.Load())
}

func TestFramesArriveInWireOrder(t *testing.T) {
	const n = 500
	srv := wstest.Start(t, nil)
	rec := newRecorder()
	c := mustNew(t, srv.URL(), rec, testOptions())
	startClient(t, c)
	sc := nextConn(t, srv)
	for i := 0; i < n; i++ {
		require.NoError(t, sc.SendText(fmt.Sprint(i)))
	}
	for i := 0; i < n; i++ {
		assert.Equal(t, fmt.Sprint(i), string(rec.next(t, "frame").frame.Data))
	}
}

func TestInfoInEveryState(t *testing.T) {
	rec := newRecorder()
	o := testOptions()
	o.Backoff = Backoff{Initial: time.Hour, Max: time.Hour}
	c := mustNew(t, "ws://127.0.0.1:1/", rec, o)
	startClient(t, c)
	rec.next(t, "disconnect")
	require.NoError(t, c.Info(context.Background(), "while down"))
	ev := rec.next(t, "info")
	assert.Equal(t, "while down", ev.info)
	require.NoError(t, c.Close(ctxTimeout(t, 5*time.Second), CloseNormal, ""))
	assert.ErrorIs(t, c.Info(context.Background(), "late"), ErrClosed)
}

func TestConnCloseThenStopReturnsNil(t *testing.T) {
	srv := wstest.Start(t, &wstest.Options{Echo: true})
	rec := newRecorder()
	rec.onFrame = func(c *Conn, f Frame) error { return c.Close(CloseNormal, "enough") }
	c := mustNew(t, srv.URL(), rec, testOptions())
	rec.onConnect = func(c *Conn) error { return c.SendText("hi") }
	err := c.Run(ctxTimeout(t, 5*time.Second))
	assert.NoError(t, err)
	d := rec.next(t, "disconnect").disc
	assert.True(t, d.Suggested.IsStop())
	var ce *CloseError
	require.ErrorAs(t, d.Err, &ce)
	assert.True(t, ce.Local)
	assert.Equal(t, "enough", ce.Reason)
}

func TestRunEndsWithCtx(t *testing.T) {
	srv := wstest.Start(t, nil)
	rec := newRecorder()
	c := mustNew(t, srv.URL(), rec, testOptions())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	rec.next(t, "connect")
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not end with ctx")
	}
	assert.ErrorIs(t, c.Run(context.Background()), ErrAlreadyRunning)
	d := rec.next(t, "disconnect").disc
	assert.True(t, d.Final)
	assert.ErrorIs(t, rec.next(t, "terminate").err, context.Canceled)
}

// TestCloseRacingRunStart: a Close that comes before the goroutine running
// Run has started still lets Done mean "all callbacks are over": Terminate
// has returned once Done is closed.
func TestCloseRacingRunStart(t *testing.T) {
	for range 20 {
		var terminated atomic.Bool
		h := &terminateHandler{onTerminate: func() { time.Sleep(5 * time.Millisecond); terminated.Store(true) }}
		c := mustNew(t, "ws://127.0.0.1:1/", h, testOptions())
		go c.Run(context.Background())
		require.NoError(t, c.Close(ctxTimeout(t, 5*time.Second), CloseNormal, ""))
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done not closed")
		}
		assert.True(t, terminated.Load(), "Terminate had not returned when Done closed")
	}
}

// terminateHandler runs onTerminate in Terminate.
type terminateHandler struct {
	BaseHandler
	onTerminate func()
}

func (h *terminateHandler) Terminate(error) { h.onTerminate() }

func TestCloseBeforeRun(t *testing.T) {
	rec := newRecorder()
	c := mustNew(t, "ws://127.0.0.1:1/", rec, testOptions())
	require.NoError(t, c.Close(context.Background(), CloseNormal, ""))
	assert.NoError(t, c.Run(context.Background()))
	assert.Equal(t, Closed, c.State())
}

func TestHeaderFuncAndDecisionHeaders(t *testing.T) {
	srv := wstest.Start(t, nil)
	srv.Enqueue(wstest.Response{Status: http.StatusServiceUnavailable, Body: "retry"})
	rec := newRecorder()
	rec.decide = func(d Disconnect) Decision {
		return ReconnectAfter(0).WithHeader(http.Header{"X-Session": {"abc"}})
	}
	o := testOptions()
	o.Header = http.Header{"X-Static": {"1"}}
	token := 0
	o.HeaderFunc = func(context.Context) (http.Header, error) {
		token++
		return http.Header{"Authorization": {fmt.Sprint("Bearer ", token)}}, nil
	}
	c := mustNew(t, srv.URL(), rec, o)
	startClient(t, c)
	rec.next(t, "connect")
	reqs := srv.Requests()
	require.Len(t, reqs, 2)
	h1, h2 := reqs[0].Header, reqs[1].Header
	assert.Equal(t, "Bearer 1", h1.Get("Authorization"))
	assert.Equal(t, "1", h1.Get("X-Static"))
	assert.Equal(t, "Bearer 2", h2.Get("Authorization"))
	assert.Equal(t, "abc", h2.Get("X-Session"))
	assert.Empty(t, h2.Get("X-Static"), "a decision's headers replace Options.Header")
}

func TestNewRejectsBadInput(t *testing.T) {
	h := BaseHandler{}
	for _, tc := range []struct {
		url  string
		opts *Options
		want string
	}{
		{"http://example.com", nil, "scheme"},
		{"example.com/feed", nil, "scheme"},
		{"ws://", nil, "no host"},
		{"ws://host:port/", nil, "bad URL"},
		{"ws://h/#frag", nil, "fragment"},
		{"ws://user:secret@h/", nil, "credentials"},
		{"ws://h/", &Options{PongTimeout: -1}, "PongTimeout"},
		{"ws://h/", &Options{ReadLimit: -1}, "ReadLimit"},
		{"ws://h/", &Options{OutboxSize: -1}, "OutboxSize"},
		{"ws://h/", &Options{Backoff: Backoff{Multiplier: 0.5}}, "Multiplier"},
		{"ws://h/", &Options{Backoff: Backoff{Initial: time.Minute, Max: time.Second}}, "Backoff.Max"},
		{"ws://h/", &Options{Subprotocols: []string{"a b"}}, "subprotocol"},
		{"ws://h/", &Options{Header: http.Header{"Upgrade": {"x"}}}, "Upgrade"},
	} {
		_, err := New(tc.url, h, tc.opts)
		if assert.Error(t, err, tc.url) {
			assert.Contains(t, err.Error(), tc.want)
		}
	}
	_, err := New("ws://h/", nil, nil)
	assert.Error(t, err)
	o := &Options{Header: http.Header{"A": {"1"}}}
	c, err := New("wss://h:8443/x?y=1", h, o)
	require.NoError(t, err)
	o.Header.Set("A", "2")
	assert.Equal(t, "1", c.opts.Header.Get("A"), "options are copied")
	assert.Equal(t, 20*time.Second, c.opts.PingInterval)
	assert.Nil(t, o.Logger, "the caller's options are not modified")

	assert.Error(t, c.Close(context.Background(), 1005, ""))
	assert.Error(t, c.Close(context.Background(), CloseNormal, strings.Repeat("x", 124)))
}

// TestWriteDeadlineMovesWithTime: WriteTimeout bounds each write, not the
// connection's life. Sends spread over many WriteTimeouts all succeed (a
// deadline that did not move would have expired), and a send to a peer that
// stopped reading still fails within about WriteTimeout.
func TestWriteDeadlineMovesWithTime(t *testing.T) {
	srv := wstest.Start(t, nil)
	rec := newRecorder()
	o := testOptions()
	o.WriteTimeout = 80 * time.Millisecond
	c := mustNew(t, srv.URL(), rec, o)
	startClient(t, c)
	require.Eventually(t, func() bool { return c.State() == Open }, 5*time.Second, time.Millisecond)
	sc := nextConn(t, srv)
	ctx := ctxTimeout(t, 5*time.Second)
	for i := 0; i < 4; i++ {
		require.NoError(t, c.Send(ctx, TextFrame(fmt.Sprint("m", i))), "send %d", i)
		s, err := sc.ReadText(ctx)
		require.NoError(t, err, "message not received")
		assert.Equal(t, fmt.Sprint("m", i), s)
		time.Sleep(2 * o.WriteTimeout) // the time passing is the test: the first deadline is long gone
	}
	sc.Silence() // the four small messages were read; it never reads again
	big := Frame{Type: Binary, Data: make([]byte, 64<<20)}
	start := time.Now()
	err := c.Send(ctx, big)
	require.Error(t, err, "a 64 MiB send to a peer that does not read")
	assert.Less(t, time.Since(start), 2*time.Second, "the write deadline still bounds a blocked write")
}
