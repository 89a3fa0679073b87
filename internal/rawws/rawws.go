// Package rawws is a scripted raw WebSocket server for client conformance
// tests (RFC 6455), in the spirit of the Autobahn testsuite's client cases.
//
// A Server listens on 127.0.0.1 only. For every accepted TCP connection it
// reads the client's HTTP upgrade request, answers it by hand (or with a
// test-supplied, possibly broken, response) and then hands the connection to
// a script. The script writes byte-exact frames and reads what the client
// sends:
//
//	srv, err := rawws.NewServer(func(c *rawws.Conn) {
//		_ = c.WriteFrame(rawws.Text("hello"))
//		code, reason, _, err := c.ReadUntilClose(time.Second)
//		...
//	})
//	defer srv.Close()
//	dial(srv.URL())
//
// The script runs on its own goroutine; the connection is closed when it
// returns. Scripts must not call t.Fatal/t.FailNow (use t.Error or send the
// result over a channel).
package rawws

import (
	"bufio"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// acceptGUID is the fixed GUID of RFC 6455 section 1.3.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// DefaultHandshakeTimeout bounds how long the server waits for the client's
// upgrade request when ServerOptions.HandshakeTimeout is zero.
const DefaultHandshakeTimeout = 10 * time.Second

// AcceptKey returns the Sec-WebSocket-Accept value for a Sec-WebSocket-Key:
// base64(sha1(key + GUID)).
func AcceptKey(key string) string {
	sum := sha1.Sum([]byte(key + acceptGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// ServerOptions customises the handshake. The zero value gives a valid,
// strict RFC 6455 server handshake.
type ServerOptions struct {
	// Handshake, if non-nil, replaces the built-in handshake: the request is
	// not validated and Handshake writes whatever raw bytes it likes (garbage,
	// a 101 with a wrong accept key, a 401/503, or nothing at all). The writer
	// is flushed afterwards and the connection is then handed to the script
	// as if the upgrade had succeeded.
	Handshake func(req *http.Request, w *bufio.Writer)

	// Subprotocols the built-in handshake accepts. The first protocol in the
	// client's Sec-WebSocket-Protocol list that is also in this list is echoed
	// back; if none matches, no Sec-WebSocket-Protocol header is sent.
	Subprotocols []string

	// ResponseHeader is added to the built-in 101 response (e.g. an
	// unsolicited Sec-WebSocket-Extensions header).
	ResponseHeader http.Header

	// HandshakeTimeout bounds reading the client's request, and the TLS
	// handshake before it (DefaultHandshakeTimeout if zero).
	HandshakeTimeout time.Duration

	// TLS, if non-nil, makes the server speak wss: every accepted TCP
	// connection is wrapped in tls.Server(conn, TLS) before the upgrade
	// request is read, and the script's Conn reads and writes through TLS.
	// A failed TLS handshake is recorded like a bad request (HandshakeErr).
	TLS *tls.Config
}

// Server is a scripted WebSocket server listening on 127.0.0.1.
type Server struct {
	ln       net.Listener
	opts     ServerOptions
	handle   func(*Conn)
	accepted atomic.Int64
	wg       sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
	hsErr  error
}

// NewServer starts a server with default options. See NewServerWith.
func NewServer(handle func(c *Conn)) (*Server, error) {
	return NewServerWith(ServerOptions{}, handle)
}

// NewServerWith starts listening on 127.0.0.1:0 and serves every accepted
// connection on its own goroutine: handshake, then handle(c). The
// connection is closed when handle returns. If handle is nil the connection
// is kept open (its input discarded) until the client or Close closes it.
// If the built-in handshake rejects the request, the server answers
// 400 Bad Request, records the error (see HandshakeErr) and does not call
// handle.
func NewServerWith(opts ServerOptions, handle func(c *Conn)) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, opts: opts, handle: handle, conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// URL returns "ws://127.0.0.1:PORT/", or "wss://127.0.0.1:PORT/" with
// ServerOptions.TLS.
func (s *Server) URL() string {
	if s.opts.TLS != nil {
		return "wss://" + s.Addr() + "/"
	}
	return "ws://" + s.Addr() + "/"
}

// Addr returns the listening address as "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Accepted returns how many TCP connections have been accepted so far.
func (s *Server) Accepted() int { return int(s.accepted.Load()) }

// HandshakeErr returns the first error seen while reading or validating a
// client handshake request, or nil.
func (s *Server) HandshakeErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hsErr
}

// Close stops listening, closes all live connections and waits for every
// goroutine the server started (including running scripts) to return, so
// scripts must not block on anything but their connection. It is safe to
// call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		s.ln.Close()
		for nc := range s.conns {
			nc.Close()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // listener closed
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.accepted.Add(1)
		s.conns[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(nc)
	}
}

func (s *Server) recordErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hsErr == nil && !s.closed {
		s.hsErr = err
	}
}

func (s *Server) serve(tcp net.Conn) {
	defer s.wg.Done()
	nc := tcp
	defer func() {
		nc.Close() // with TLS, a close_notify first
		tcp.Close()
		s.mu.Lock()
		delete(s.conns, tcp)
		s.mu.Unlock()
	}()

	timeout := s.opts.HandshakeTimeout
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	_ = nc.SetDeadline(time.Now().Add(timeout))
	if s.opts.TLS != nil {
		tc := tls.Server(tcp, s.opts.TLS)
		if err := tc.Handshake(); err != nil {
			s.recordErr(fmt.Errorf("rawws: TLS handshake: %w", err))
			return
		}
		nc = tc
	}
	br := bufio.NewReader(nc)
	req, err := http.ReadRequest(br)
	if err != nil {
		s.recordErr(fmt.Errorf("rawws: reading handshake request: %w", err))
		return
	}
	_ = nc.SetDeadline(time.Time{})

	bw := bufio.NewWriter(nc)
	if s.opts.Handshake != nil {
		s.opts.Handshake(req, bw)
	} else if err := s.defaultHandshake(req, bw); err != nil {
		s.recordErr(err)
		fmt.Fprintf(bw, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"+
			"Content-Length: %d\r\nConnection: close\r\n\r\n%s", len(err.Error()), err.Error())
		_ = bw.Flush()
		return
	}
	if err := bw.Flush(); err != nil {
		return
	}

	c := &Conn{nc: nc, br: br, req: req}
	if s.handle == nil {
		_, _ = io.Copy(io.Discard, br)
		return
	}
	s.handle(c)
}

// defaultHandshake validates req per RFC 6455 section 4.2.1 and writes a 101
// response to w. It writes nothing if validation fails.
func (s *Server) defaultHandshake(req *http.Request, w *bufio.Writer) error {
	switch {
	case req.Method != http.MethodGet:
		return fmt.Errorf("rawws: handshake method %q, want GET", req.Method)
	case !req.ProtoAtLeast(1, 1):
		return fmt.Errorf("rawws: handshake protocol %q, want HTTP/1.1", req.Proto)
	case req.Host == "":
		return errors.New("rawws: handshake missing Host")
	case !headerHasToken(req.Header, "Upgrade", "websocket"):
		return fmt.Errorf("rawws: handshake Upgrade %q lacks websocket", req.Header.Values("Upgrade"))
	case !headerHasToken(req.Header, "Connection", "Upgrade"):
		return fmt.Errorf("rawws: handshake Connection %q lacks Upgrade", req.Header.Values("Connection"))
	case req.Header.Get("Sec-WebSocket-Version") != "13":
		return fmt.Errorf("rawws: handshake Sec-WebSocket-Version %q, want 13",
			req.Header.Values("Sec-WebSocket-Version"))
	}
	keys := req.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return fmt.Errorf("rawws: handshake has %d Sec-WebSocket-Key headers, want 1", len(keys))
	}
	if raw, err := base64.StdEncoding.DecodeString(keys[0]); err != nil || len(raw) != 16 {
		return fmt.Errorf("rawws: handshake Sec-WebSocket-Key %q is not 16 base64 bytes", keys[0])
	}

	fmt.Fprintf(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"+
		"Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n", AcceptKey(keys[0]))
	if p := s.pickSubprotocol(req); p != "" {
		fmt.Fprintf(w, "Sec-WebSocket-Protocol: %s\r\n", p)
	}
	if err := s.opts.ResponseHeader.Write(w); err != nil {
		return err
	}
	_, err := w.WriteString("\r\n")
	return err
}

func (s *Server) pickSubprotocol(req *http.Request) string {
	for _, v := range req.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			for _, want := range s.opts.Subprotocols {
				if p == want {
					return p
				}
			}
		}
	}
	return ""
}

