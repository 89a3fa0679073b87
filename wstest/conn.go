package wstest

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/ff42ae21/wsclient/internal/transport"
)

// Message is a data message a connection received: text, or binary when
// Binary is set.
type Message struct {
	Binary bool
	Data   []byte
}

// Conn is the server's side of one upgraded connection, driven by the test.
// It reads all the time (recording every message and every frame, answering
// pings) until the connection ends or Silence. Its methods are safe for
// concurrent use.
type Conn struct {
	s      *Server
	n      int // 1 for the first connection
	req    *http.Request
	tcp    net.Conn
	fc     *filterConn
	tc     *transport.Conn
	tap    *tap
	sendMu sync.Mutex    // one message (or raw write) at a time
	kill   chan struct{} // closed when the server ends the connection (Drop, Down, Close)
	done   chan struct{} // closed when the connection has ended

	// Guarded by s.mu.
	killed bool
	msgs   []Message
	read   int // msgs[:read] were returned by ReadMessage
	echo   bool
	pings  int
	ended  bool
	code   int
	reason string
	endErr error
	frames []Frame // the client's frames, up to its close frame
	after  []byte  // what the client sent after its close frame
	// readErr is the last error of a read from the client: io.EOF when it
	// closed its end.
	readErr             error
	lingering, lingered bool // the server waits, waited for the client to close (AwaitClientClose)
}

func newConn(s *Server, req *http.Request, tcp, nc net.Conn, br *bufio.Reader, answer http.Header) *Conn {
	fc := &filterConn{Conn: nc}
	c := &Conn{
		s:    s,
		req:  req,
		tcp:  tcp,
		fc:   fc,
		kill: make(chan struct{}),
		done: make(chan struct{}),
	}
	c.tap = &tap{c: c, r: br}
	c.tc = transport.NewConn(fc, nil, transport.ConnOptions{
		Server:       true,
		Compression:  usesDeflate(answer),
		ReadLimit:    s.opts.ReadLimit,
		WriteTimeout: s.timeout,
		Subprotocol:  answer.Get("Sec-WebSocket-Protocol"),
		ReadSource:   c.tap, // br's bytes, then the socket's, through the tap
	})
	return c
}

// run registers c and reads until the connection ends.
func (s *Server) run(c *Conn) {
	defer close(c.done)
	s.mu.Lock()
	select {
	case <-s.closing:
		s.down = true
	default:
	}
	if s.down {
		s.mu.Unlock()
		c.tc.Abort()
		return
	}
	s.conns = append(s.conns, c)
	s.st.Upgraded++
	c.n = s.st.Upgraded
	c.echo = s.opts.Echo
	s.st.Open++
	s.bumpLocked()
	s.mu.Unlock()
	for {
		m, err := c.tc.ReadMessage()
		if err != nil {
			c.end(err)
			return
		}
		if c.fc.silent.Load() {
			continue
		}
		switch m.Op {
		case transport.OpPing:
			s.update(func() { c.pings++ })
		case transport.OpText, transport.OpBinary:
			msg := Message{Binary: m.Op == transport.OpBinary, Data: m.Data}
			onMessage := s.opts.OnMessage
			var echo bool
			s.update(func() {
				if onMessage == nil || !s.opts.Forget {
					c.msgs = append(c.msgs, msg)
				}
				echo = c.echo
			})
			if echo {
				c.sendMu.Lock()
				_ = c.tc.WriteMessage(context.Background(), m.Op, m.Data)
				c.sendMu.Unlock()
			}
			if onMessage != nil {
				s.user(func() { onMessage(c, msg) })
			}
		}
	}
}

