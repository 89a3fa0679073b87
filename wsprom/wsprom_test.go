package wsprom

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

const wait = 10 * time.Second

// handler tells the test what the client saw. A text "fail" makes
// HandleFrame fail, which fails the connection with 1011.
type handler struct {
	wsclient.BaseHandler
	connected chan struct{}
	frames    chan wsclient.Frame
	pongs     chan struct{}
}

func newHandler() *handler {
	return &handler{connected: make(chan struct{}, 64), frames: make(chan wsclient.Frame, 1024), pongs: make(chan struct{}, 1)}
}

func (h *handler) OnConnect(*wsclient.Conn) error { h.connected <- struct{}{}; return nil }

func (h *handler) HandleFrame(_ *wsclient.Conn, f wsclient.Frame) error {
	switch {
	case f.Type == wsclient.Pong:
		select {
		case h.pongs <- struct{}{}:
		default:
		}
	case f.Type == wsclient.Text && string(f.Data) == "fail":
		return errors.New("the handler fails on purpose")
	case f.Type == wsclient.Text || f.Type == wsclient.Binary:
		h.frames <- f
	}
	return nil
}

func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

func clientOptions() *wsclient.Options {
	return &wsclient.Options{
		PingInterval: 20 * time.Millisecond,
		PongTimeout:  2 * time.Second,
		Backoff:      wsclient.Backoff{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond},
		Proxy:        wsclient.NoProxy,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// start runs c until the test ends (or the test closes it) and returns
// Run's result channel.
func start(t *testing.T, c *wsclient.Client) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = c.Close(ctx, wsclient.CloseNormal, "")
		<-c.Done()
	})
	return done
}

func closeClient(t *testing.T, c *wsclient.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Close(ctx, wsclient.CloseNormal, "bye"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	<-c.Done()
}

// scrapeConcurrently gathers reg in a loop until the test ends, so that the
// race detector sees scrapes against hooks and Stats.
func scrapeConcurrently(t *testing.T, reg *prometheus.Registry) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := reg.Gather(); err != nil {
				t.Errorf("Gather: %v", err)
				return
			}
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })
}

// family returns the gathered family name (the namespace "t" and subsystem
// "websocket" added).
func family(t *testing.T, reg prometheus.Gatherer, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "t_websocket_"+name {
			return mf
		}
	}
	return nil
}

// metric returns the series of family name with exactly the labels given
// (name=value pairs), or nil.
func metric(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) *dto.Metric {
	t.Helper()
	mf := family(t, reg, name)
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.GetMetric() {
		if len(m.GetLabel()) != len(labels)/2 {
			continue
		}
		for _, lp := range m.GetLabel() {
			i := slices.Index(labels, lp.GetName())
			if i < 0 || i%2 != 0 || labels[i+1] != lp.GetValue() {
				continue next
			}
		}
		return m
	}
	return nil
}

