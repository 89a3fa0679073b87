package wsclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
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
	ws     *websocket.Conn // nil for the stand-in given to HandleInfo while not connected
	resp   *http.Response
	opened time.Time

	ready chan struct{} // closed once OnConnect's frames and the outbox are written

	endOnce    sync.Once
	done       chan struct{} // closed when the connection has ended: no more writes
	endErr     error         // why it ended; written before done is closed
	readerDone chan struct{} // closed when the reader goroutine has returned

	closeOnce  sync.Once
	closeSent  atomic.Bool                // a close frame went out: no more data frames
	localClose atomic.Pointer[CloseError] // the close this side started; set before closeStart is closed
	closeStart chan struct{}              // closed when this side started the close handshake

	pingSent atomic.Int64 // UnixNano of the last ping, also its payload
	rtt      atomic.Int64
	wire     *wireConn // the frame watcher under gorilla, nil when the dialer installed none

	// What the writers change on every send, and what the reader changes on
	// every message, each on cache lines of its own: a sender and the reader on
	// two cores do not pull one line back and forth for every message.
	_             [64]byte
	wlock         writeLock   // the write lock; waiting for it obeys a ctx
	deadlineStale atomic.Bool // the data write deadline must move before the next data write
	deadlineTimer *time.Timer // marks it stale (see moveWriteDeadline); Reset under wlock
	_             [64]byte
	life          atomic.Uint64 // grows with every read from the peer: keepalive's proof of life
	inHandler     atomic.Bool   // the reader is inside HandleFrame (pongs wait unread)
	readBuf       []byte        // the reader's scratch buffer, reused across messages
}

// newConn wraps a handshaken connection of generation gen.
func newConn(c *Client, gen uint64, ws *websocket.Conn, resp *http.Response) *Conn {
	conn := &Conn{
		client:     c,
		gen:        gen,
		ws:         ws,
		resp:       resp,
		opened:     time.Now(),
		wlock:      writeLock{wake: make(chan struct{}, 1)},
		ready:      make(chan struct{}),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
		closeStart: make(chan struct{}),
	}
	conn.deadlineStale.Store(true)
	conn.deadlineTimer = time.AfterFunc(time.Hour, func() { conn.deadlineStale.Store(true) })
	conn.deadlineTimer.Stop() // armed by the first data write
	ws.SetReadLimit(c.opts.ReadLimit)
	ws.SetPingHandler(conn.onPing)
	ws.SetPongHandler(conn.onPong)
	ws.SetCloseHandler(conn.onClose)
	if w, ok := ws.NetConn().(*wireConn); ok {
		conn.wire = w
	}
	return conn
}

// detachedConn is the Conn HandleInfo gets while no connection is open.
func detachedConn(c *Client) *Conn {
	conn := &Conn{client: c, done: make(chan struct{}), readerDone: make(chan struct{}), closeStart: make(chan struct{})}
	close(conn.done)
	close(conn.readerDone)
	conn.endErr = ErrNotConnected
	return conn
}

// Send writes f. It returns nil once the frame was handed to the socket.
// On a connection that has ended it returns ErrNotConnected: a callback cannot
// wait for the next connection, so frames are queued in the outbox only by
// Client.Send.
func (conn *Conn) Send(f Frame) error {
	if err := checkFrame(f); err != nil {
		return err
	}
	return conn.write(context.Background(), f)
}

// SendText sends a Text frame.
func (conn *Conn) SendText(s string) error { return conn.Send(Frame{Type: Text, Data: []byte(s)}) }

// SendBinary sends a Binary frame.
func (conn *Conn) SendBinary(b []byte) error { return conn.Send(Frame{Type: Binary, Data: b}) }

// Close starts the close handshake with code and reason and returns at once.
// The connection ends when the server answers or after Options.CloseTimeout;
// OnDisconnect then gets a *CloseError with Local set, and its suggestion is to
// stop (a close the handler asked for is deliberate).
func (conn *Conn) Close(code int, reason string) error {
	if err := checkClose(code, reason); err != nil {
		return err
	}
	if conn.ws == nil {
		return ErrNotConnected
	}
	if !conn.startClose(code, reason) {
		return ErrNotConnected
	}
	return nil
}