// end records how the connection ended. A silent connection stays open (half
// open) until the server ends it; with AwaitClientClose, the server reads on
// until the client closes its end.
func (c *Conn) end(err error) {
	lingered := false
	if c.fc.silent.Load() {
		select {
		case <-c.kill:
		case <-c.s.closing:
		}
		err = &transport.CloseError{Code: transport.CloseAbnormal}
	} else if c.fc.hold.Load() {
		c.linger()
		lingered = true
	}
	// The answer to the client's close (or the close of a protocol error)
	// may wait behind a message another goroutine is writing: the socket
	// drops once it is out, at most the timeout later.
	c.tc.AbortWhenClosed(c.s.timeout)
	<-c.tc.Ended()
	_ = c.fc.Conn.Close() // with hold, Abort left it open
	c.tap.flush()
	code, reason := transport.CloseAbnormal, ""
	var endErr error
	var ce *transport.CloseError
	if errors.As(err, &ce) {
		code, reason = ce.Code, ce.Reason
		if ce.Local && ce.Code != transport.CloseAbnormal {
			endErr = fmt.Errorf("wstest: the client broke the protocol, the server closed with %d: %w", ce.Code, ce.Err)
		}
	}
	c.s.update(func() {
		if code == transport.CloseAbnormal && len(c.frames) > 0 && c.frames[len(c.frames)-1].Op == OpClose {
			// The reader stopped (a write error, Drop) before it got to the
			// client's close frame, which the tap saw.
			code, reason = transport.CloseNoStatus, ""
			if p := c.frames[len(c.frames)-1].Payload; len(p) >= 2 {
				code, reason = int(p[0])<<8|int(p[1]), string(p[2:])
			}
		}
		c.ended, c.code, c.reason, c.endErr = true, code, reason, endErr
		c.lingered = lingered
		c.s.st.Open--
		if c.s.opts.Forget {
			c.s.forgetLocked(c)
		}
	})
}

// linger reads what the client sends until it closes its end of the
// connection, at most Options.WaitTimeout, or until the server drops it.
func (c *Conn) linger() {
	if clientClosed(c.lastReadErr()) {
		return
	}
	c.s.update(func() { c.lingering = true })
	deadline := time.Now().Add(c.s.timeout)
	buf := make([]byte, 4096)
	for {
		c.s.mu.Lock()
		killed := c.killed
		if !killed {
			_ = c.fc.Conn.SetReadDeadline(deadline)
		}
		c.s.mu.Unlock()
		if killed {
			return
		}
		_, err := c.tap.Read(buf)
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(deadline):
			// Woken by the transport's Close (a write failed): read on.
		default:
			return
		}
	}
}

func (c *Conn) lastReadErr() error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.readErr
}

// clientClosed reports whether a read error means that the client closed
// its end of the connection (a FIN, or a reset).
func clientClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// killLocked marks the connection as ended by the server. Under s.mu.
func (c *Conn) killLocked() {
	if !c.killed {
		c.killed = true
		close(c.kill)
		if c.fc.hold.Load() {
			_ = c.fc.Conn.SetReadDeadline(time.Unix(1, 0)) // wakes linger
		}
	}
}

// String names the connection by its number, in order of upgrade, for test
// failure messages.
func (c *Conn) String() string { return fmt.Sprintf("wstest connection %d", c.n) }

// Request is the connection's handshake request (URL, Header; no body).
func (c *Conn) Request() *http.Request { return c.req }

// errSilent is the error of the writes of a silent connection.
var errSilent = errors.New("the connection is silent (Silence)")

// errShut is the error of the writes after CloseWrite.
var errShut = errors.New("the server closed its end for writing (CloseWrite)")

// usable is nil when the test may write to the connection.
func (c *Conn) usable() error {
	if c.fc.silent.Load() {
		return fmt.Errorf("wstest: %v: %w", c, errSilent)
	}
	if c.fc.shut.Load() {
		return fmt.Errorf("wstest: %v: %w", c, errShut)
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.ended || c.killed {
		return fmt.Errorf("wstest: %v has ended: %w", c, transport.ErrClosed)
	}
	return nil
}

func (c *Conn) send(op transport.Opcode, data []byte) error {
	if err := c.usable(); err != nil {
		return err
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if err := c.tc.WriteMessage(context.Background(), op, data); err != nil {
		return fmt.Errorf("wstest: %v: %w", c, err)
	}
	return nil
}

// SendText sends a text message (compressed when permessage-deflate was
// negotiated). It returns once the message was handed to the socket.
func (c *Conn) SendText(s string) error { return c.send(transport.OpText, []byte(s)) }

// SendBinary sends a binary message, like SendText.
func (c *Conn) SendBinary(b []byte) error { return c.send(transport.OpBinary, b) }

// SendJSON sends v encoded as JSON in a text message.
func (c *Conn) SendJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("wstest: SendJSON: %w", err)
	}
	return c.send(transport.OpText, b)
}