// value is the value of a counter or gauge series (the test fails when it is missing).
func value(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	m := metric(t, reg, name, labels...)
	if m == nil {
		t.Fatalf("no series %s%v", name, labels)
	}
	if m.Counter != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

func eq(t *testing.T, what string, got, want float64) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// TestCollectorCountsWhatTheClientDid drives a real client through a
// refused handshake, a server close (1012), a dropped socket, a failing
// callback and Client.Close, with traffic both ways, and reads every metric
// back.
func TestCollectorCountsWhatTheClientDid(t *testing.T) {
	srv := newEchoServer(t)
	srv.reject.Store(1) // the first attempt gets a 503
	col := NewCollector(Options{Namespace: "t", Label: "feed"})
	reg := prometheus.NewPedanticRegistry() // checks Collect against Describe
	reg.MustRegister(col)
	scrapeConcurrently(t, reg)

	h := newHandler()
	opts := clientOptions()
	var userHook atomic.Int64
	opts.OnStateChange = func(wsclient.StateChange) { userHook.Add(1) }
	opts.OnStateChange = col.Observe("trades", opts.OnStateChange)
	c, err := wsclient.New(srv.url, h, opts)
	if err != nil {
		t.Fatal(err)
	}
	col.Track("trades", c)
	start(t, c)

	conn := srv.next(t)
	await(t, h.connected, "the first connection")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	sent := []wsclient.Frame{wsclient.TextFrame("a"), wsclient.TextFrame("bb"), wsclient.TextFrame("ccc"),
		wsclient.BinaryFrame(make([]byte, 10)), wsclient.BinaryFrame(make([]byte, 1000))}
	for _, f := range sent {
		if err := c.Send(ctx, f); err != nil {
			t.Fatal(err)
		}
		await(t, h.frames, "an echo")
	}
	await(t, h.pongs, "a pong")

	// While open.
	eq(t, "connected", value(t, reg, "connected", "feed", "trades"), 1)
	eq(t, "state open", value(t, reg, "state", "feed", "trades", "state", "open"), 1)
	eq(t, "state reconnecting", value(t, reg, "state", "feed", "trades", "state", "reconnecting"), 0)
	if v := value(t, reg, "connection_uptime_seconds", "feed", "trades"); v <= 0 {
		t.Errorf("uptime while open = %v, want > 0", v)
	}
	if v := value(t, reg, "ping_rtt_seconds", "feed", "trades"); v <= 0 {
		t.Errorf("ping RTT after a pong = %v, want > 0", v)
	}
	if v := value(t, reg, "pings_total", "feed", "trades"); v < 1 {
		t.Errorf("pings = %v, want >= 1", v)
	}
	eq(t, "connect failures (handshake)", value(t, reg, "connect_failures_total", "feed", "trades", "cause", "handshake"), 1)

	if err := conn.closeWith(wsclient.CloseServiceRestart); err != nil { // 1: a server close
		t.Fatal(err)
	}
	conn = srv.next(t)
	await(t, h.connected, "the second connection")
	conn.drop() // 2: a dropped socket
	srv.next(t)
	await(t, h.connected, "the third connection")
	if err := c.Send(ctx, wsclient.TextFrame("fail")); err != nil { // 3: HandleFrame fails
		t.Fatal(err)
	}
	srv.next(t)
	await(t, h.connected, "the fourth connection")
	closeClient(t, c) // 4: Client.Close

	st := c.Stats()
	expected := fmt.Sprintf(`
# HELP t_websocket_connects_total Handshakes that succeeded.
# TYPE t_websocket_connects_total counter
t_websocket_connects_total{feed="trades"} %d
# HELP t_websocket_connected Clients with an open connection (0 or 1 for one client).
# TYPE t_websocket_connected gauge
t_websocket_connected{feed="trades"} 0
# HELP t_websocket_state Clients in each connection state (0 or 1 for one client).
# TYPE t_websocket_state gauge
t_websocket_state{feed="trades",state="closed"} 1
t_websocket_state{feed="trades",state="closing"} 0
t_websocket_state{feed="trades",state="connecting"} 0
t_websocket_state{feed="trades",state="idle"} 0
t_websocket_state{feed="trades",state="open"} 0
t_websocket_state{feed="trades",state="reconnecting"} 0
# HELP t_websocket_disconnects_total Open connections that ended, by cause class and close-code class.
# TYPE t_websocket_disconnects_total counter
t_websocket_disconnects_total{cause="callback",code="1011",feed="trades"} 1
t_websocket_disconnects_total{cause="close",code="1012",feed="trades"} 1
t_websocket_disconnects_total{cause="closed",code="1000",feed="trades"} 1
t_websocket_disconnects_total{cause="network",code="1006",feed="trades"} 1
# HELP t_websocket_connect_failures_total Connection attempts that failed before the connection opened, by cause class.
# TYPE t_websocket_connect_failures_total counter
t_websocket_connect_failures_total{cause="handshake",feed="trades"} 1
# HELP t_websocket_messages_total Data messages by direction (received, sent) and type (text, binary).
# TYPE t_websocket_messages_total counter
t_websocket_messages_total{direction="received",feed="trades",type="binary"} %d
t_websocket_messages_total{direction="received",feed="trades",type="text"} %d
t_websocket_messages_total{direction="sent",feed="trades",type="binary"} %d
t_websocket_messages_total{direction="sent",feed="trades",type="text"} %d
# HELP t_websocket_message_bytes_total Payload bytes of the data messages by direction (received, sent) and type (text, binary).
# TYPE t_websocket_message_bytes_total counter
t_websocket_message_bytes_total{direction="received",feed="trades",type="binary"} %d
t_websocket_message_bytes_total{direction="received",feed="trades",type="text"} %d
t_websocket_message_bytes_total{direction="sent",feed="trades",type="binary"} %d
t_websocket_message_bytes_total{direction="sent",feed="trades",type="text"} %d
# HELP t_websocket_keepalive_timeouts_total Connections the keepalive found dead.
# TYPE t_websocket_keepalive_timeouts_total counter
t_websocket_keepalive_timeouts_total{feed="trades"} 0
# HELP t_websocket_pings_total Keepalive pings sent.
# TYPE t_websocket_pings_total counter
t_websocket_pings_total{feed="trades"} %d
# HELP t_websocket_connection_uptime_seconds How long the current connection has been open (the shortest of the open clients; 0: none open).
# TYPE t_websocket_connection_uptime_seconds gauge
t_websocket_connection_uptime_seconds{feed="trades"} 0
# HELP t_websocket_outbox_depth Frames waiting in the outbox for the next connection.
# TYPE t_websocket_outbox_depth gauge
t_websocket_outbox_depth{feed="trades"} 0
`,
		// What the server saw: 4 handshakes; "fail" was echoed, so it counts both ways.
		srv.upgrades.Load(),
		srv.txMsgs[1].Load(), srv.txMsgs[0].Load(), srv.rxMsgs[1].Load(), srv.rxMsgs[0].Load(),
		srv.txBytes[1].Load(), srv.txBytes[0].Load(), srv.rxBytes[1].Load(), srv.rxBytes[0].Load(),
		st.PingsSent)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expected),
		"t_websocket_connects_total", "t_websocket_connected", "t_websocket_state",
		"t_websocket_disconnects_total", "t_websocket_connect_failures_total",
		"t_websocket_messages_total", "t_websocket_message_bytes_total",
		"t_websocket_keepalive_timeouts_total", "t_websocket_pings_total",
		"t_websocket_connection_uptime_seconds", "t_websocket_outbox_depth"); err != nil {
		t.Error(err)
	}
	// And what the test did, in figures.
	eq(t, "connects", float64(srv.upgrades.Load()), 4)
	eq(t, "text sent", value(t, reg, "messages_total", "feed", "trades", "direction", "sent", "type", "text"), 4)
	eq(t, "text bytes sent", value(t, reg, "message_bytes_total", "feed", "trades", "direction", "sent", "type", "text"), 1+2+3+4)
	eq(t, "binary bytes received", value(t, reg, "message_bytes_total", "feed", "trades", "direction", "received", "type", "binary"), 1010)
	eq(t, "disconnects = Stats.Disconnects", sumFamily(family(t, reg, "disconnects_total")), float64(st.Disconnects))

	// One reconnect delay per change to Reconnecting (the 503 and three lost
	// connections), one duration per connection that ended (four).
	delay := metric(t, reg, "reconnect_delay_seconds", "feed", "trades").GetHistogram()
	eq(t, "reconnect delays observed", float64(delay.GetSampleCount()), 4)
	if max := opts.Backoff.Max.Seconds() * 4; delay.GetSampleSum() > max {
		t.Errorf("sum of delays %vs, above 4 x Backoff.Max", delay.GetSampleSum())
	}
	dur := metric(t, reg, "connection_duration_seconds", "feed", "trades").GetHistogram()
	eq(t, "connection durations observed", float64(dur.GetSampleCount()), 4)
	if dur.GetSampleSum() <= 0 {
		t.Errorf("sum of durations %v, want > 0", dur.GetSampleSum())
	}
	if userHook.Load() == 0 {
		t.Error("the user's own OnStateChange was not called")
	}
	checkLabelsBounded(t, reg, "feed", "trades")
}

