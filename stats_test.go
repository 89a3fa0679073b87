package wsclient

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/internal/transport"
	"github.com/ff42ae21/wsclient/wstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStatsCountWhatTheServerSaw: the counters match what a real server
// received and sent, and the disconnect fields tell the last cause.
func TestStatsCountWhatTheServerSaw(t *testing.T) {
	srv := wstest.Start(t, &wstest.Options{Echo: true})
	rec := newRecorder()
	o := testOptions()
	o.PingInterval, o.PongTimeout = 20*time.Millisecond, time.Second
	c := mustNew(t, srv.URL(), rec, o)
	startClient(t, c)
	rec.next(t, "connect")
	sc := nextConn(t, srv)
	ctx := ctxTimeout(t, 5*time.Second)
	sizes := []int{1, 100, 5000, 70000}
	total := 0
	for _, n := range sizes {
		require.NoError(t, c.Send(ctx, BinaryFrame(make([]byte, n))))
		total += n
		rec.nextData(t) // its echo (pongs arrive as frames too)
	}
	// PingsSent counts a ping once Ping returned: its pong can be in first.
	require.Eventually(t, func() bool { s := c.Stats(); return s.RTT > 0 && s.PingsSent > 0 }, 5*time.Second, time.Millisecond,
		"a ping was sent and answered")
	s := c.Stats()
	assert.Equal(t, Open, s.State)
	assert.Equal(t, uint64(1), s.Connects)
	assert.Equal(t, uint64(1), s.Generation)
	assert.Equal(t, uint64(len(sizes)), s.Sent.Messages())
	assert.Equal(t, uint64(total), s.Sent.Bytes())
	srvBytes := 0
	for _, m := range sc.Received() {
		srvBytes += len(m.Data)
	}
	assert.Equal(t, len(sc.Received()), int(s.Sent.Messages()), "what the server received")
	assert.Equal(t, srvBytes, int(s.Sent.Bytes()))
	assert.Equal(t, uint64(len(sizes)), s.Received.Messages())
	assert.Equal(t, uint64(total), s.Received.Bytes())
	assert.Positive(t, s.PingsSent)
	assert.False(t, s.LastPong.IsZero())
	assert.Positive(t, s.Uptime)
	assert.Nil(t, s.LastCause)
	assert.Equal(t, uint64(len(sizes)), s.Sent.BinaryMessages)
	assert.Zero(t, s.Sent.TextMessages)

	sc.SetEcho(false)
	require.NoError(t, c.Send(ctx, TextFrame("bye")))
	require.NoError(t, srv.Wait(ctx, func(wstest.Stats) bool { return len(sc.Received()) == len(sizes)+1 }))
	require.Equal(t, "bye", string(sc.Received()[len(sizes)].Data))
	require.NoError(t, sc.Close(CloseServiceRestart, ""))
	d := rec.next(t, "disconnect").disc
	s = c.Stats()
	assert.Equal(t, uint64(1), s.Disconnects)
	assert.Equal(t, 1, s.Failures)
	assert.Equal(t, CloseServiceRestart, s.LastCloseCode)
	assert.Equal(t, d.Err, s.LastCause)
	rec.next(t, "connect")
	assert.Equal(t, uint64(2), c.Stats().Connects)
}

// TestStatsQueues: the outbox and Info queue lengths.
func TestStatsQueues(t *testing.T) {
	o := testOptions()
	o.OutboxSize = 4
	rec := newRecorder()
	c, n, _ := fakeClient(t, rec, o)
	for range 2 {
		go func() { _ = c.Send(context.Background(), TextFrame("q")) }()
	}
	waitFor(t, "two frames queued", func() bool { return c.Stats().Outbox == 2 })
	require.NoError(t, c.Info(context.Background(), "i"))
	assert.Equal(t, 1, c.Stats().InfoQueue)
	assert.Equal(t, Idle, c.Stats().State)
	w := n.accept()
	runFake(t, c)
	waitFor(t, "the outbox written", func() bool { return len(w.texts()) == 2 })
	waitFor(t, "queues drained", func() bool { s := c.Stats(); return s.Outbox == 0 && s.InfoQueue == 0 })
}

// gate is a DialLimiter the test opens one attempt at a time.
type gate struct {
	waiting chan struct{}
	open    chan struct{}
}

