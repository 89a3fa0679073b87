package wsclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/wstest"
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

// byteCount counts the bytes read from and written to a socket.
type byteCount struct{ read, written atomic.Int64 }

// countingConn is a socket that counts its bytes in n.
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

// nextConn is srv.NextConn for the test goroutine: the server's side of the
// next connection, or the test fails.
func nextConn(t *testing.T, srv *wstest.Server) *wstest.Conn {
	t.Helper()
	c, err := srv.NextConn(t.Context())
	require.NoError(t, err)
	return c
}

// wireTap is an Options.NetDialContext that counts the sockets the client
// dialed and those it still holds open, and the bytes it read and wrote on
// them. With record set it also keeps what the client wrote on each socket
// (its first recordLimit bytes), for what a wstest.Conn does not show: the
// client's pongs, its TLS ClientHello.
type wireTap struct {
	record       bool
	dialed, open atomic.Int64
	bytes        byteCount
	mu           sync.Mutex
	conns        []*tapConn
}

const recordLimit = 1 << 20

func (w *wireTap) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	w.dialed.Add(1)
	w.open.Add(1)
	tc := &tapConn{Conn: nc, w: w}
	w.mu.Lock()
	w.conns = append(w.conns, tc)
	w.mu.Unlock()
	return tc, nil
}

// written is what the client wrote on its i-th socket (from 0) so far.
func (w *wireTap) written(i int) []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	if i >= len(w.conns) {
		return nil
	}
	tc := w.conns[i]
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return bytes.Clone(tc.out)
}

// tapFrame is a frame the client wrote, unmasked.
type tapFrame struct {
	op      byte
	payload []byte
}

// frames parses what the client wrote on its i-th socket (a ws one) after
// the handshake request: every complete frame so far.
func (w *wireTap) frames(i int) []tapFrame {
	b := w.written(i)
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return nil
	}
	b = b[end+4:]
	var out []tapFrame
	for len(b) >= 2 {
		op, n, h := b[0]&0x0f, uint64(b[1]&0x7f), 2
		switch n {
		case 126:
			if len(b) < 4 {
				return out
			}
			n, h = uint64(b[2])<<8|uint64(b[3]), 4
		case 127:
			if len(b) < 10 {
				return out
			}
			n, h = 0, 10
			for _, x := range b[2:10] {
				n = n<<8 | uint64(x)
			}
		}
		var key []byte
		if b[1]&0x80 != 0 {
			if len(b) < h+4 {
				return out
			}
			key, h = b[h:h+4], h+4
		}
		if uint64(len(b)-h) < n {
			return out
		}
		p := bytes.Clone(b[h : h+int(n)])
		for j := range p {
			if key != nil {
				p[j] ^= key[j%4]
			}
		}
		out = append(out, tapFrame{op: op, payload: p})
		b = b[h+int(n):]
	}
	return out
}

// waitFrame waits until the client wrote a frame of opcode op with payload
// on its i-th socket.
func (w *wireTap) waitFrame(t *testing.T, i int, op byte, payload string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, f := range w.frames(i) {
			if f.op == op && string(f.payload) == payload {
				return true
			}
		}
		return false
	}, 5*time.Second, time.Millisecond, "the client writes a frame of opcode %d with %q", op, payload)
}

// offeredALPN replays the TLS ClientHello the client wrote on its i-th
// socket to a throwaway tls.Server and returns the application protocols
// (ALPN) it offered.
func (w *wireTap) offeredALPN(t *testing.T, i int) []string {
	t.Helper()
	var protos []string
	seen := false
	stop := errors.New("ClientHello read")
	srv := tls.Server(&replayConn{r: bytes.NewReader(w.written(i))}, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			protos, seen = h.SupportedProtos, true
			return nil, stop
		},
	})
	_ = srv.Handshake()
	require.True(t, seen, "no ClientHello on socket %d", i)
	return protos
}

// replayConn reads recorded bytes and discards what is written.
type replayConn struct{ r *bytes.Reader }

func (c *replayConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *replayConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *replayConn) Close() error                     { return nil }
func (c *replayConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *replayConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *replayConn) SetDeadline(time.Time) error      { return nil }
func (c *replayConn) SetReadDeadline(time.Time) error  { return nil }
func (c *replayConn) SetWriteDeadline(time.Time) error { return nil }

// tapConn is one socket of a wireTap.
type tapConn struct {
	net.Conn
	w      *wireTap
	closed sync.Once
	mu     sync.Mutex
	out    []byte
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.w.bytes.read.Add(int64(n))
	return n, err
}

func (c *tapConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.w.bytes.written.Add(int64(n))
	if c.w.record {
		c.mu.Lock()
		if room := recordLimit - len(c.out); room > 0 {
			c.out = append(c.out, p[:min(n, room)]...)
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *tapConn) Close() error {
	c.closed.Do(func() { c.w.open.Add(-1) })
	return c.Conn.Close()
}

// nextData returns the next data frame (Text or Binary) the handler got,
// skipping pings and pongs; a disconnect first fails the test.
func (r *recorder) nextData(t *testing.T) recEvent {
	t.Helper()
	for {
		ev := r.next(t, "frame", "disconnect")
		if ev.kind == "disconnect" {
			t.Fatalf("disconnected while waiting for a frame: %v", ev.err)
		}
		if ev.frame.Type == Text || ev.frame.Type == Binary {
			return ev
		}
	}
}

// caseSlots bounds how many table cases run at once across a test (see
// eachConcurrently). Top-level tests run one after another, so one package
// semaphore serves them all.
var caseSlots = make(chan struct{}, 6)

// eachConcurrently runs fn(t, i) for i < n as the subtests name(i) of t, each
// on a goroutine of its own, and returns when all have ended. With slot, each
// holds one of caseSlots while it runs: cases that mostly wait on sockets and
// timers keep both cores busy, where t.Parallel would run only
// -test.parallel (GOMAXPROCS) of them at a time. Without slot (a level whose
// subtests only wait on their own cases) nothing bounds them.
func eachConcurrently(t *testing.T, n int, name func(i int) string, slot bool, fn func(t *testing.T, i int)) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if slot {
				caseSlots <- struct{}{}
				defer func() { <-caseSlots }()
			}
			t.Run(name(i), func(t *testing.T) { fn(t, i) })
		}()
	}
	wg.Wait()
}