func sumFamily(mf *dto.MetricFamily) float64 {
	var s float64
	for _, m := range mf.GetMetric() {
		s += m.GetCounter().GetValue()
	}
	return s
}

// checkLabelsBounded fails when any series has a label value outside the
// collector's fixed sets (or, for the user's label, outside values).
func checkLabelsBounded(t *testing.T, reg prometheus.Gatherer, label string, values ...string) {
	t.Helper()
	allowed := map[string][]string{
		label:       values,
		"state":     stateNames[:],
		"cause":     causeNames[:],
		"code":      codeNames,
		"direction": directions[:],
		"type":      {"text", "binary"},
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if set, ok := allowed[lp.GetName()]; !ok || !slices.Contains(set, lp.GetValue()) {
					t.Errorf("%s: label %s=%q is not in the bounded set", mf.GetName(), lp.GetName(), lp.GetValue())
				}
			}
		}
	}
}

// TestKeepaliveTimeoutCounted: a server that never answers a ping makes one
// keepalive timeout, counted twice over (the counter from Stats, the cause
// class from the hook).
func TestKeepaliveTimeoutCounted(t *testing.T) {
	srv := newEchoServer(t)
	srv.silent.Store(1)
	col := NewCollector(Options{Namespace: "t", Label: "feed"})
	h := newHandler()
	opts := clientOptions()
	opts.PongTimeout = 60 * time.Millisecond
	opts.OnStateChange = col.Observe("quiet", nil)
	c, err := wsclient.New(srv.url, h, opts)
	if err != nil {
		t.Fatal(err)
	}
	col.Track("quiet", c)
	start(t, c)
	srv.next(t)
	await(t, h.connected, "the silent connection")
	srv.next(t)
	await(t, h.connected, "the connection after the timeout")
	closeClient(t, c)

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	eq(t, "keepalive timeouts", value(t, reg, "keepalive_timeouts_total", "feed", "quiet"), 1)
	eq(t, "disconnects (keepalive)", value(t, reg, "disconnects_total", "feed", "quiet", "cause", "keepalive", "code", "1011"), 1)
	eq(t, "disconnects (closed)", value(t, reg, "disconnects_total", "feed", "quiet", "cause", "closed", "code", "1000"), 1)
	eq(t, "series of disconnects_total", float64(testutil.CollectAndCount(col, "t_websocket_disconnects_total")), 2)
	checkLabelsBounded(t, reg, "feed", "quiet")
}