func (g *gate) Wait(ctx context.Context) error {
	g.waiting <- struct{}{}
	select {
	case <-g.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestDialLimiterGatesEveryAttempt: every attempt, reconnects included, waits
// on the limiter before it dials; Close cuts the wait short.
func TestDialLimiterGatesEveryAttempt(t *testing.T) {
	g := &gate{waiting: make(chan struct{}, 10), open: make(chan struct{})}
	o := testOptions()
	o.DialLimiter = g
	rec := newRecorder()
	c, n, clk := fakeClient(t, rec, o)
	w := n.accept()
	res := make(chan error, 1)
	go func() { res <- c.Run(context.Background()) }()
	<-g.waiting
	assert.Equal(t, int32(0), n.attempts.Load(), "no dial before the limiter lets it")
	g.open <- struct{}{}
	rec.next(t, "connect")
	w.fail(&CloseError{Code: CloseServiceRestart})
	rec.next(t, "disconnect")
	clk.waitTimers(t, 1)
	d, _ := clk.nextDue()
	clk.Advance(d)
	<-g.waiting // the reconnect waits too
	assert.Equal(t, int32(1), n.attempts.Load())
	require.NoError(t, c.Close(ctxTimeout(t, 5*time.Second), CloseNormal, ""))
	require.NoError(t, <-res)
	assert.Equal(t, int32(1), n.attempts.Load(), "Close cut the wait: no dial")
}

// TestLogLinesCarryTheClientsAttributes: every line has the redacted URL, the
// generation and the state, and keeps the user's own attributes; a routine
// reconnect costs one Info line.
// reconnectLogged runs a client whose logger (at level, with a "feed"
// attribute) sees one connection with a secret in its URL, a frame, a
// 1012 from the server and the reconnect; it returns the log lines.
func reconnectLogged(t *testing.T, level slog.Level) []string {
	t.Helper()
	var logs syncBuffer
	o := testOptions()
	o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: level})).With("feed", "trades")
	rec := newRecorder()
	c, n, clk := fakeClient(t, rec, o)
	c.setLogURL(mustURL(t, "ws://fake.test/feed?token=SECRET"))
	w := n.accept()
	n.accept()
	runFake(t, c)
	rec.next(t, "connect")
	w.send(transport.OpText, "x")
	w.fail(&CloseError{Code: CloseServiceRestart})
	rec.next(t, "disconnect")
	clk.waitTimers(t, 1)
	d, _ := clk.nextDue()
	clk.Advance(d)
	rec.next(t, "connect")
	return strings.Split(strings.TrimSpace(logs.String()), "\n")
}

func TestLogLinesCarryTheClientsAttributes(t *testing.T) {
	lines := reconnectLogged(t, slog.LevelInfo)
	require.Len(t, lines, 1, "one Info line per routine reconnect: %q", lines)
	for _, want := range []string{"feed=trades", "url=", "token=REDACTED", "generation=1", "state=", "disconnected"} {
		assert.Contains(t, lines[0], want)
	}
	assert.NotContains(t, lines[0], "SECRET")
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u
}

// TestStateChangeCarriesUptimeAndDelay: the change after a lost connection
// says how long it was open, a change to Reconnecting how long the wait is.
func TestStateChangeCarriesUptimeAndDelay(t *testing.T) {
	changes := make(chan StateChange, 20)
	o := testOptions()
	o.OnStateChange = func(sc StateChange) { changes <- sc }
	rec := newRecorder()
	c, n, clk := fakeClient(t, rec, o)
	w := n.accept()
	runFake(t, c)
	rec.next(t, "connect")
	clk.Advance(3 * time.Second)
	w.fail(&CloseError{Code: CloseServiceRestart})
	for sc := range changes {
		if sc.To == Reconnecting {
			assert.Equal(t, Open, sc.From)
			assert.Equal(t, 3*time.Second, sc.Uptime)
			assert.Positive(t, sc.Delay)
			assert.LessOrEqual(t, sc.Delay, o.Backoff.Max)
			return
		}
		assert.Zero(t, sc.Uptime, "%v -> %v", sc.From, sc.To)
	}
}

