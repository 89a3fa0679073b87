package wsclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/internal/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The supervisor's timing on the fake transport and the fake clock: every
// delay is read off the clock's armed timer, and nothing happens until the
// test moves time past it. The real-socket tests in client_test.go and
// keepalive_test.go check the same behaviours end to end.

var errFakeRefused = errors.New("fake: connection refused")

// fakeOpts is testOptions with round delays and no jitter.
func fakeOpts() *Options {
	o := testOptions()
	o.Backoff = Backoff{Initial: time.Second, Max: 8 * time.Second, Multiplier: 2, Jitter: -1}
	o.StableAfter = 10 * time.Second
	return o
}

// fail scripts the next attempt to fail with err.
func (n *fakeNet) fail(err error) { n.outcomes <- fakeOutcome{err: err} }

// nextAttempt waits (on real time, bounded) for the next dial to start.
func (n *fakeNet) nextAttempt(t *testing.T) {
	t.Helper()
	select {
	case <-n.configs:
	case <-time.After(5 * time.Second):
		t.Fatal("no dial attempt")
	}
}

// retryAfterClock checks that the one armed timer (the retry) is due in
// want, that no attempt starts a nanosecond before it, and then moves the
// clock there: the next attempt starts.
func retryAfterClock(t *testing.T, n *fakeNet, clk *fakeClock, want time.Duration) {
	t.Helper()
	clk.waitTimers(t, 1)
	due, ok := clk.nextDue()
	require.True(t, ok)
	require.Equal(t, want, due, "the retry delay")
	before := n.attempts.Load()
	clk.Advance(want - time.Nanosecond)
	assert.Equal(t, 1, clk.armedTimers(), "still waiting a nanosecond before the delay")
	assert.Equal(t, before, n.attempts.Load(), "no attempt before the delay")
	clk.Advance(time.Nanosecond)
	n.nextAttempt(t)
}

// TestSupervisorBackoffOnTheClock: failed attempts wait Initial, then
// Multiplier times more, up to Max; Disconnect.Attempt and the suggested
// delay say so, and no attempt starts before its delay.
func TestSupervisorBackoffOnTheClock(t *testing.T) {
	rec := newRecorder()
	c, n, clk := fakeClient(t, rec, fakeOpts())
	for range 5 {
		n.fail(errFakeRefused)
	}
	runFake(t, c)
	n.nextAttempt(t)
	for i, want := range []time.Duration{1, 2, 4, 8, 8} {
		d := rec.next(t, "disconnect").disc
		assert.Equal(t, i+1, d.Attempt)
		assert.ErrorIs(t, d.Err, errFakeRefused)
		assert.False(t, d.Connected)
		assert.Equal(t, want*time.Second, d.Suggested.Delay())
		clk.waitTimers(t, 1) // armed after the state changed
		assert.Equal(t, Reconnecting, c.State())
		retryAfterClock(t, n, clk, want*time.Second)
	}
	n.accept()
	rec.next(t, "connect")
	assert.Equal(t, Open, c.State())
}

// TestSupervisorBackoffResetsAfterStableAfter: a connection lost before
// StableAfter leaves the backoff growing (an accept-and-drop server never
// causes a tight loop); one that stayed open that long resets it.
func TestSupervisorBackoffResetsAfterStableAfter(t *testing.T) {
	rec := newRecorder()
	c, n, clk := fakeClient(t, rec, fakeOpts())
	n.fail(errFakeRefused)
	runFake(t, c)
	n.nextAttempt(t)
	rec.next(t, "disconnect")
	w := n.accept()
	retryAfterClock(t, n, clk, time.Second)
	rec.next(t, "connect")

	clk.Advance(9 * time.Second) // open 9 s: under StableAfter
	w.fail(&CloseError{Code: CloseGoingAway})
	d := rec.next(t, "disconnect").disc
	assert.True(t, d.Connected)
	assert.Equal(t, 9*time.Second, d.Uptime)
	assert.Equal(t, 2, d.Attempt, "the count goes on")
	w = n.accept()
	retryAfterClock(t, n, clk, 2*time.Second)
	rec.next(t, "connect")

	clk.Advance(10 * time.Second) // StableAfter: the backoff resets
	w.fail(&CloseError{Code: CloseGoingAway})
	d = rec.next(t, "disconnect").disc
	assert.Equal(t, 1, d.Attempt, "counted from 1 again")
	n.accept()
	retryAfterClock(t, n, clk, time.Second)
	rec.next(t, "connect")
}