// TestManyClientsOneLabel: clients that share a label value add up; Untrack
// removes a value's series; clients whose Run has ended keep their counts
// and are let go.
func TestManyClientsOneLabel(t *testing.T) {
	srv := newEchoServer(t)
	col := NewCollector(Options{Namespace: "t"}) // default label "client"
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	scrapeConcurrently(t, reg)

	var clients []*wsclient.Client
	for i, name := range []string{"fleet", "fleet", "fleet", "solo"} {
		h := newHandler()
		opts := clientOptions()
		opts.OnStateChange = col.Observe(name, nil)
		c, err := wsclient.New(srv.url, h, opts)
		if err != nil {
			t.Fatal(err)
		}
		col.Track(name, c)
		col.Track(name, c) // twice: counted once
		start(t, c)
		await(t, h.connected, "a connection")
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		for range i + 1 {
			if err := c.Send(ctx, wsclient.TextFrame("hello")); err != nil {
				t.Fatal(err)
			}
			await(t, h.frames, "an echo")
		}
		cancel()
		clients = append(clients, c)
	}
	eq(t, "fleet connected", value(t, reg, "connected", "client", "fleet"), 3)
	eq(t, "fleet open", value(t, reg, "state", "client", "fleet", "state", "open"), 3)
	eq(t, "fleet connects", value(t, reg, "connects_total", "client", "fleet"), 3)
	eq(t, "fleet text sent", value(t, reg, "messages_total", "client", "fleet", "direction", "sent", "type", "text"), 1+2+3)
	eq(t, "solo text sent", value(t, reg, "messages_total", "client", "solo", "direction", "sent", "type", "text"), 4)
	eq(t, "connected series", float64(testutil.CollectAndCount(col, "t_websocket_connected")), 2)
	checkLabelsBounded(t, reg, "client", "fleet", "solo")

	col.Untrack("solo")
	eq(t, "connected series after Untrack", float64(testutil.CollectAndCount(col, "t_websocket_connected")), 1)
	eq(t, "duration series after Untrack", float64(testutil.CollectAndCount(col, "t_websocket_connection_duration_seconds")), 1)
	checkLabelsBounded(t, reg, "client", "fleet")

	closeClient(t, clients[0])
	eq(t, "fleet connected, one closed", value(t, reg, "connected", "client", "fleet"), 2)
	eq(t, "fleet closed", value(t, reg, "state", "client", "fleet", "state", "closed"), 1)
	eq(t, "fleet text sent, one closed", value(t, reg, "messages_total", "client", "fleet", "direction", "sent", "type", "text"), 6)
	g := col.group("fleet")
	g.mu.Lock()
	left := len(g.clients)
	g.mu.Unlock()
	eq(t, "clients still held", float64(left), 2)
	eq(t, "fleet durations", float64(metric(t, reg, "connection_duration_seconds", "client", "fleet").GetHistogram().GetSampleCount()), 1)
}