// TestNetDialContextCarriesProxyAndTLS: a custom dialer makes the TCP
// connection (to the proxy when there is one); the proxy tunnel and TLS run
// on top of it.
func TestNetDialContextCarriesProxyAndTLS(t *testing.T) {
	// The proxy resolves localhost, a name on wstest's certificate: the
	// client verifies it by the URL's host name.
	srv := wstest.Start(t, &wstest.Options{TLS: true, Echo: true})
	px := newConnectProxy(t, map[string]string{"localhost:443": srv.Addr()})
	dialed := make(chan string, 10)
	rec := newRecorder()
	o := testOptions()
	o.TLSConfig = &tls.Config{RootCAs: srv.CertPool()}
	o.Proxy = http.ProxyURL(px.url("", ""))
	o.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed <- addr
		return (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}).DialContext(ctx, network, addr)
	}
	c := mustNew(t, "wss://localhost/", rec, o)
	startClient(t, c)
	rec.next(t, "connect")
	assert.Equal(t, px.ln.Addr().String(), <-dialed, "the custom dialer reaches the proxy")
	assert.Equal(t, "localhost:443", <-px.seen, "the tunnel runs on top of it")
	assert.Equal(t, "localhost", srv.Requests()[0].TLS.ServerName, "TLS runs on top of the tunnel, for the URL's host")
	echoThrough(t, c, rec, TextFrame("through a custom dialer"))
}

// TestInfoServedWhileTheDialWaits: DialLimiter.Wait (like NetDialContext)
// runs on the dial goroutine, outside the handler lock, as documented: while
// it waits, the owner keeps serving HandleInfo.
func TestInfoServedWhileTheDialWaits(t *testing.T) {
	g := &gate{waiting: make(chan struct{}, 10), open: make(chan struct{})}
	o := testOptions()
	o.DialLimiter = g
	rec := newRecorder()
	c, n, _ := fakeClient(t, rec, o)
	n.accept()
	runFake(t, c)
	<-g.waiting // the dial is held in Wait
	require.NoError(t, c.Info(context.Background(), "while waiting"))
	assert.Equal(t, "while waiting", rec.next(t, "info").info)
	assert.Equal(t, int32(0), n.attempts.Load(), "still waiting: HandleInfo overlapped Wait")
	g.open <- struct{}{}
	rec.next(t, "connect")
}

// TestStatsPingCountedBeforeItsPong: a pong (and the RTT it gives) can be in
// before Ping returns; Stats never shows an RTT without the ping that got it.
func TestStatsPingCountedBeforeItsPong(t *testing.T) {
	o := testOptions()
	o.PingInterval, o.PongTimeout = time.Second, time.Second
	rec := newRecorder()
	seen, got := make(chan Stats, 1), make(chan Stats, 1) // handler -> onPing -> test
	rec.onFrame = func(c *Conn, f Frame) error {
		if f.Type == Pong {
			seen <- c.client.Stats()
		}
		return nil
	}
	c, n, clk := fakeClient(t, rec, o)
	w := n.accept()
	var once sync.Once
	w.onPing = func(p []byte) {
		// The server answers the first ping at once, and the handler sees
		// the pong while the keepalive is still inside Ping.
		once.Do(func() {
			w.in <- fakeRead{m: transport.Message{Op: transport.OpPong, Data: append([]byte(nil), p...)}}
			select {
			case st := <-seen:
				got <- st
			case <-time.After(5 * time.Second):
			}
		})
	}
	runFake(t, c)
	rec.next(t, "connect")
	clk.waitTimers(t, 1)
	clk.Advance(time.Second)
	var st Stats
	select {
	case st = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no pong reached the handler while Ping ran")
	}
	assert.Equal(t, uint64(1), st.PingsSent, "Stats while the pong is handled: %+v", st)
}

// TestEveryLogLineCarriesStateAndGeneration: at Debug too, every line the
// client writes (the state changes included) carries the user's
// attributes, the redacted URL, the generation and the state.
func TestEveryLogLineCarriesStateAndGeneration(t *testing.T) {
	lines := reconnectLogged(t, slog.LevelDebug)
	require.Greater(t, len(lines), 3, "%q", lines)
	for _, line := range lines {
		for _, want := range []string{"feed=trades", `url="ws://fake.test/feed?token=REDACTED"`, "generation=", "state="} {
			assert.Contains(t, line, want)
		}
		assert.NotContains(t, line, "SECRET")
	}
}
