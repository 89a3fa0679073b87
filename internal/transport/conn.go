package transport

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ConnOptions is what NewConn needs besides the socket.
type ConnOptions struct {
	// Server: this side is the server: it writes unmasked frames and requires
	// the peer's frames to be masked.
	Server bool
	// Compression: permessage-deflate was negotiated, without context
	// takeover in either direction.
	Compression bool
	// ReadLimit is the largest message accepted, as delivered (inflated);
	// 0: none.
	ReadLimit int64
	// WriteTimeout bounds each socket write; 0: none.
	WriteTimeout time.Duration
	// Subprotocol is the subprotocol the handshake agreed on.
	Subprotocol string
	// Response is the handshake response (client role).
	Response *http.Response
	// ReadSource, when set, is where reads go once the bytes br holds
	// already are consumed (br itself is then dropped: its buffer is not
	// kept). Default: br when given, else the socket.
	ReadSource io.Reader
}

// errAborted is the reader's error after Abort.
var errAborted = errors.New("wsclient: connection aborted locally")

// Conn is one upgraded WebSocket connection: the frame codec of RFC 6455 and
// RFC 7692 over a socket. One goroutine at a time may call ReadMessage; every
// other method is safe for concurrent use.
type Conn struct {
	nc           net.Conn
	server       bool
	compress     bool
	readLimit    int64
	writeTimeout time.Duration
	subprotocol  string
	resp         *http.Response

	// mu guards the control slots and the end of the connection.
	mu         sync.Mutex
	failErr    error // why the connection ended (a write error, Abort); set once
	closeFrame [2 + MaxCloseReason]byte
	closeLen   int
	pingFrame  [MaxControlPayload]byte
	pingLen    int
	pongFrame  [MaxControlPayload]byte
	pongLen    int
	closeDone  bool // the close frame was taken for writing (nothing may follow it)
	closeOut   bool // its write is over (it went out, or the write failed)
	// abortOnClose: AbortWhenClosed is waiting for the close frame to go
	// out; whoever writes it drops the socket. abortTimer bounds the wait.
	abortOnClose bool
	abortTimer   *time.Timer
	ended        chan struct{} // closed when the connection ends (Ended)

	dead      atomic.Bool   // the connection ended: writes fail with ErrClosed
	closeSent atomic.Bool   // a close frame was queued or sent
	pending   atomic.Uint32 // pendingPing|pendingPong|pendingClose, set under mu

	// The write side: msgSem serializes messages (fair: a channel's waiting
	// senders are served in order), frameMu serializes frames.
	msgSem        chan struct{}
	frameMu       sync.Mutex
	writeDeadline time.Time // the socket's write deadline, under frameMu

	// The read side, owned by the goroutine in ReadMessage.
	br      connReader
	life    atomic.Uint64
	readErr error  // sticky: every later ReadMessage returns it
	inMsg   bool   // inside a fragmented data message
	msgOp   Opcode // its opcode
	msgBuf  []byte // what has come of it (uncompressed)
	utf     utf8Checker
	ctlq    []Message // control frames read while inflating, due before the message
	src     inflateSrc
}

const (
	pendingPong uint32 = 1 << iota
	pendingPing
	pendingClose
)

// NewConn wraps an upgraded connection. br is the reader the handshake used
// (it may hold bytes of the first frames already); nc is the socket (TLS or
// not) for writes, deadlines, addresses and Close.
func NewConn(nc net.Conn, br *bufio.Reader, o ConnOptions) *Conn {
	c := &Conn{
		nc:           nc,
		server:       o.Server,
		compress:     o.Compression,
		readLimit:    o.ReadLimit,
		writeTimeout: o.WriteTimeout,
		subprotocol:  o.Subprotocol,
		resp:         o.Response,
		msgSem:       make(chan struct{}, 1),
		ended:        make(chan struct{}),
	}
	var src io.Reader = nc
	var early []byte
	switch {
	case o.ReadSource != nil && br != nil:
		early, _ = br.Peek(br.Buffered())
		src = o.ReadSource
	case o.ReadSource != nil:
		src = o.ReadSource
	case br != nil:
		src = br
	}
	c.br.init(src, early)
	c.src.c = c
	return c
}

// Abort drops the socket now: a ReadMessage in progress returns a 1006
// CloseError saying the connection was aborted locally, writes fail with
// ErrClosed. It is idempotent.
func (c *Conn) Abort() { c.end(errAborted) }

// end ends the connection once, for err, and closes the socket.
func (c *Conn) end(err error) {
	c.mu.Lock()
	if c.failErr != nil {
		c.mu.Unlock()
		return
	}
	c.failErr = err
	c.dead.Store(true)
	if c.abortTimer != nil {
		c.abortTimer.Stop()
	}
	close(c.ended)
	c.mu.Unlock()
	_ = c.nc.Close()
}

// Ended is closed when the connection has ended on this side (a write error,
// Abort, AbortWhenClosed once the close frame is out) and its socket is
// closed or closing.
func (c *Conn) Ended() <-chan struct{} { return c.ended }

// CloseAndAbort fails the connection with a close frame: Close (a close
// frame queued or sent already decides), then AbortWhenClosed.
func (c *Conn) CloseAndAbort(code int, reason string, d time.Duration) {
	if err := c.Close(code, reason); err != nil && !errors.Is(err, ErrCloseSent) && !errors.Is(err, ErrClosed) {
		c.Abort() // a code or reason that may not be sent
		return
	}
	c.AbortWhenClosed(d)
}

// AbortWhenClosed drops the socket once the close frame queued so far (this
// side's, or the reader's answer to the peer's) is out: at once when none is
// queued or it is out already, else right after the frame in progress, whose
// writer writes the close frame next. A writer stuck on a peer that does not
// read gets d (d <= 0: no time at all), then the socket is dropped anyway. It
// never waits.
func (c *Conn) AbortWhenClosed(d time.Duration) {
	c.mu.Lock()
	if c.failErr != nil {
		c.mu.Unlock()
		return
	}
	// closeOut, not closeDone: the close frame's write may be in progress.
	if d <= 0 || !c.closeSent.Load() || c.closeOut {
		c.mu.Unlock()
		c.Abort()
		return
	}
	// flushControl drops the socket after the close frame's write.
	c.abortOnClose = true
	if c.abortTimer == nil {
		c.abortTimer = time.AfterFunc(d, c.Abort)
	}
	c.mu.Unlock()
}

// endErr is why the connection ended locally, nil when it has not.
func (c *Conn) endErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failErr
}

// CloseSent reports whether this side queued or sent a close frame.
func (c *Conn) CloseSent() bool { return c.closeSent.Load() }

// Life grows on every read from the socket that brought bytes (at least once
// per frame): proof that the peer is alive, even during a long message.
func (c *Conn) Life() uint64 { return c.life.Load() }

// Subprotocol is the subprotocol agreed on in the handshake.
func (c *Conn) Subprotocol() string { return c.subprotocol }

// Response is the handshake response (nil in the server role).
func (c *Conn) Response() *http.Response { return c.resp }

// LocalAddr is the socket's local address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr is the socket's remote address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Compressed reports whether permessage-deflate is in use.
func (c *Conn) Compressed() bool { return c.compress }