// TestSupervisorRetryAfter: a 503 with Retry-After waits that long (in
// seconds or as an HTTP date, by the client's clock), at least the backoff,
// at most an hour.
func TestSupervisorRetryAfter(t *testing.T) {
	rec := newRecorder()
	c, n, clk := fakeClient(t, rec, fakeOpts())
	unavailable := func(retryAfter string) error {
		return &HandshakeError{StatusCode: http.StatusServiceUnavailable, Header: http.Header{"Retry-After": {retryAfter}}}
	}
	n.fail(unavailable("30"))
	runFake(t, c)
	n.nextAttempt(t)
	assert.Equal(t, 30*time.Second, rec.next(t, "disconnect").disc.Suggested.Delay())
	// Its date is read when that attempt fails, 30 s on: 40 s ahead then.
	n.fail(unavailable(clk.Now().Add(70 * time.Second).UTC().Format(http.TimeFormat)))
	retryAfterClock(t, n, clk, 30*time.Second)
	rec.next(t, "disconnect")
	n.fail(unavailable(strconv.Itoa(1 << 30)))
	retryAfterClock(t, n, clk, 40*time.Second)
	rec.next(t, "disconnect")
	n.fail(unavailable("0")) // the backoff (8 s by now) is the floor
	retryAfterClock(t, n, clk, time.Hour)
	rec.next(t, "disconnect")
	n.accept()
	retryAfterClock(t, n, clk, 8*time.Second)
	rec.next(t, "connect")
}

// TestSupervisorStopsWithoutATimer: a 401 stops after one attempt; Run
// returns its error and no timer is left armed.
func TestSupervisorStopsWithoutATimer(t *testing.T) {
	rec := newRecorder()
	c, n, clk := fakeClient(t, rec, fakeOpts())
	n.fail(&HandshakeError{StatusCode: http.StatusUnauthorized})
	res := runFake(t, c)
	d := rec.next(t, "disconnect").disc
	assert.True(t, d.Suggested.IsStop())
	var he *HandshakeError
	require.ErrorAs(t, <-res, &he)
	assert.Equal(t, http.StatusUnauthorized, he.StatusCode)
	assert.Equal(t, int32(1), n.attempts.Load())
	assert.Zero(t, clk.armedTimers())
	assert.Equal(t, Closed, c.State())
}

// TestSupervisorDecisionDelays: OnDisconnect's ReconnectAfter(d) waits d
// exactly, Reconnect() the suggested delay, and Stop stops.
func TestSupervisorDecisionDelays(t *testing.T) {
	rec := newRecorder()
	decisions := make(chan Decision, 3)
	decisions <- ReconnectAfter(42 * time.Second)
	decisions <- Reconnect()
	decisions <- Stop()
	rec.decide = func(Disconnect) Decision { return <-decisions }
	c, n, clk := fakeClient(t, rec, fakeOpts())
	for range 3 {
		n.fail(errFakeRefused)
	}
	res := runFake(t, c)
	n.nextAttempt(t)
	rec.next(t, "disconnect")
	retryAfterClock(t, n, clk, 42*time.Second)
	rec.next(t, "disconnect")
	retryAfterClock(t, n, clk, 2*time.Second) // the second attempt's backoff
	rec.next(t, "disconnect")
	assert.ErrorIs(t, <-res, errFakeRefused)
	assert.Zero(t, clk.armedTimers())
}

// TestSupervisorCloseDuringBackoff: Close while the retry timer waits (an
// hour here) returns at once, with no attempt and no timer left.
func TestSupervisorCloseDuringBackoff(t *testing.T) {
	rec := newRecorder()
	o := fakeOpts()
	o.Backoff.Initial, o.Backoff.Max = time.Hour, time.Hour
	c, n, clk := fakeClient(t, rec, o)
	n.fail(errFakeRefused)
	res := runFake(t, c)
	n.nextAttempt(t)
	rec.next(t, "disconnect")
	clk.waitTimers(t, 1)
	require.NoError(t, c.Close(ctxTimeout(t, 5*time.Second), CloseNormal, ""))
	require.NoError(t, <-res)
	assert.Equal(t, int32(1), n.attempts.Load())
	assert.Zero(t, clk.armedTimers(), "the retry timer is stopped")
	assert.NoError(t, rec.next(t, "terminate").err)
}

// TestSupervisorCloseTimeout: a server that never answers the close frame is
// waited for CloseTimeout by the clock, then dropped; Close returns then.
func TestSupervisorCloseTimeout(t *testing.T) {
	rec := newRecorder()
	o := fakeOpts()
	o.CloseTimeout = 3 * time.Second
	c, n, clk := fakeClient(t, rec, o)
	w := n.accept()
	w.ignoreClose = true
	res := runFake(t, c)
	rec.next(t, "connect")
	closed := make(chan error, 1)
	go func() { closed <- c.Close(context.Background(), CloseGoingAway, "bye") }()
	clk.waitTimers(t, 1)
	sent, code, reason := w.closeFrame()
	assert.True(t, sent)
	assert.Equal(t, CloseGoingAway, code)
	assert.Equal(t, "bye", reason)
	due, _ := clk.nextDue()
	assert.Equal(t, 3*time.Second, due)
	clk.Advance(3*time.Second - time.Nanosecond)
	select {
	case <-closed:
		t.Fatal("Close returned before CloseTimeout")
	default:
	}
	clk.Advance(time.Nanosecond)
	require.NoError(t, <-closed)
	require.NoError(t, <-res)
	select {
	case <-w.aborted:
	default:
		t.Fatal("the socket was not dropped")
	}
}