// Subprotocol is the subprotocol the server chose, or "".
func (conn *Conn) Subprotocol() string {
	if conn.ws == nil {
		return ""
	}
	return conn.ws.Subprotocol()
}

// Response is the server's handshake response (headers, cookies); its body is
// empty. Nil when not connected.
func (conn *Conn) Response() *http.Response { return conn.resp }

// RTT is the round-trip time of the last answered keepalive ping, or 0.
func (conn *Conn) RTT() time.Duration { return time.Duration(conn.rtt.Load()) }

// Generation numbers the connection attempts of a client, from 1.
func (conn *Conn) Generation() uint64 { return conn.gen }

// LocalAddr and RemoteAddr are the socket's addresses (nil when not connected).
func (conn *Conn) LocalAddr() net.Addr {
	if conn.ws == nil {
		return nil
	}
	return conn.ws.LocalAddr()
}

// RemoteAddr is the address of the peer (a proxy, when one is used).
func (conn *Conn) RemoteAddr() net.Addr {
	if conn.ws == nil {
		return nil
	}
	return conn.ws.RemoteAddr()
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

// errConnEnded marks a write that never started because the connection had ended.
var errConnEnded = fmt.Errorf("%w: the connection has ended or is closing", ErrNotConnected)

// write sends f under the write lock. ctx bounds only the wait for the lock;
// WriteTimeout bounds the write, and a failed write ends the connection, since a
// half-written frame cannot be taken back.
func (conn *Conn) write(ctx context.Context, f Frame) error {
	if conn.ws == nil {
		return ErrNotConnected
	}
	if err := conn.wlock.lock(ctx, conn.done); err != nil {
		return err
	}
	defer conn.wlock.unlock()
	if conn.ended() || conn.closeSent.Load() {
		return errConnEnded
	}
	wt := conn.client.opts.WriteTimeout
	var err error
	switch f.Type {
	case Text, Binary:
		if conn.deadlineStale.Load() {
			conn.moveWriteDeadline(wt)
		}
		err = conn.ws.WriteMessage(int(f.Type), f.Data)
	default: // Ping, Pong
		err = conn.ws.WriteControl(int(f.Type), f.Data, time.Now().Add(wt))
	}
	if err != nil {
		if errors.Is(err, websocket.ErrCloseSent) && conn.closeSent.Load() {
			// A close frame went out while this write waited for gorilla's
			// own lock. A frame that gorilla writes in one piece was refused
			// whole: nothing of it went out, and Client.Send may still queue
			// it or report the client closed. A longer message may have gone
			// out in part, which cannot be taken back. Either way the close
			// handshake, not this write, decides how the connection ends.
			if conn.oneFrame(f) {
				return errConnEnded
			}
			return fmt.Errorf("%w: a close frame went out during the write", ErrNotConnected)
		}
		err = fmt.Errorf("wsclient: write: %w", err)
		conn.end(err, 0)
		return err
	}
	return nil
}

// oneFrame reports whether gorilla writes f with one write: a control frame,
// or an uncompressed message that fits its write buffer.
func (conn *Conn) oneFrame(f Frame) bool {
	switch f.Type {
	case Ping, Pong:
		return true
	}
	return !conn.client.opts.Compression && len(f.Data) <= writeBufferSize
}

// moveWriteDeadline gives data writes a deadline WriteTimeout + 1/8 ahead, and
// has the timer mark it stale WriteTimeout/16 later, while WriteTimeout + 1/16
// is still left on it: every write gets at least WriteTimeout even if the timer
// fires late by up to WriteTimeout/16. A send then costs an atomic load instead
// of a clock read (about 150 ns on a busy VM), and the socket's deadline moves
// at most once per WriteTimeout/16 (gorilla passes it to the socket before every
// frame; wireConn drops an unchanged one). An idle connection's timer stays
// stopped until its next write. Under wlock. end stops the timer after closing
// done; a write that raced past its check re-arms it, and stops it again here,
// so no timer fires after the connection's end.
func (conn *Conn) moveWriteDeadline(wt time.Duration) {
	conn.deadlineStale.Store(false)
	conn.ws.SetWriteDeadline(time.Now().Add(wt + wt/8))
	conn.deadlineTimer.Reset(wt / 16)
	if conn.ended() {
		conn.deadlineTimer.Stop()
	}
}

// writeLock is a mutex whose waiters give up when their ctx or the connection
// ends. Uncontended, taking it is one CAS and releasing it one atomic add (a
// channel used as a lock costs two channel operations, each under the
// channel's own lock); waiters sleep on wake, which a release pokes when
// anyone waits.
type writeLock struct {
	mu      sync.Mutex
	waiters atomic.Int32
	wake    chan struct{} // cap 1
}

func (l *writeLock) lock(ctx context.Context, done <-chan struct{}) error {
	if l.mu.TryLock() {
		return nil
	}
	l.waiters.Add(1)
	defer l.waiters.Add(-1)
	for {
		// Counted as a waiter first: a release from here on pokes wake, so a
		// release between this try and the select is not missed.
		if l.mu.TryLock() {
			return nil
		}
		select {
		case <-l.wake:
		case <-done:
			return errConnEnded
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (l *writeLock) unlock() {
	l.mu.Unlock()
	if l.waiters.Load() > 0 {
		select {
		case l.wake <- struct{}{}:
		default: // a poke is already waiting to be taken
		}
	}
}

// startClose sends a close frame once and tells the owner goroutine. It reports
// whether this call started the close.
func (conn *Conn) startClose(code int, reason string) bool {
	started := false
	conn.closeOnce.Do(func() {
		// Claim the close first: when the reader has already answered the
		// server's close, that close decides and no second close frame goes out.
		if conn.ended() || !conn.closeSent.CompareAndSwap(false, true) {
			return
		}
		conn.localClose.Store(&CloseError{Local: true, Code: code, Reason: reason})
		deadline := time.Now().Add(conn.client.opts.WriteTimeout)
		err := conn.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), deadline)
		if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
			conn.end(fmt.Errorf("wsclient: write close: %w", err), 0)
		}
		close(conn.closeStart)
		started = true
	})
	return started
}

// end ends the connection once: the first cause wins. When code is not zero and
// no close frame was sent yet, a close frame with code goes out first (best effort).
// Closing the socket makes the reader return.
func (conn *Conn) end(cause error, code int) {
	conn.endOnce.Do(func() {
		if code != 0 && conn.closeSent.CompareAndSwap(false, true) {
			reason := ""
			if ce := (*CloseError)(nil); errors.As(cause, &ce) {
				reason = ce.Reason
			}
			wait := min(conn.client.opts.WriteTimeout, time.Second)
			_ = conn.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(wait))
		}
		conn.endErr = cause
		close(conn.done)
		conn.deadlineTimer.Stop()
		conn.ws.NetConn().Close()
	})
}

