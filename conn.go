package wsclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ff42ae21/wsclient/internal/goid"
	"github.com/ff42ae21/wsclient/internal/transport"
)

// Conn is one connection, as callbacks see it. Each successful handshake makes a
// new Conn; once its connection has ended, Send returns ErrNotConnected, so a Conn
// kept from an old connection can never write to a new one.
//
// Conn's methods are safe to call from callbacks (they never wait for the
// client's own goroutines) and from other goroutines.
type Conn struct {
	client *Client
	gen    uint64
	w      wire // nil for the stand-in given to HandleInfo while not connected
	opened time.Time

	ready chan struct{} // closed once OnConnect's frames and the outbox are written

	endOnce    sync.Once
	done       chan struct{} // closed when the connection has ended: no more writes
	endErr     error         // why it ended; written before done is closed
	readerDone chan struct{} // closed when the reader goroutine has returned

	closeOnce  sync.Once
	localClose atomic.Pointer[CloseError] // the close this side started
	closeStart chan struct{}              // closed when this side started the close handshake

	pingSent  atomic.Int64 // clock UnixNano of the timed ping, also its payload
	rtt       atomic.Int64
	inHandler atomic.Bool // the reader is inside HandleFrame (pongs wait unread)
}

func newConn(c *Client, gen uint64, w wire) *Conn {
	return &Conn{
		client:     c,
		gen:        gen,
		w:          w,
		opened:     c.clk.Now(),
		ready:      make(chan struct{}),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
		closeStart: make(chan struct{}),
	}
}

// detachedConn is the Conn HandleInfo gets while no connection is open.
func detachedConn(c *Client) *Conn {
	conn := &Conn{client: c, done: make(chan struct{}), readerDone: make(chan struct{}), closeStart: make(chan struct{})}
	close(conn.done)
	close(conn.readerDone)
	conn.endErr = ErrNotConnected
	return conn
}

// Send writes f. It returns nil once the frame was handed to the socket; the
// wait for the write lock is not bounded (Options.WriteTimeout bounds each
// write). On a connection that has ended it returns ErrNotConnected: a Conn
// never waits for the next connection (Client.Send from another goroutine can).
func (conn *Conn) Send(f Frame) error {
	if err := checkFrame(f); err != nil {
		return err
	}
	err := conn.write(context.Background(), f)
	if errors.Is(err, errNotWritten) {
		return ErrNotConnected
	}
	return err
}

// SendText sends a Text frame.
func (conn *Conn) SendText(s string) error { return conn.Send(Frame{Type: Text, Data: []byte(s)}) }

// SendBinary sends a Binary frame.
func (conn *Conn) SendBinary(b []byte) error { return conn.Send(Frame{Type: Binary, Data: b}) }

// Close starts the close handshake with code and reason and returns at once.
// The connection ends when the server answers or after Options.CloseTimeout;
// OnDisconnect then gets a *CloseError with Local set, and its suggestion is to
// stop (a close the handler asked for is deliberate). An invalid code or reason
// is an error and nothing is sent. A second Close, or a Close once the
// connection is closing anyway, returns nil: the close is under way. On a
// connection that has ended it returns ErrNotConnected.
func (conn *Conn) Close(code int, reason string) error {
	if err := checkClose(code, reason); err != nil {
		return err
	}
	if conn.w == nil || conn.ended() {
		return ErrNotConnected
	}
	conn.startClose(code, reason)
	return nil
}

// Subprotocol is the subprotocol the server chose, or "".
func (conn *Conn) Subprotocol() string {
	if conn.w == nil {
		return ""
	}
	return conn.w.Subprotocol()
}

// Response is the server's handshake response (status, headers, cookies); its
// body is empty. Nil when not connected.
func (conn *Conn) Response() *http.Response {
	if conn.w == nil {
		return nil
	}
	return conn.w.Response()
}

// RTT is the round-trip time of the last answered keepalive ping, or 0.
func (conn *Conn) RTT() time.Duration { return time.Duration(conn.rtt.Load()) }