// Ping sends a ping (payload at most 125 bytes). Pongs do not count as
// messages; any frame from the client is proof of life for a keepalive.
func (c *Conn) Ping(payload []byte) error {
	if err := c.usable(); err != nil {
		return err
	}
	if err := c.tc.Ping(payload); err != nil {
		return fmt.Errorf("wstest: %v: %w", c, err)
	}
	return nil
}

// Pong sends an unsolicited pong (payload at most 125 bytes), even while
// SetAnswerPings(false).
func (c *Conn) Pong(payload []byte) error {
	if len(payload) > transport.MaxControlPayload {
		return fmt.Errorf("wstest: a %d-byte pong payload (at most %d)", len(payload), transport.MaxControlPayload)
	}
	return c.WriteRaw(Frame{Op: OpPong, Fin: true, Payload: payload}.Bytes())
}

// SendFragments sends one message in len(parts) frames, one part each: the
// first a text (binary with binary set) frame, the others continuations, the
// last with FIN. The parts go out uncompressed.
func (c *Conn) SendFragments(binary bool, parts ...[]byte) error {
	if len(parts) == 0 {
		return errors.New("wstest: SendFragments needs at least one part")
	}
	op := OpText
	if binary {
		op = OpBinary
	}
	var b []byte
	for i, p := range parts {
		f := Frame{Op: OpContinuation, Fin: i == len(parts)-1, Payload: p}
		if i == 0 {
			f.Op = op
		}
		b = f.AppendTo(b)
	}
	return c.WriteRaw(b)
}

// SendFrame writes f as it is (see Frame): for malformed frames.
func (c *Conn) SendFrame(f Frame) error { return c.WriteRaw(f.Bytes()) }

// WriteRaw writes b to the socket as it is, in one write, between two frames
// of the server's other writes: anything at all, a frame cut in the middle,
// garbage.
func (c *Conn) WriteRaw(b []byte) error { return c.writeRaw(b, 0, 0) }

// WriteSliced is WriteRaw in pieces: it writes b in writes of at most size
// bytes, waiting gap between two, so that the client reads a frame (or
// several) piece by piece, whatever the network does; over wss each piece
// is a TLS record of its own (Network.SetSlicing, in the proxy, slices the
// encrypted stream instead). Nothing else is written in between. The whole
// of it (the answers to the client's pings wait) must take less than
// Options.WaitTimeout.
func (c *Conn) WriteSliced(b []byte, size int, gap time.Duration) error {
	if size < 1 {
		return fmt.Errorf("wstest: WriteSliced in pieces of %d bytes", size)
	}
	return c.writeRaw(b, size, gap)
}