// fail ends the connection with a close frame of code sent by this side.
func (conn *Conn) fail(code int, reason string, err error) {
	conn.end(&CloseError{Local: true, Code: code, Reason: reason, Err: err}, code)
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
		if len(f.Data) > 125 {
			return fmt.Errorf("wsclient: %v payload of %d bytes is over 125", f.Type, len(f.Data))
		}
	default:
		return fmt.Errorf("wsclient: cannot send a frame of type %d: use Text, Binary, Ping or Pong (and Close to close)", int(f.Type))
	}
	return nil
}

// checkClose rejects close codes and reasons that may not be sent (RFC 6455 7.4).
func checkClose(code int, reason string) error {
	if !validCloseCode(code) {
		return fmt.Errorf("wsclient: close code %d may not be sent", code)
	}
	if len(reason) > 123 {
		return fmt.Errorf("wsclient: close reason of %d bytes is over 123", len(reason))
	}
	if !utf8.ValidString(reason) {
		return errors.New("wsclient: close reason is not valid UTF-8")
	}
	return nil
}

// validCloseCode reports whether code may appear in a close frame (RFC 6455
// 7.4.1 and 7.4.2, with the IANA registrations 1012-1014): the same set may be
// sent and received.
func validCloseCode(code int) bool {
	switch {
	case code >= CloseNormal && code <= CloseUnsupportedData,
		code >= CloseInvalidPayload && code <= CloseBadGateway,
		code >= 3000 && code <= 4999:
		return true
	}
	return false
}