// Generation numbers the connection attempts of a client, from 1.
func (conn *Conn) Generation() uint64 { return conn.gen }

// LocalAddr is the socket's local address (nil when not connected).
func (conn *Conn) LocalAddr() net.Addr {
	if conn.w == nil {
		return nil
	}
	return conn.w.LocalAddr()
}

// RemoteAddr is the address of the peer (a proxy, when one is used).
func (conn *Conn) RemoteAddr() net.Addr {
	if conn.w == nil {
		return nil
	}
	return conn.w.RemoteAddr()
}

// ended reports whether the connection has ended.
func (conn *Conn) ended() bool {
	select {
	case <-conn.done:
		return true
	default:
		return false
	}
}

// writable reports whether data may still be written: the connection has not
// ended and no close frame went out.
func (conn *Conn) writable() bool { return conn.w != nil && !conn.ended() && !conn.w.CloseSent() }

// errNotWritten marks a write of which nothing went out because the connection
// had ended or a close frame had gone out: Client.Send may still queue it.
var errNotWritten = fmt.Errorf("%w: the connection has ended or is closing", ErrNotConnected)

// write sends f. ctx bounds only the wait for the write lock.
func (conn *Conn) write(ctx context.Context, f Frame) error {
	if conn.w == nil {
		return errNotWritten
	}
	err := conn.w.WriteMessage(ctx, transport.Opcode(f.Type), f.Data)
	switch {
	case err == nil:
		conn.client.stats.sent(f)
		return nil
	case errors.Is(err, transport.ErrClosed), errors.Is(err, transport.ErrCloseSent):
		return errNotWritten
	}
	if conn.ended() && conn.endErr != nil {
		// The socket was dropped under the write (the keepalive, a read
		// error, a callback's failure): say why, not only what the socket said.
		return &writeEndedError{cause: conn.endErr, err: err}
	}
	return err // the transport's errors carry their own "wsclient: " prefix
}

// writeEndedError is a write that failed because the connection ended while
// it was in progress: errors.Is finds both the cause and the socket error.
type writeEndedError struct{ cause, err error }

func (e *writeEndedError) Error() string {
	return "wsclient: write: the connection ended: " + strings.TrimPrefix(e.cause.Error(), "wsclient: ")
}

func (e *writeEndedError) Unwrap() []error { return []error{e.cause, e.err} }

// startClose queues the close frame once and tells the owner goroutine.
func (conn *Conn) startClose(code int, reason string) {
	conn.closeOnce.Do(func() {
		conn.localClose.Store(&CloseError{Local: true, Code: code, Reason: reason})
		_ = conn.w.Close(code, reason) // a close already sent (an answer to the server's) decides
		close(conn.closeStart)
	})
}

// end ends the connection once: the first cause wins. When code is not zero, a
// close frame with code goes out first (unless one was queued or sent
// already), never waiting: the socket is dropped once it is out, right after
// a frame another goroutine is writing, or after CloseTimeout when that write
// is stuck. Dropping the socket makes the reader return.
func (conn *Conn) end(cause error, code int) {
	conn.endWith(cause, func() {
		if code == 0 {
			conn.w.Abort()
			return
		}
		reason := ""
		if ce := (*CloseError)(nil); errors.As(cause, &ce) {
			reason = ce.Reason
		}
		conn.w.CloseAndAbort(code, reason, conn.client.opts.CloseTimeout)
	})
}

// endRead ends the connection for the reader's error. A close frame from the
// server (or its protocol error) has queued this side's close frame, which may
// wait behind a frame a Send is writing: the socket drops once it is out.
func (conn *Conn) endRead(cause error) {
	conn.endWith(cause, func() { conn.w.AbortWhenClosed(conn.client.opts.CloseTimeout) })
}

// endWith ends the connection once, for cause, and then drops its socket.
func (conn *Conn) endWith(cause error, drop func()) {
	conn.endOnce.Do(func() {
		conn.endErr = cause
		close(conn.done)
		drop()
	})
}