func (c *Conn) writeRaw(b []byte, size int, gap time.Duration) error {
	if err := c.usable(); err != nil {
		return err
	}
	if len(b) == 0 {
		return nil
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	c.fc.raw.Store(&rawWrite{first: &b[0], size: size, gap: gap})
	err := c.tc.WriteRaw(b)
	c.fc.raw.Store(nil)
	if err != nil {
		return fmt.Errorf("wstest: %v: %w", c, err)
	}
	return nil
}

// CloseWrite ends the server's side of the TCP stream (over wss, a TLS
// close_notify, then the TCP FIN) and goes on reading: the client reads
// the end of the stream, as after Drop, but the server still sees what the
// client does next (its close frame if it sends one: WaitClosed, Frames;
// whether it closes its end: AfterClose, with AwaitClientClose). The
// server writes nothing more: the test's writes fail, the answers to pings
// and to a close frame are dropped.
func (c *Conn) CloseWrite() error {
	if err := c.usable(); err != nil {
		return err
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.fc.shut.Swap(true) {
		return nil
	}
	var err error
	tlsConn, isTLS := c.fc.Conn.(*tls.Conn)
	if isTLS {
		err = tlsConn.CloseWrite() // close_notify
	}
	if tcp, ok := c.tcp.(interface{ CloseWrite() error }); ok && err == nil {
		// After a close_notify the client may have closed already, and the
		// connection ended: then the FIN is moot.
		if e := tcp.CloseWrite(); !(isTLS && errors.Is(e, net.ErrClosed)) {
			err = e
		}
	}
	if err != nil {
		return fmt.Errorf("wstest: %v: CloseWrite: %w", c, err)
	}
	return nil
}

// Close sends a close frame with code and reason (a valid code, a reason of
// at most 123 bytes of UTF-8; SendFrame sends any other). The connection ends
// when the client answers (WaitClosed gives its code) or drops it.
func (c *Conn) Close(code int, reason string) error {
	if err := c.usable(); err != nil {
		return err
	}
	if err := c.tc.Close(code, reason); err != nil {
		return fmt.Errorf("wstest: %v: %w", c, err)
	}
	return nil
}

// Drop closes the socket at once, with no close frame: the client reads the
// end of the TCP stream (FIN). When it returns, the connection has ended;
// called from inside OnMessage, Check or Raw it does not wait for that (the
// connection ends once the callback returns).
func (c *Conn) Drop() { c.drop(false) }

// Reset closes the socket with a TCP reset (RST), like Drop otherwise.
func (c *Conn) Reset() { c.drop(true) }

func (c *Conn) drop(reset bool) {
	c.s.mu.Lock()
	c.killLocked()
	c.s.mu.Unlock()
	if tcp, ok := c.tcp.(*net.TCPConn); ok && reset {
		_ = tcp.SetLinger(0)
	}
	c.tc.Abort()
	_ = c.tcp.Close()
	if !c.s.fromUser() {
		<-c.done // the reader returns once the socket is closed
	}
}

// Silence makes the connection a half-open peer: from now on the server
// neither reads (so it answers no ping) nor writes, and the socket stays open
// until Drop, Reset, Down or Close. The test's writes fail.
func (c *Conn) Silence() {
	c.fc.silent.Store(true)
	_ = c.tcp.SetReadDeadline(time.Unix(1, 0)) // wakes the reader, which then parks
}

// SetAnswerPings(false) stops answering the client's pings (they are still
// read and counted); true, the default, answers them again.
func (c *Conn) SetAnswerPings(on bool) { c.fc.dropPongs.Store(!on) }

// SetEcho turns echo mode on or off: each message received is sent back.
func (c *Conn) SetEcho(on bool) { c.s.update(func() { c.echo = on }) }

// ReadMessage returns the next message received that ReadMessage has not
// returned yet, waiting at most until ctx ends or Options.WaitTimeout. It
// fails at once if the connection ended with nothing left to read.
func (c *Conn) ReadMessage(ctx context.Context) (Message, error) {
	var m Message
	var ended bool
	err := c.s.wait(ctx, func() bool {
		if c.read < len(c.msgs) {
			m = c.msgs[c.read]
			c.read++
			if c.s.opts.Forget { // nothing kept once read
				c.msgs[0] = Message{}
				c.msgs, c.read = c.msgs[1:], 0
			}
			return true
		}
		ended = c.ended
		return ended
	})
	switch {
	case err != nil:
		return Message{}, fmt.Errorf("wstest: no message on %v: %w", c, err)
	case ended:
		code, reason, _ := c.closeStatus()
		return Message{}, fmt.Errorf("wstest: no message on %v: it ended (%d %q)", c, code, reason)
	}
	return m, nil
}

// ReadText is ReadMessage for a text message: a binary one is an error.
func (c *Conn) ReadText(ctx context.Context) (string, error) {
	m, err := c.ReadMessage(ctx)
	if err != nil {
		return "", err
	}
	if m.Binary {
		return "", fmt.Errorf("wstest: %v: got a binary message (%d bytes), want text", c, len(m.Data))
	}
	return string(m.Data), nil
}

// ReadBinary is ReadMessage for a binary message: a text one is an error.
func (c *Conn) ReadBinary(ctx context.Context) ([]byte, error) {
	m, err := c.ReadMessage(ctx)
	if err != nil {
		return nil, err
	}
	if !m.Binary {
		return nil, fmt.Errorf("wstest: %v: got a text message %q, want binary", c, shorten(m.Data))
	}
	return m.Data, nil
}

// ReadJSON reads the next message (text or binary) and decodes it into v.
func (c *Conn) ReadJSON(ctx context.Context, v any) error {
	m, err := c.ReadMessage(ctx)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(m.Data, v); err != nil {
		return fmt.Errorf("wstest: %v: message %q: %w", c, shorten(m.Data), err)
	}
	return nil
}

// Received returns every message received so far, ReadMessage's or not
// (with Options.Forget, those ReadMessage has not returned yet). Their Data
// must not be modified.
func (c *Conn) Received() []Message {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return append([]Message(nil), c.msgs...)
}

// Pings reports how many pings the client sent, and how many of them the
// server answered (SetAnswerPings).
func (c *Conn) Pings() (received, answered int) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.pings, int(c.fc.pongs.Load())
}

// Frames returns every frame the client sent so far (once whole), in
// order, up to and including its close frame: what its pongs carried, whether its
// close frame was masked and final, how it fragmented a message. They are as
// they were on the wire (Masked, MaskKey, Rsv, LengthBits as sent), with the
// payload unmasked, and still compressed when permessage-deflate was
// negotiated (RSV1 set). Frames the server refused are there too; a frame
// the connection ended in the middle of its payload is there with the part
// that came (one cut inside its header is not). What follows the close frame is not parsed: see
// AfterClose. Their Payload must not be modified. With Options.Forget only
// the last frame is kept.
func (c *Conn) Frames() []Frame {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return append([]Frame(nil), c.frames...)
}

// AwaitClientClose makes the server leave the TCP connection open at its
// end, until the client closes it: after the close handshake (or after the
// server failed the connection, or CloseWrite), the server reads on, at
// most Options.WaitTimeout, instead of closing the connection first as RFC
// 6455 7.1.1 has it (the default). AfterClose then reports whether the
// client closed its end, and what it sent after its close frame. The
// connection ends (WaitClosed, Open) when the client has closed it, the
// wait ran out, or the server dropped it (Drop, Reset, Down, Close). Call it
// before the connection ends: right after NextConn.
func (c *Conn) AwaitClientClose() { c.fc.hold.Store(true) }

// AfterClose waits until the connection has ended, like WaitClosed, and
// reports how the client left: the bytes it sent after its close frame
// (nil when there were none, or no close frame), and an error unless the
// client closed its end of the TCP connection itself (the server read its
// FIN, or a reset). The error says what happened instead: the client did
// not close within Options.WaitTimeout, the server dropped the connection
// first, or it closed first because AwaitClientClose was not called.
func (c *Conn) AfterClose(ctx context.Context) (after []byte, err error) {
	if err := c.waitEnded(ctx); err != nil {
		return nil, err
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	after = append([]byte(nil), c.after...)
	switch {
	case clientClosed(c.readErr):
		return after, nil
	case c.killed:
		return after, fmt.Errorf("wstest: the server dropped %v (Drop, Reset, Down or Close) before the client closed it", c)
	case !c.lingered:
		return after, fmt.Errorf("wstest: the server closed %v first (AwaitClientClose waits for the client)", c)
	case errors.Is(c.readErr, os.ErrDeadlineExceeded):
		return after, fmt.Errorf("wstest: the client did not close %v within %v", c, c.s.timeout)
	}
	return after, fmt.Errorf("wstest: %v: reading until the client closed: %w", c, c.readErr)
}

// WaitClosed waits until the connection has ended, at most until ctx ends
// or Options.WaitTimeout, and returns the close frame the client sent: its
// code and reason, 1005 for a close frame without a code, 1006 when the
// connection ended without one (a drop by either side). When the client
// broke the protocol (an unmasked frame, invalid UTF-8, a message over
// Options.ReadLimit), code is the one the server closed with and err says
// what the client did. With AwaitClientClose the connection ends once the
// client has closed the TCP connection too.
func (c *Conn) WaitClosed(ctx context.Context) (code int, reason string, err error) {
	if err := c.waitEnded(ctx); err != nil {
		return 0, "", err
	}
	return c.closeStatus()
}

// waitEnded waits until the connection has ended, at most until ctx ends or
// Options.WaitTimeout; when that passes while the server waits for the
// client to close (linger, itself bounded by Options.WaitTimeout), until
// that wait is over.
func (c *Conn) waitEnded(ctx context.Context) error {
	ended := func() bool { return c.ended }
	err := c.s.wait(ctx, ended)
	if err != nil && (ctx == nil || ctx.Err() == nil) && !errors.Is(err, ErrServerClosed) {
		c.s.mu.Lock()
		lingering := c.lingering
		c.s.mu.Unlock()
		if lingering {
			err = c.s.wait(ctx, ended)
		}
	}
	if err != nil {
		return fmt.Errorf("wstest: %v has not ended: %w", c, err)
	}
	return nil
}

func (c *Conn) closeStatus() (int, string, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.code, c.reason, c.endErr
}

func shorten(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}