// headerHasToken reports whether a comma-separated header contains token
// (case-insensitively).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// Conn is one server-side connection after the handshake. Writes are safe
// for concurrent use; reads are not.
type Conn struct {
	nc  net.Conn
	br  *bufio.Reader
	req *http.Request
	wmu sync.Mutex
}

// Request returns the client's handshake request.
func (c *Conn) Request() *http.Request { return c.req }

// NetConn returns the underlying connection: the TCP connection, or the
// *tls.Conn over it with ServerOptions.TLS. Read through Conn rather than
// NetConn: bytes may already be buffered.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Close closes the connection immediately (no close frame is sent; with TLS,
// a close_notify alert is).
func (c *Conn) Close() error { return c.nc.Close() }

// Read reads raw bytes from the client (including buffered ones), making
// Conn an io.Reader.
func (c *Conn) Read(p []byte) (int, error) { return c.br.Read(p) }

// WriteRaw writes b to the client exactly as given, in a single write.
func (c *Conn) WriteRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.nc.Write(b)
	return err
}

// WriteFrame writes f.Encode() in a single write.
func (c *Conn) WriteFrame(f Frame) error { return c.WriteRaw(f.Encode()) }

// WriteChunked writes b as a sequence of writes of at most chunk bytes
// each (chunk <= 0 means 1), sleeping pause between them; e.g.
// WriteChunked(f.Encode(), 1, time.Millisecond) sends a frame byte by byte.
func (c *Conn) WriteChunked(b []byte, chunk int, pause time.Duration) error {
	if chunk <= 0 {
		chunk = 1
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for len(b) > 0 {
		n := min(chunk, len(b))
		if _, err := c.nc.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
		if len(b) > 0 && pause > 0 {
			time.Sleep(pause)
		}
	}
	return nil
}

// setDeadline sets the read deadline timeout from now; timeout <= 0 clears it.
func (c *Conn) setDeadline(timeout time.Duration) error {
	var d time.Time
	if timeout > 0 {
		d = time.Now().Add(timeout)
	}
	return c.nc.SetReadDeadline(d)
}

// ReadFrame reads and parses one frame from the client, waiting at most
// timeout (timeout <= 0 waits forever, until Close). Masked payloads are
// unmasked; Masked, MaskKey and LengthForm report what was on the wire, and
// no RFC validation beyond framing is done, so tests can assert it. On error
// the partially parsed frame is returned; after a timeout mid-frame the
// stream is out of sync.
func (c *Conn) ReadFrame(timeout time.Duration) (Frame, error) {
	if err := c.setDeadline(timeout); err != nil {
		return Frame{}, err
	}
	return DecodeFrame(c.br)
}

// ReadUntilClose reads frames until a close frame arrives, within an
// overall timeout. frames holds every frame read, the close frame last;
// code and reason come from ParseClose. If the stream ends or fails before a
// close frame, err is non-nil (io.EOF for a clean TCP close) and code is 0.
func (c *Conn) ReadUntilClose(timeout time.Duration) (code int, reason string, frames []Frame, err error) {
	if err := c.setDeadline(timeout); err != nil {
		return 0, "", nil, err
	}
	for {
		f, err := DecodeFrame(c.br)
		if err != nil {
			return 0, "", frames, err
		}
		frames = append(frames, f)
		if f.Opcode == OpClose {
			code, reason = ParseClose(f.Payload)
			return code, reason, frames, nil
		}
	}
}

// ReadToEOF reads until the client closes the TCP connection and returns any
// bytes received meanwhile. err is nil on EOF, or e.g. a timeout error if
// the client has not closed within timeout.
func (c *Conn) ReadToEOF(timeout time.Duration) ([]byte, error) {
	if err := c.setDeadline(timeout); err != nil {
		return nil, err
	}
	return io.ReadAll(c.br)
}