// fail ends the connection with a close frame of code sent by this side.
func (conn *Conn) fail(code int, reason string, err error) {
	conn.end(&CloseError{Local: true, Code: code, Reason: reason, Err: err}, code)
}

// readLoop is the connection's reader goroutine: it reads messages and hands
// them to HandleFrame, under the handler lock, in wire order.
func (conn *Conn) readLoop() {
	defer close(conn.readerDone)
	c := conn.client
	c.readerG.Store(goid.ID())
	defer c.readerG.Store(0)
	for {
		m, err := conn.w.ReadMessage()
		if err != nil {
			conn.endRead(conn.readError(err))
			return
		}
		if conn.ended() {
			// The connection failed (a callback's error, the keepalive) and
			// its socket is about to drop: what still arrives is not delivered.
			continue
		}
		f := Frame{Type: MessageType(m.Op), Data: m.Data}
		c.stats.received(f)
		if m.Op == transport.OpPong {
			conn.notePong(m.Data)
		}
		conn.inHandler.Store(true)
		err = c.callback("HandleFrame", func(h Handler) error { return h.HandleFrame(conn, f) })
		conn.inHandler.Store(false)
		if err != nil {
			conn.fail(CloseInternalError, "", err)
			return
		}
	}
}

// notePong records the round trip of the timed keepalive ping.
func (conn *Conn) notePong(data []byte) {
	conn.client.stats.lastPong.Store(conn.client.clk.Now().UnixNano())
	if len(data) != 8 {
		return
	}
	sent := conn.pingSent.Load()
	if sent != 0 && string(pingPayload(sent)) == string(data) {
		rtt := conn.client.clk.Now().Sub(time.Unix(0, sent))
		conn.rtt.Store(int64(rtt))
		conn.client.stats.rtt.Store(int64(rtt))
	}
}

// readError says why reading stopped, in the terms of Disconnect.Err: the
// server's answer to a close this side started reports that close.
func (conn *Conn) readError(err error) error {
	var ce *CloseError
	if errors.As(err, &ce) && !ce.Local && ce.Code != CloseAbnormal {
		if local := conn.localClose.Load(); local != nil {
			return local
		}
	}
	return err
}

// checkFrame rejects frames that cannot be sent.
func checkFrame(f Frame) error {
	switch f.Type {
	case Text:
		if !utf8.Valid(f.Data) {
			return ErrInvalidUTF8
		}
	case Binary:
	case Ping, Pong:
		if len(f.Data) > transport.MaxControlPayload {
			return fmt.Errorf("wsclient: %v payload of %d bytes is over 125", f.Type, len(f.Data))
		}
	default:
		return fmt.Errorf("wsclient: cannot send a frame of type %d: use Text, Binary, Ping or Pong (and Close to close)", int(f.Type))
	}
	return nil
}

// checkClose rejects close codes and reasons that may not be sent (RFC 6455 7.4).
func checkClose(code int, reason string) error {
	if !transport.ValidCloseCode(code) {
		return fmt.Errorf("wsclient: close code %d may not be sent", code)
	}
	if len(reason) > transport.MaxCloseReason {
		return fmt.Errorf("wsclient: close reason of %d bytes is over %d", len(reason), transport.MaxCloseReason)
	}
	if !utf8.ValidString(reason) {
		return errors.New("wsclient: close reason is not valid UTF-8")
	}
	return nil
}

// sanitizeClose makes code and reason sendable: an invalid code becomes 1000,
// a reason loses its invalid UTF-8 and is cut to 123 bytes on a rune boundary.
func sanitizeClose(code int, reason string) (int, string) {
	if !transport.ValidCloseCode(code) {
		code = CloseNormal
	}
	reason = strings.ToValidUTF8(reason, "")
	for len(reason) > transport.MaxCloseReason {
		_, size := utf8.DecodeLastRuneInString(reason)
		reason = reason[:len(reason)-size]
	}
	return code, reason
}
