package wsclient

// Fuzz targets: a server sends fuzzed bytes, and the client must never panic,
// never hang past its timeouts and leave nothing behind.
//
//	go test -run XXX -fuzz FuzzServerFrames -fuzztime 60s .
//	go test -run XXX -fuzz FuzzHandshakeResponse -fuzztime 60s .
//
// Each execution runs one client (Run, one attempt, OnDisconnect stops) against
// a wstest server: for FuzzServerFrames one of its own, for
// FuzzHandshakeResponse one shared by the target, whose Response.Raw writes the
// fuzzed bytes as the handshake's answer. goleak would be too slow per
// execution; instead every execution checks that Run returned within its bound
// and that the client closed its socket (FuzzServerFrames: the server's end
// saw EOF, or a reset; FuzzHandshakeResponse, whose server hangs up after its
// answer: the client closed the net.Conn its NetDialContext gave it), and
// TestMain's goleak checks the whole run. The seed corpora are in
// testdata/fuzz/<target>.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ff42ae21/wsclient/wstest"
)

// fuzzInput is what the server sends on one connection.
type fuzzInput struct {
	response []byte // the whole handshake answer (FuzzHandshakeResponse)
	frames   []byte // sent after wstest's handshake (FuzzServerFrames)
	chunk    int    // write in pieces of this many bytes (0: one write)
	// dial, when set, is the client's NetDialContext.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	done chan struct{}
	err  error // set before done is closed: what was seen instead of the client closing its socket
}

// fuzzHarness is FuzzHandshakeResponse's server: a wstest server that answers
// each handshake request with the input the request's path names.
type fuzzHarness struct {
	srv    *wstest.Server
	next   atomic.Uint64
	inputs sync.Map // path -> *fuzzInput
}

func newFuzzHarness(f *testing.F) *fuzzHarness {
	h := &fuzzHarness{}
	srv, err := wstest.NewServer(&wstest.Options{WaitTimeout: 10 * time.Second, Check: h.answer})
	if err != nil {
		f.Fatal(err)
	}
	h.srv = srv
	f.Cleanup(srv.Close)
	return h
}

// answer is the server's answer to r: its input's bytes, "{ACCEPT}" in them
// the right Sec-WebSocket-Accept, written in pieces of in.chunk bytes (as long
// as that is at most 64 pieces); then the server hangs up (FIN), and the
// client must end, and close its socket.
func (h *fuzzHarness) answer(r *http.Request) *wstest.Response {
	v, ok := h.inputs.Load(r.URL.Path)
	if !ok {
		return &wstest.Response{Raw: func(*http.Request, io.Writer) {}} // nothing at all
	}
	in := v.(*fuzzInput)
	return &wstest.Response{Raw: func(r *http.Request, w io.Writer) {
		accept := wstest.AcceptKey(r.Header.Get("Sec-WebSocket-Key"))
		out := bytes.ReplaceAll(in.response, []byte("{ACCEPT}"), []byte(accept))
		size := len(out)
		if in.chunk > 0 && len(out)/in.chunk <= 64 {
			size = in.chunk
		}
		for len(out) > 0 {
			n := min(size, len(out))
			if _, err := w.Write(out[:n]); err != nil {
				return // the client hung up
			}
			if out = out[n:]; len(out) > 0 {
				// A scripted gap, so that the pieces arrive apart.
				time.Sleep(50 * time.Microsecond)
			}
		}
	}}
}

// closeNotifyConn runs closed once, on its first Close.
type closeNotifyConn struct {
	net.Conn
	once   sync.Once
	closed func()
}

func (c *closeNotifyConn) Close() error {
	c.once.Do(c.closed)
	return c.Conn.Close()
}

// fuzzHandler echoes data messages, stops at the first disconnect, and checks
// what the client promises about frames.
type fuzzHandler struct {
	limit       int
	mu          sync.Mutex
	violations  []string
	disconnects int
	terminates  int
}

func (h *fuzzHandler) violation(format string, args ...any) {
	h.mu.Lock()
	h.violations = append(h.violations, fmt.Sprintf(format, args...))
	h.mu.Unlock()
}

func (h *fuzzHandler) OnConnect(*Conn) error { return nil }

func (h *fuzzHandler) HandleFrame(c *Conn, f Frame) error {
	switch f.Type {
	case Text:
		if !utf8.Valid(f.Data) {
			h.violation("text message is not valid UTF-8: %q", f.Data)
		}
	case Ping, Pong:
		if len(f.Data) > 125 {
			h.violation("%v of %d bytes", f.Type, len(f.Data))
		}
		return nil
	case Binary:
	default:
		h.violation("frame of type %d", f.Type)
		return nil
	}
	if len(f.Data) > h.limit {
		h.violation("message of %d bytes over ReadLimit %d", len(f.Data), h.limit)
	}
	_ = c.Send(f)
	return nil
}

func (h *fuzzHandler) HandleInfo(*Conn, any) error { return nil }

