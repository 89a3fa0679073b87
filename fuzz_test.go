package wsclient

// Fuzz targets: a server sends fuzzed bytes, and the client must never panic,
// never hang past its timeouts and leave nothing behind.
//
//	go test -run XXX -fuzz FuzzServerFrames -fuzztime 60s .
//	go test -run XXX -fuzz FuzzHandshakeResponse -fuzztime 60s .
//
// Each execution runs one client (Run, one attempt, OnDisconnect stops) against
// a server: for FuzzServerFrames a wstest server of its own, for
// FuzzHandshakeResponse a raw one (internal/rawws: the fuzzed bytes are the
// handshake's answer) shared by the target. goleak would be too slow per
// execution; instead every execution checks that Run returned within its bound
// and that the client closed its socket (the server's end saw EOF, or a reset),
// and TestMain's goleak checks the whole run. The seed corpora are in
// testdata/fuzz/<target>.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ff42ae21/wsclient/internal/rawws"
	"github.com/ff42ae21/wsclient/wstest"
)

// fuzzInput is what the server sends on one connection.
type fuzzInput struct {
	custom   bool   // response replaces the valid 101
	response []byte // the whole handshake response
	frames   []byte // sent after the response
	chunk    int    // write in pieces of this many bytes (0: one write)
	done     chan struct{}
	err      error // set before done is closed: what the server saw instead of the client closing its socket
}

// fuzzHarness serves every execution's input on the path of its URL, with a
// handshake answer of the input's (FuzzHandshakeResponse).
type fuzzHarness struct {
	srv    *rawws.Server
	next   atomic.Uint64
	inputs sync.Map // path -> *fuzzInput
}

func newFuzzHarness(f *testing.F) *fuzzHarness {
	h := &fuzzHarness{}
	// The script writes the response itself, so that it can be cut into pieces.
	srv, err := rawws.NewServerWith(rawws.ServerOptions{Handshake: func(*http.Request, *bufio.Writer) {}}, h.serve)
	if err != nil {
		f.Fatal(err)
	}
	h.srv = srv
	f.Cleanup(srv.Close)
	return h
}

func (h *fuzzHarness) serve(c *rawws.Conn) {
	v, ok := h.inputs.Load(c.Request().URL.Path)
	if !ok {
		return
	}
	in := v.(*fuzzInput)
	defer close(in.done)
	accept := rawws.AcceptKey(c.Request().Header.Get("Sec-WebSocket-Key"))
	resp := []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n\r\n")
	if in.custom {
		resp = bytes.ReplaceAll(in.response, []byte("{ACCEPT}"), []byte(accept))
	}
	out := append(resp, in.frames...)
	if in.chunk > 0 && len(out)/in.chunk <= 64 {
		_ = c.WriteChunked(out, in.chunk, 50*time.Microsecond)
	} else {
		_ = c.WriteRaw(out)
	}
	// No more from the server: the client must end, and close its socket.
	_ = c.NetConn().(*net.TCPConn).CloseWrite()
	_, _ = c.ReadToEOF(10 * time.Second)
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

// run makes one client attempt against in.
func (h *fuzzHarness) run(t *testing.T, in *fuzzInput) {
	path := fmt.Sprintf("/fuzz/%d", h.next.Add(1))
	in.done = make(chan struct{})
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

// FuzzHandshakeResponse: the server answers the upgrade request with fuzzed
// bytes; "{ACCEPT}" in them becomes the right Sec-WebSocket-Accept value.
func FuzzHandshakeResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n"), uint8(0))
	f.Add([]byte("HTTP/1.1 401 Unauthorized\r\nContent-Length: 5\r\n\r\nnope!"), uint8(0))
	h := newFuzzHarness(f)
	f.Fuzz(func(t *testing.T, response []byte, chunk uint8) {
		h.run(t, &fuzzInput{custom: true, response: response, chunk: int(chunk)})
	})
}
