package wsclient

import (
	"context"
	"crypto/tls"
	"flag"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/internal/faultproxy"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		// A fuzzing run: the fuzz engine's own goroutines may still be winding
		// down when m.Run returns. The leak proof is the ordinary test run.
		os.Exit(m.Run())
	}
	noticeMissingPeers()
	goleak.VerifyTestMain(m)
}

// discardLogger keeps the tests' output quiet.
var discardLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// testOptions are millisecond timings so that tests never wait long.
func testOptions() *Options {
	return &Options{
		HandshakeTimeout: 2 * time.Second,
		PingInterval:     -1,
		WriteTimeout:     2 * time.Second,
		CloseTimeout:     time.Second,
		Backoff:          Backoff{Initial: 5 * time.Millisecond, Max: 50 * time.Millisecond, Multiplier: 2},
		StableAfter:      time.Hour,
		Logger:           discardLogger,
		Proxy:            NoProxy,
	}
}

// recEvent is one callback, as the recorder saw it.
type recEvent struct {
	kind  string // connect, frame, info, disconnect, terminate
	gen   uint64
	frame Frame
	info  any
	disc  Disconnect
	err   error
}

// recorder is a Handler that reports every callback on a channel and checks that
// callbacks never overlap.
type recorder struct {
	events    chan recEvent
	inside    atomic.Int32
	overlaps  atomic.Int32
	onConnect func(c *Conn) error
	onFrame   func(c *Conn, f Frame) error
	onInfo    func(c *Conn, msg any) error
	decide    func(d Disconnect) Decision
}

func newRecorder() *recorder { return &recorder{events: make(chan recEvent, 10000)} }

func (r *recorder) enter() func() {
	if r.inside.Add(1) != 1 {
		r.overlaps.Add(1)
	}
	return func() { r.inside.Add(-1) }
}

func (r *recorder) OnConnect(c *Conn) error {
	defer r.enter()()
	r.events <- recEvent{kind: "connect", gen: c.Generation()}
	if r.onConnect != nil {
		return r.onConnect(c)
	}
	return nil
}

func (r *recorder) OnDisconnect(d Disconnect) Decision {
	defer r.enter()()
	r.events <- recEvent{kind: "disconnect", disc: d, err: d.Err}
	if r.decide != nil {
		return r.decide(d)
	}
	return Decision{}
}

func (r *recorder) HandleFrame(c *Conn, f Frame) error {
	defer r.enter()()
	r.events <- recEvent{kind: "frame", gen: c.Generation(), frame: f}
	if r.onFrame != nil {
		return r.onFrame(c, f)
	}
	return nil
}

func (r *recorder) HandleInfo(c *Conn, msg any) error {
	defer r.enter()()
	r.events <- recEvent{kind: "info", gen: c.Generation(), info: msg}
	if r.onInfo != nil {
		return r.onInfo(c, msg)
	}
	return nil
}

func (r *recorder) Terminate(err error) {
	defer r.enter()()
	r.events <- recEvent{kind: "terminate", err: err}
}

// next returns the next event of one of kinds, skipping others, or fails.
func (r *recorder) next(t *testing.T, kinds ...string) recEvent {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-r.events:
			for _, k := range kinds {
				if ev.kind == k {
					return ev
				}
			}
		case <-timeout:
			t.Fatalf("no %v event within 5s", kinds)
		}
	}
}

// serverConfig shapes the test server; the zero value is a ws echo server.
type serverConfig struct {
	upgrader   websocket.Upgrader
	tls        *tls.Config // serve wss with this config (nil: ws)
	respHeader http.Header // added to the 101 response
	// before runs before the upgrade; returning false means it answered itself.
	before func(w http.ResponseWriter, r *http.Request, n int) bool
	// serve replaces the echo loop.
	serve func(ws *websocket.Conn, n int)
	// counted, when set, counts the bytes the server reads and writes.
	counted *byteCount
}

// seenRequest is what a testServer saw of one handshake request.
type seenRequest struct {
	Header http.Header
	TLS    *tls.ConnectionState
}

