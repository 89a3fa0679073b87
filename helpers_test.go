package wsclient

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

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

// serverConfig shapes the test echo server.
type serverConfig struct {
	upgrader websocket.Upgrader
	// before runs before the upgrade; returning false means it answered itself.
	before func(w http.ResponseWriter, r *http.Request, n int) bool
	// serve replaces the echo loop.
	serve func(ws *websocket.Conn, n int)
}

// testServer is a gorilla echo server on loopback that counts connections.
type testServer struct {
	*httptest.Server
	conns   atomic.Int32
	mu      sync.Mutex
	live    map[*websocket.Conn]bool
	wg      sync.WaitGroup
	headers chan http.Header
}

func newTestServer(t *testing.T, cfg serverConfig) *testServer {
	t.Helper()
	s := &testServer{live: map[*websocket.Conn]bool{}, headers: make(chan http.Header, 1000)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.wg.Add(1)
		defer s.wg.Done()
		n := int(s.conns.Add(1))
		select {
		case s.headers <- r.Header.Clone():
		default:
		}
		if cfg.before != nil && !cfg.before(w, r, n) {
			return
		}
		ws, err := cfg.upgrader.Upgrade(w, r, nil)
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
	t.Cleanup(s.Close)
	return s
}

func (s *testServer) Close() {
	s.mu.Lock()
	for ws := range s.live {
		ws.NetConn().Close()
	}
	s.mu.Unlock()
	s.Server.CloseClientConnections()
	s.Server.Close()
	s.wg.Wait()
}

// discardRaw reads and drops the socket's bytes, answering nothing, until it closes.
func discardRaw(ws *websocket.Conn) { io.Copy(io.Discard, ws.NetConn()) }

func (s *testServer) wsURL() string { return "ws" + strings.TrimPrefix(s.URL, "http") }

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