// TestSupervisorKeepaliveOnTheClock: a ping every PingInterval; any frame
// from the server within PongTimeout is life; a ping left unanswered for
// PongTimeout fails the connection with 1011, and the policy reconnects.
func TestSupervisorKeepaliveOnTheClock(t *testing.T) {
	rec := newRecorder()
	o := fakeOpts()
	o.PingInterval, o.PongTimeout = 10*time.Second, 4*time.Second
	c, n, clk := fakeClient(t, rec, o)
	pings := make(chan struct{}, 10)
	w := n.accept()
	w.onPing = func([]byte) { pings <- struct{}{} }
	pinged := func() {
		t.Helper()
		select {
		case <-pings:
		case <-time.After(5 * time.Second):
			t.Fatal("no ping")
		}
	}
	runFake(t, c)
	rec.next(t, "connect")
	due := func() time.Duration {
		t.Helper()
		clk.waitTimers(t, 1)
		d, _ := clk.nextDue()
		return d
	}
	require.Equal(t, 10*time.Second, due(), "the first ping")
	clk.Advance(10 * time.Second)
	pinged()
	require.Equal(t, 4*time.Second, due(), "its pong's deadline")
	clk.Advance(3 * time.Second)
	w.send(transport.OpText, "any frame is life") // not a pong, and enough
	rec.next(t, "frame")
	// Out of HandleFrame: a handler seen busy at a ping would extend the deadline.
	waitFor(t, "HandleFrame to return", func() bool { return !c.live.Load().inHandler.Load() })
	clk.Advance(time.Second) // the deadline: judged alive
	require.Equal(t, 6*time.Second, due(), "the next ping, PingInterval after the first")
	assert.Equal(t, Open, c.State())
	clk.Advance(6 * time.Second)
	pinged()
	require.Equal(t, 4*time.Second, due())
	clk.Advance(4 * time.Second) // nothing came
	d := rec.next(t, "disconnect").disc
	assert.ErrorIs(t, d.Err, ErrKeepaliveTimeout)
	assert.Equal(t, 24*time.Second, d.Uptime, "the second ping + PongTimeout")
	_, code, _ := w.closeFrame()
	assert.Equal(t, CloseInternalError, code)
	assert.False(t, d.Suggested.IsStop(), "a dead peer is reconnected")
}

// TestSupervisorOutboxAcrossAReconnect: while the client waits out its
// backoff, Sends wait in the outbox (one too many is refused, one whose ctx
// ends gives up and is never written); the next connection writes OnConnect's
// frames, then the outbox in order, then new Sends. Close fails what still waits.
func TestSupervisorOutboxAcrossAReconnect(t *testing.T) {
	rec := newRecorder()
	rec.onConnect = func(c *Conn) error { return c.SendText("subscribe") }
	o := fakeOpts()
	o.OutboxSize = 3
	c, n, clk := fakeClient(t, rec, o)
	w1 := n.accept()
	runFake(t, c)
	rec.next(t, "connect")
	w1.fail(&CloseError{Code: CloseServiceRestart})
	rec.next(t, "disconnect")
	clk.waitTimers(t, 1) // reconnecting: the backoff waits on the clock

	queued := func() int { c.mu.Lock(); defer c.mu.Unlock(); return len(c.outbox) }
	ctx := ctxTimeout(t, 5*time.Second)
	results := make(chan error, 2)
	for i := 1; i <= 2; i++ {
		go func() { results <- c.Send(ctx, TextFrame("queued-"+strconv.Itoa(i))) }()
		waitFor(t, "the Send in the outbox", func() bool { return queued() == i })
	}
	giveUp, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { gaveUp <- c.Send(giveUp, TextFrame("given up")) }()
	waitFor(t, "the third Send in the outbox", func() bool { return queued() == 3 })
	assert.ErrorIs(t, c.Send(ctx, TextFrame("one too many")), ErrOutboxFull)
	cancel()
	assert.ErrorIs(t, <-gaveUp, context.Canceled)

	w2 := n.accept()
	clk.Advance(time.Second)
	rec.next(t, "connect")
	for range 2 {
		require.NoError(t, <-results)
	}
	require.NoError(t, c.Send(ctx, TextFrame("direct")))
	assert.Equal(t, []string{"subscribe", "queued-1", "queued-2", "direct"}, w2.texts())

	// Lost again: a Send that waits when Close comes fails with ErrClosed.
	w2.fail(&CloseError{Code: CloseServiceRestart})
	rec.next(t, "disconnect")
	clk.waitTimers(t, 1)
	waiting := make(chan error, 1)
	go func() { waiting <- c.Send(ctx, TextFrame("waits")) }()
	waitFor(t, "the Send in the outbox", func() bool { return queued() == 1 })
	require.NoError(t, c.Close(ctx, CloseNormal, ""))
	assert.ErrorIs(t, <-waiting, ErrClosed)
}