// testServer is a gorilla echo server on loopback, ws or wss, that counts
// connections, records the requests and closes every socket at cleanup. Its
// error log is discarded: the TLS tests fail handshakes on purpose.
type testServer struct {
	*httptest.Server
	conns    atomic.Int32
	requests chan seenRequest
	mu       sync.Mutex
	live     map[*websocket.Conn]bool
	wg       sync.WaitGroup
}

func newTestServer(t *testing.T, cfg serverConfig) *testServer {
	t.Helper()
	s := &testServer{live: map[*websocket.Conn]bool{}, requests: make(chan seenRequest, 1000)}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.wg.Add(1)
		defer s.wg.Done()
		n := int(s.conns.Add(1))
		select {
		case s.requests <- seenRequest{Header: r.Header.Clone(), TLS: r.TLS}:
		default:
		}
		if cfg.before != nil && !cfg.before(w, r, n) {
			return
		}
		ws, err := cfg.upgrader.Upgrade(w, r, cfg.respHeader)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.live[ws] = true
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.live, ws)
			s.mu.Unlock()
			ws.Close()
		}()
		if cfg.serve != nil {
			cfg.serve(ws, n)
			return
		}
		echo(ws)
	}))
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	if cfg.counted != nil {
		s.Listener = &countingListener{Listener: s.Listener, n: cfg.counted}
	}
	if cfg.tls != nil {
		s.TLS = cfg.tls
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func (s *testServer) Close() {
	s.dropLive()
	s.Server.CloseClientConnections()
	s.Server.Close()
	s.wg.Wait()
}

// dropLive closes the socket of every live connection, without a close frame.
func (s *testServer) dropLive() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ws := range s.live {
		ws.NetConn().Close()
	}
}

// liveConns is the number of upgraded connections whose handler still runs.
func (s *testServer) liveConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

// wsURL is the server's ws:// or wss:// URL, on 127.0.0.1.
func (s *testServer) wsURL() string { return "ws" + strings.TrimPrefix(s.URL, "http") }

// addr is the server's 127.0.0.1:port.
func (s *testServer) addr() string { return s.Listener.Addr().String() }

// request returns the next request the server saw.
func (s *testServer) request(t *testing.T) seenRequest {
	t.Helper()
	select {
	case r := <-s.requests:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no request within 5s")
		return seenRequest{}
	}
}

type byteCount struct{ read, written atomic.Int64 }

type countingListener struct {
	net.Listener
	n *byteCount
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: l.n}, nil
}

type countingConn struct {
	net.Conn
	n *byteCount
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.read.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.written.Add(int64(n))
	return n, err
}

// discardRaw reads and drops the socket's bytes, answering nothing, until it closes.
func discardRaw(ws *websocket.Conn) { io.Copy(io.Discard, ws.NetConn()) }

// echo sends every message back until the connection ends.
func echo(ws *websocket.Conn) {
	for {
		mt, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if err := ws.WriteMessage(mt, data); err != nil {
			return
		}
	}
}

// everyTick calls write every tick on a goroutine of its own until write fails
// or stop is called; stop waits for the goroutine. With tick <= 0 it does nothing.
func everyTick(tick time.Duration, write func() error) (stop func()) {
	if tick <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(tick)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				if write() != nil {
					return
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// newFaultProxy puts a fault proxy in front of upstream. Its cleanup runs
// after the client's (registered later), and lifts any blackhole first.
func newFaultProxy(t *testing.T, upstream string) *faultproxy.Proxy {
	t.Helper()
	px, err := faultproxy.New(upstream)
	require.NoError(t, err)
	t.Cleanup(func() {
		px.Blackhole(false)
		px.Close()
	})
	return px
}

// startClient runs c in the background; the returned func waits for Run's result.
func startClient(t *testing.T, c *Client) func() error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background()) }()
	var once sync.Once
	var result error
	wait := func() error {
		once.Do(func() {
			select {
			case result = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return within 10s")
			}
		})
		return result
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(ctx, CloseNormal, "")
		wait()
	})
	return wait
}

func mustNew(t *testing.T, url string, h Handler, o *Options) *Client {
	t.Helper()
	c, err := New(url, h, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