// TestObserveOnly: without Track only the hook's series exist, and the hook
// costs no allocation.
func TestObserveOnly(t *testing.T) {
	col := NewCollector(Options{Namespace: "t", Label: "feed"})
	var next int
	hook := col.Observe("x", func(wsclient.StateChange) { next++ })
	lost := wsclient.StateChange{From: wsclient.Open, To: wsclient.Reconnecting, Uptime: time.Second, Delay: time.Second,
		Cause: &wsclient.CloseError{Code: wsclient.CloseAbnormal, Err: io.ErrUnexpectedEOF}}
	failed := wsclient.StateChange{From: wsclient.Connecting, To: wsclient.Reconnecting, Delay: time.Second,
		Cause: &wsclient.HandshakeError{StatusCode: 503}}
	hook(lost)
	hook(failed)
	if next != 2 {
		t.Errorf("next called %d times, want 2", next)
	}
	eq(t, "state series", float64(testutil.CollectAndCount(col, "t_websocket_state")), 0)
	eq(t, "disconnect series", float64(testutil.CollectAndCount(col, "t_websocket_disconnects_total")), 1)
	eq(t, "failure series", float64(testutil.CollectAndCount(col, "t_websocket_connect_failures_total")), 1)
	if n := testing.AllocsPerRun(100, func() { hook(lost); hook(failed) }); n != 0 {
		t.Errorf("the hook allocates %v times per call", n)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	h := metric(t, reg, "reconnect_delay_seconds", "feed", "x").GetHistogram()
	eq(t, "delays", float64(h.GetSampleCount()), 2+2*101)
	eq(t, "network disconnects", value(t, reg, "disconnects_total", "feed", "x", "cause", "network", "code", "1006"), 1+101)
}

func TestCauseClass(t *testing.T) {
	opErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	cases := []struct {
		err  error
		want string
	}{
		{nil, "closed"},
		{wsclient.ErrClosed, "closed"},
		{context.Canceled, "closed"},
		{&wsclient.CloseError{Local: true, Code: wsclient.CloseGoingAway, Err: context.DeadlineExceeded}, "closed"},
		{&wsclient.CloseError{Code: wsclient.CloseNormal}, "close"},
		{&wsclient.CloseError{Code: 4001, Reason: "kicked"}, "close"},
		{&wsclient.CloseError{Local: true, Code: wsclient.CloseNormal}, "closed"},
		{&wsclient.CloseError{Local: true, Code: wsclient.CloseMessageTooBig, Err: errors.New("too big")}, "close"},
		{&wsclient.HandshakeError{StatusCode: 401}, "handshake"},
		{&wsclient.TLSError{Err: x509.UnknownAuthorityError{}}, "tls"},
		{&wsclient.ProxyError{StatusCode: 407}, "proxy"},
		{&wsclient.CloseError{Local: true, Code: wsclient.CloseInternalError, Err: fmt.Errorf("%w (nothing)", wsclient.ErrKeepaliveTimeout)}, "keepalive"},
		{&wsclient.CloseError{Code: wsclient.CloseAbnormal, Err: io.ErrUnexpectedEOF}, "network"},
		{opErr, "network"},
		{fmt.Errorf("dial: %w", io.EOF), "network"},
		{context.DeadlineExceeded, "network"},
		{&wsclient.CloseError{Local: true, Code: wsclient.CloseInternalError, Err: &wsclient.CallbackError{Callback: "HandleFrame", Err: errors.New("bad")}}, "callback"},
		{fmt.Errorf("wrapped: %w", &wsclient.PanicError{Value: "boom"}), "callback"},
		{errors.New("wsclient: HeaderFunc: no token"), "other"},
		{(*wsclient.CloseError)(nil), "other"},
		{errors.Join(errors.New("x"), &wsclient.HandshakeError{StatusCode: 503}), "handshake"},
	}
	for _, tc := range cases {
		if got := CauseClass(tc.err); got != tc.want {
			t.Errorf("CauseClass(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestCloseCodeClass(t *testing.T) {
	for code, want := range map[int]string{-1: "none", 0: "other", 999: "other", 1000: "1000", 1003: "1003",
		1004: "other", 1005: "1005", 1006: "1006", 1011: "1011", 1012: "1012", 1014: "1014", 1015: "other",
		2999: "other", 3000: "3xxx", 3999: "3xxx", 4000: "4xxx", 4999: "4xxx", 5000: "other"} {
		if got := CloseCodeClass(code); got != want {
			t.Errorf("CloseCodeClass(%d) = %q, want %q", code, got, want)
		}
	}
	seen := map[string]bool{}
	for code := -2; code <= 70000; code++ {
		seen[CloseCodeClass(code)] = true
	}
	if len(seen) != numCodes {
		t.Errorf("%d classes over all codes, want %d: %v", len(seen), numCodes, seen)
	}
}

func TestNewCollectorRefusesBadLabels(t *testing.T) {
	for _, label := range []string{"state", "cause", "code", "direction", "type", "1feed", "fe-ed", "__x", "dup"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Label %q accepted", label)
				}
			}()
			NewCollector(Options{Label: label, ConstLabels: prometheus.Labels{"dup": "x"}})
		}()
	}
	col := NewCollector(Options{Label: "feed_2", ConstLabels: prometheus.Labels{"region": "eu"}})
	col.Observe("a", nil)
	if err := prometheus.NewPedanticRegistry().Register(col); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.CollectAndLint(col)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestCloseCodeMatchesCloseStatus(t *testing.T) {
	ce := &wsclient.CloseError{Code: 4001}
	for _, err := range []error{nil, io.EOF, ce, fmt.Errorf("a: %w", ce), errors.Join(io.EOF, fmt.Errorf("b: %w", ce)),
		fmt.Errorf("%w %w", io.EOF, &wsclient.CloseError{Code: 1012}), (*wsclient.CloseError)(nil)} {
		if got, want := closeCode(err), wsclient.CloseStatus(err); got != want {
			t.Errorf("closeCode(%v) = %d, CloseStatus says %d", err, got, want)
		}
	}
}