// TestSupervisorCertDropsCountedPerServer: drops after a certificate request
// stop the client at the third in a row, counted afresh when a decision moves
// the client to another URL.
func TestSupervisorCertDropsCountedPerServer(t *testing.T) {
	rec := newRecorder()
	rec.decide = func(d Disconnect) Decision {
		if d.Attempt == 2 {
			return Reconnect().WithURL("ws://other.test/feed")
		}
		return d.Suggested
	}
	c, n, clk := fakeClient(t, rec, fakeOpts())
	dropped := &TLSError{Remote: true, Err: fmt.Errorf("%w: %w", ErrCertDropped, io.EOF)}
	for range 5 {
		n.fail(dropped)
	}
	res := runFake(t, c)
	n.nextAttempt(t)
	for attempt := 1; attempt <= 5; attempt++ {
		d := rec.next(t, "disconnect").disc
		require.Equal(t, attempt, d.Attempt)
		require.ErrorIs(t, d.Err, ErrCertDropped)
		assert.Equal(t, attempt == 5, d.Suggested.IsStop(), "attempt %d: the third drop from other.test stops", attempt)
		if attempt < 5 {
			clk.waitTimers(t, 1)
			due, _ := clk.nextDue()
			clk.Advance(due)
			n.nextAttempt(t)
		}
	}
	assert.ErrorIs(t, <-res, ErrCertDropped)
}

// TestSupervisorACloseIsNoFailure: Client.Close and the handler's Conn.Close
// do not count as failures: Disconnect.Attempt and Stats.Failures stay as
// they were (0 here), while a real failure before them still counts.
func TestSupervisorACloseIsNoFailure(t *testing.T) {
	t.Run("Client.Close", func(t *testing.T) {
		rec := newRecorder()
		c, n, _ := fakeClient(t, rec, fakeOpts())
		n.accept()
		res := runFake(t, c)
		rec.next(t, "connect")
		require.NoError(t, c.Close(ctxTimeout(t, 5*time.Second), CloseNormal, ""))
		require.NoError(t, <-res)
		d := rec.next(t, "disconnect").disc
		assert.True(t, d.Final)
		assert.Zero(t, d.Attempt)
		assert.Zero(t, c.Stats().Failures)
	})
	t.Run("Conn.Close after a failure", func(t *testing.T) {
		rec := newRecorder()
		rec.onFrame = func(conn *Conn, f Frame) error { return conn.Close(CloseNormal, "done") }
		c, n, clk := fakeClient(t, rec, fakeOpts())
		n.fail(errFakeRefused)
		res := runFake(t, c)
		n.nextAttempt(t)
		assert.Equal(t, 1, rec.next(t, "disconnect").disc.Attempt)
		w := n.accept()
		retryAfterClock(t, n, clk, time.Second)
		rec.next(t, "connect")
		w.send(transport.OpText, "bye")
		d := rec.next(t, "disconnect").disc
		assert.True(t, d.Suggested.IsStop())
		assert.Equal(t, 1, d.Attempt, "the refused dial still counts; the close adds nothing")
		require.NoError(t, <-res)
		assert.Equal(t, 1, c.Stats().Failures)
	})
}

// TestSupervisorFailuresZeroOnceStable: Stats.Failures shows the failures in
// a row until the connection after them has been open for StableAfter, and
// 0 from then on, while it is still open (a fleet's dashboard reads it).
func TestSupervisorFailuresZeroOnceStable(t *testing.T) {
	rec := newRecorder()
	c, n, clk := fakeClient(t, rec, fakeOpts()) // StableAfter 10 s
	n.fail(errFakeRefused)
	n.fail(errFakeRefused)
	runFake(t, c)
	n.nextAttempt(t)
	rec.next(t, "disconnect")
	retryAfterClock(t, n, clk, time.Second)
	rec.next(t, "disconnect")
	n.accept()
	retryAfterClock(t, n, clk, 2*time.Second)
	rec.next(t, "connect")
	assert.Equal(t, 2, c.Stats().Failures, "just opened")
	clk.Advance(10*time.Second - time.Nanosecond)
	assert.Equal(t, 2, c.Stats().Failures, "not stable yet")
	clk.Advance(time.Nanosecond)
	assert.Zero(t, c.Stats().Failures, "stable, and still open")
}