func (h *fuzzHandler) OnDisconnect(d Disconnect) Decision {
	h.mu.Lock()
	h.disconnects++
	h.mu.Unlock()
	if d.Err == nil {
		h.violation("OnDisconnect without a cause")
	}
	return Stop()
}

func (h *fuzzHandler) Terminate(error) {
	h.mu.Lock()
	h.terminates++
	h.mu.Unlock()
}

// run makes one client attempt against in. in.done is closed when the client
// closes the socket it dialed (or when its dial fails, with in.err).
func (h *fuzzHarness) run(t *testing.T, in *fuzzInput) {
	path := fmt.Sprintf("/fuzz/%d", h.next.Add(1))
	in.done = make(chan struct{})
	var dialed atomic.Bool
	in.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dialed.Swap(true) {
			return nil, fmt.Errorf("fuzz: a second dial, for a single attempt")
		}
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			in.err = fmt.Errorf("the client's dial failed: %w", err)
			close(in.done)
			return nil, err
		}
		return &closeNotifyConn{Conn: nc, closed: func() { close(in.done) }}, nil
	}
	h.inputs.Store(path, in)
	defer h.inputs.Delete(path)
	runFuzzClient(t, h.srv.URL()+path[1:], in)
}

// serveFuzzFrames is FuzzServerFrames' server: after wstest's handshake it
// writes in.frames (in pieces of in.chunk bytes, as long as that is at most 64
// pieces), then nothing more (CloseWrite): the client must end, and close its
// socket (AfterClose). It closes in.done when it is over.
func serveFuzzFrames(srv *wstest.Server, in *fuzzInput) {
	defer close(in.done)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := srv.NextConn(ctx)
	if err != nil {
		in.err = err
		return
	}
	c.AwaitClientClose()
	if in.chunk > 0 && len(in.frames)/in.chunk <= 64 {
		_ = c.WriteSliced(in.frames, in.chunk, 50*time.Microsecond)
	} else {
		_ = c.WriteRaw(in.frames)
	}
	_ = c.CloseWrite() // fails when the connection has ended already
	_, in.err = c.AfterClose(ctx)
}

// runFuzzClient makes one client attempt at url, whose server serves in.
func runFuzzClient(t *testing.T, url string, in *fuzzInput) {
	const limit = 64 << 10
	handler := &fuzzHandler{limit: limit}
	c, err := New(url, handler, &Options{
		HandshakeTimeout: time.Second,
		WriteTimeout:     time.Second,
		CloseTimeout:     200 * time.Millisecond,
		PingInterval:     -1,
		ReadLimit:        limit,
		Backoff:          Backoff{Initial: time.Millisecond, Max: time.Millisecond},
		Logger:           discardLogger,
		Proxy:            NoProxy,
		NetDialContext:   in.dial,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Handshake, read and close are all bounded by the timeouts above.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	runErr := c.Run(ctx)
	if ctx.Err() != nil {
		t.Fatalf("Run hung for %v (returned %v)", time.Since(start), runErr)
	}
	select {
	case <-in.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the client's socket was still open after Run returned")
	}
	if in.err != nil {
		t.Errorf("the client did not close its socket: %v", in.err)
	}
	handler.mu.Lock()
	defer handler.mu.Unlock()
	if handler.disconnects != 1 || handler.terminates != 1 {
		t.Errorf("OnDisconnect called %d times, Terminate %d times; want 1 and 1", handler.disconnects, handler.terminates)
	}
	for _, v := range handler.violations {
		t.Error(v)
	}
	if got := c.State(); got != Closed {
		t.Errorf("state after Run: %v", got)
	}
}

// FuzzServerFrames: after a valid handshake, the server (wstest's, one per
// execution) sends fuzzed bytes.
func FuzzServerFrames(f *testing.F) {
	f.Add(encode(wText("hello"), wstest.CloseFrame(CloseNormal, "")), uint8(0))
	f.Add(encode(wText("hello")), uint8(1))
	f.Fuzz(func(t *testing.T, frames []byte, chunk uint8) {
		srv, err := wstest.NewServer(&wstest.Options{WaitTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		in := &fuzzInput{frames: frames, chunk: int(chunk), done: make(chan struct{})}
		go serveFuzzFrames(srv, in)
		defer func() {
			srv.Close() // ends serveFuzzFrames' waits, if they are still on
			<-in.done
		}()
		runFuzzClient(t, srv.URL(), in)
	})
}

// FuzzHandshakeResponse: the server (wstest's, shared by the target) answers
// the upgrade request with fuzzed bytes (Response.Raw), then hangs up;
// "{ACCEPT}" in them becomes the right Sec-WebSocket-Accept value.
func FuzzHandshakeResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n"), uint8(0))
	f.Add([]byte("HTTP/1.1 401 Unauthorized\r\nContent-Length: 5\r\n\r\nnope!"), uint8(0))
	h := newFuzzHarness(f)
	f.Fuzz(func(t *testing.T, response []byte, chunk uint8) {
		h.run(t, &fuzzInput{response: response, chunk: int(chunk)})
	})
}
