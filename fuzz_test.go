package wsclient

// Fuzz targets: a raw server sends fuzzed bytes, and the client must never panic,
// never hang past its timeouts and leave nothing behind.
//
//	go test -run XXX -fuzz FuzzServerFrames -fuzztime 60s .
//	go test -run XXX -fuzz FuzzHandshakeResponse -fuzztime 60s .
//
// Each execution runs one client (Run, one attempt, OnDisconnect stops) against
// a raw server shared by the target. goleak would be too slow per execution;
// instead every execution checks that Run returned within its bound and that
// the client closed its socket (the server's end saw EOF), and TestMain's goleak
// checks the whole run. The seed corpora are in testdata/fuzz/<target>.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ff42ae21/wsclient/internal/rawws"
	"github.com/gorilla/websocket"
)

// fuzzInput is what the server sends on one connection.
type fuzzInput struct {
	custom   bool   // response replaces the valid 101
	response []byte // the whole handshake response
	frames   []byte // sent after the response
	chunk    int    // write in pieces of this many bytes (0: one write)
	done     chan struct{}
}

// fuzzHarness serves every execution's input on the path of its URL.
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

	const limit = 64 << 10
	handler := &fuzzHandler{limit: limit}
	c, err := New(h.srv.URL()+path[1:], handler, &Options{
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

// FuzzServerFrames: after a valid handshake, the server sends fuzzed bytes.
func FuzzServerFrames(f *testing.F) {
	f.Add(encode(rawws.Text("hello"), rawws.CloseFrame(CloseNormal, "")), uint8(0))
	f.Add(encode(rawws.Text("hello")), uint8(1))
	h := newFuzzHarness(f)
	f.Fuzz(func(t *testing.T, frames []byte, chunk uint8) {
		h.run(t, &fuzzInput{frames: frames, chunk: int(chunk)})
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

// The wire watcher must never change what gorilla sees, except for the close
// frames it judges: wireStream is a random valid stream of frames (messages,
// fragmented or not, control frames between fragments, every length form) that
// ends with a close frame of some kind and trailing bytes, and what gorilla must
// make of it when it reads through a watcher.
type wireStream struct {
	frames   []rawws.Frame
	trailer  []byte
	messages []Frame // Text and Binary as gorilla must deliver them
	pings    []string
	// The close: what gorilla reports, and what the watcher finds.
	closeCode   int // websocket.CloseError code; 0: gorilla fails the frame; -1: no close (EOF)
	closeText   string
	verdict     int // the watcher's failure code, 0 for none
	realCode    int // the code behind a stand-in
	httpVariant int
}

func randomStream(r *rand.Rand) wireStream {
	var s wireStream
	sizes := []int{0, 1, 2, 125, 126, 127, 128, 1000, 65535, 65536, 70000}
	control := func() {
		p := make([]byte, r.Intn(126))
		r.Read(p)
		if r.Intn(2) == 0 {
			s.frames = append(s.frames, rawws.Ping(p))
			s.pings = append(s.pings, string(p))
		} else {
			s.frames = append(s.frames, rawws.Pong(p))
		}
	}
	form := func(f rawws.Frame) rawws.Frame {
		switch r.Intn(4) {
		case 1:
			if len(f.Payload) <= 0xffff {
				f.LengthForm = rawws.Len16
			}
		case 2:
			f.LengthForm = rawws.Len64
		}
		return f
	}
	for n := r.Intn(8); n > 0; n-- {
		if r.Intn(3) == 0 {
			control()
		}
		size := sizes[r.Intn(len(sizes))]
		if r.Intn(2) == 0 {
			size = r.Intn(300)
		}
		p := make([]byte, size)
		r.Read(p)
		op, t := byte(rawws.OpBinary), Binary
		if r.Intn(2) == 0 {
			op, t = rawws.OpText, Text // gorilla does not check UTF-8; the watcher neither
		}
		s.messages = append(s.messages, Frame{Type: t, Data: p})
		parts := 1 + r.Intn(4)
		for i, f := range fragments(op, p, max(1, (len(p)+parts-1)/parts)) {
			if i > 0 && r.Intn(2) == 0 {
				control()
			}
			s.frames = append(s.frames, form(f))
		}
	}
	reason := func(valid bool) string {
		if valid {
			return []string{"", "bye", "κόσμε", star(123)}[r.Intn(4)]
		}
		return []string{"\xff", "abc\xe2\x82", "\xed\xa0\x80", "ok\xc0\xaf"}[r.Intn(4)]
	}
	switch r.Intn(8) {
	case 0:
		s.closeCode = -1 // no close: the stream just ends
	case 1:
		s.frames = append(s.frames, rawws.CloseFrameRaw(nil))
		s.closeCode = CloseNoStatus
	case 2:
		s.frames = append(s.frames, rawws.CloseFrameRaw([]byte{byte(r.Intn(256))}))
		s.closeCode, s.verdict = CloseNoStatus, CloseProtocolError
	case 3:
		code := []int{1000, 1001, 1011, 3000, 4999}[r.Intn(5)]
		s.closeText = reason(true)
		s.frames = append(s.frames, rawws.CloseFrame(code, s.closeText))
		s.closeCode = code
	case 4:
		code := []int{1000, 1002, 4000}[r.Intn(3)]
		s.frames = append(s.frames, rawws.CloseFrame(code, reason(false)))
		s.closeCode, s.verdict = code, CloseInvalidPayload
	case 5:
		s.closeText = reason(true)
		s.frames = append(s.frames, rawws.CloseFrame(CloseBadGateway, s.closeText))
		s.closeCode, s.realCode = CloseNormal, CloseBadGateway
	case 6:
		s.frames = append(s.frames, rawws.CloseFrame([]int{0, 999, 1005, 1015, 5000}[r.Intn(5)], reason(r.Intn(2) == 0)))
		s.closeCode = 0
	case 7:
		s.frames = append(s.frames, rawws.CloseFrame(CloseGoingAway, star(124))) // payload over 125
		s.closeCode = 0
	}
	if s.closeCode != -1 {
		s.trailer = make([]byte, r.Intn(20))
		r.Read(s.trailer)
	}
	s.httpVariant = r.Intn(3)
	return s
}

// checkWireStream has gorilla read s through a watcher, over loopback, with the
// server's bytes cut into writes of random sizes.
func checkWireStream(t *testing.T, s wireStream, r *rand.Rand) {
	t.Helper()
	var out []byte
	out = append(out, encode(s.frames...)...)
	out = append(out, s.trailer...)
	cuts := r.Intn(3)
	srv, err := rawws.NewServerWith(rawws.ServerOptions{Handshake: func(*http.Request, *bufio.Writer) {}}, func(c *rawws.Conn) {
		accept := rawws.AcceptKey(c.Request().Header.Get("Sec-WebSocket-Key"))
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n\r\n"
		switch s.httpVariant {
		case 1:
			resp = strings.ReplaceAll(resp, "\r\n", "\n")
		case 2:
			resp = strings.Replace(resp, "\r\n\r\n", "\r\nX-Folded: a\r\n\tb\r\nX-Empty:\r\n\r\n", 1)
		}
		all := append([]byte(resp), out...)
		switch cuts {
		case 0:
			_ = c.WriteRaw(all)
		case 1: // in single bytes around the response's end and the first frame
			cut := min(len(resp)+16, len(all))
			_ = c.WriteChunked(all[:cut], 1, 0)
			_ = c.WriteRaw(all[cut:])
		default:
			for len(all) > 0 {
				n := min(len(all), 1+r.Intn(3000))
				if r.Intn(4) == 0 {
					n = min(len(all), 1+r.Intn(3))
				}
				if c.WriteRaw(all[:n]) != nil {
					break
				}
				all = all[n:]
			}
		}
		_ = c.NetConn().(*net.TCPConn).CloseWrite()
		_, _ = c.ReadToEOF(5 * time.Second)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var wire *wireConn
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var nd net.Dialer
		c, err := nd.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		wire = watchWire(c).(*wireConn)
		return wire, nil
	}}
	ws, _, err := d.Dial(srv.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var pings []string
	ws.SetPingHandler(func(p string) error { pings = append(pings, p); return nil })
	var verdict *CloseError
	var realCode int
	ws.SetCloseHandler(func(int, string) error { verdict, realCode = wire.closeVerdict(); return nil })
	var got []Frame
	var readErr error
	for {
		mt, p, err := ws.ReadMessage()
		if err != nil {
			readErr = err
			break
		}
		got = append(got, Frame{Type: MessageType(mt), Data: p})
	}
	if len(got) != len(s.messages) {
		t.Fatalf("gorilla read %d messages, want %d (then %v)", len(got), len(s.messages), readErr)
	}
	for i := range got {
		if got[i].Type != s.messages[i].Type || !bytes.Equal(got[i].Data, s.messages[i].Data) {
			t.Fatalf("message %d: got %v of %d bytes, want %v of %d bytes", i, got[i].Type, len(got[i].Data), s.messages[i].Type, len(s.messages[i].Data))
		}
	}
	if !slices.Equal(pings, s.pings) {
		t.Fatalf("pings: got %d, want %d", len(pings), len(s.pings))
	}
	var ce *websocket.CloseError
	switch {
	case s.closeCode == -1:
		if !errors.As(readErr, &ce) || ce.Code != websocket.CloseAbnormalClosure {
			t.Fatalf("stream end: got %v, want an unexpected EOF", readErr)
		}
	case s.closeCode == 0:
		if errors.As(readErr, &ce) || !strings.HasPrefix(readErr.Error(), "websocket: ") {
			t.Fatalf("bad close frame: got %v, want gorilla's protocol error", readErr)
		}
	default:
		if !errors.As(readErr, &ce) || ce.Code != s.closeCode || ce.Text != s.closeText && s.verdict == 0 {
			t.Fatalf("close: got %v, want code %d %q", readErr, s.closeCode, s.closeText)
		}
	}
	switch {
	case verdict == nil && s.verdict != 0:
		t.Fatalf("no verdict, want %d", s.verdict)
	case verdict != nil && verdict.Code != s.verdict:
		t.Fatalf("verdict: got %v, want %d", verdict, s.verdict)
	}
	if realCode != s.realCode {
		t.Fatalf("real code: got %d, want %d", realCode, s.realCode)
	}
}

func TestWireWatcherKeepsStreamsIntact(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	n := 200
	if testing.Short() {
		n = 30
	}
	for i := 0; i < n; i++ {
		checkWireStream(t, randomStream(r), r)
	}
}

// FuzzWireWatcher runs the check above on streams made from a fuzzed seed.
func FuzzWireWatcher(f *testing.F) {
	for i := int64(0); i < 8; i++ {
		f.Add(i)
	}
	f.Fuzz(func(t *testing.T, seed int64) {
		r := rand.New(rand.NewSource(seed))
		checkWireStream(t, randomStream(r), r)
	})
}
