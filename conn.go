package wsclient

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
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

	writeSem chan struct{} // the write lock: a channel so that waiting can obey a ctx
	ready    chan struct{} // closed once OnConnect's frames and the outbox are written
	isReady  atomic.Bool

	endOnce    sync.Once
	done       chan struct{} // closed when the connection has ended: no more writes
	endErr     error         // why it ended; written before done is closed
	readerDone chan struct{} // closed when the reader goroutine has returned

	closeOnce  sync.Once
	closeSent  atomic.Bool   // a close frame went out: no more data frames
	localClose *CloseError   // the close this side started; written before closeStart is closed
	closeStart chan struct{} // closed when this side started the close handshake

	life      atomic.Uint64 // grows with every read from the peer: keepalive's proof of life
	inHandler atomic.Bool   // the reader is inside HandleFrame (pongs wait unread)
	pingSent  atomic.Int64  // UnixNano of the last ping, also its payload
	rtt       atomic.Int64

	readBuf []byte    // the reader's scratch buffer, reused across messages
	wire    *wireConn // the frame watcher under gorilla, nil when the dialer installed none
}

// newConn wraps a handshaken connection of generation gen.
func newConn(c *Client, gen uint64, ws *websocket.Conn, resp *http.Response) *Conn {
	conn := &Conn{
		client:     c,
		gen:        gen,
		ws:         ws,
		resp:       resp,
		opened:     time.Now(),
		writeSem:   make(chan struct{}, 1),
		ready:      make(chan struct{}),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
		closeStart: make(chan struct{}),
	}
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
	select {
	case conn.writeSem <- struct{}{}:
	default:
		select {
		case conn.writeSem <- struct{}{}:
		case <-conn.done:
			return errConnEnded
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer func() { <-conn.writeSem }()
	if conn.ended() || conn.closeSent.Load() {
		return errConnEnded
	}
	deadline := time.Now().Add(conn.client.opts.WriteTimeout)
	var err error
	switch f.Type {
	case Text, Binary:
		conn.ws.SetWriteDeadline(deadline)
		err = conn.ws.WriteMessage(int(f.Type), f.Data)
	default: // Ping, Pong
		err = conn.ws.WriteControl(int(f.Type), f.Data, deadline)
	}
	if err != nil {
		err = fmt.Errorf("wsclient: write: %w", err)
		conn.end(err, 0)
		return err
	}
	return nil
}

// startClose sends a close frame once and tells the owner goroutine. It reports
// whether this call started the close.
func (conn *Conn) startClose(code int, reason string) bool {
	started := false
	conn.closeOnce.Do(func() {
		if conn.ended() {
			return
		}
		conn.localClose = &CloseError{Local: true, Code: code, Reason: reason}
		conn.closeSent.Store(true)
		deadline := time.Now().Add(conn.client.opts.WriteTimeout)
		if err := conn.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), deadline); err != nil {
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
		conn.ws.NetConn().Close()
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
	for {
		mt, r, err := conn.ws.NextReader()
		if err != nil {
			conn.end(conn.readError(err), 0)
			return
		}
		conn.life.Add(1)
		data, err := conn.readMessage(mt, r)
		if err != nil {
			if errors.Is(err, errInvalidUTF8) {
				conn.fail(CloseInvalidPayload, "invalid UTF-8", err)
			} else {
				conn.end(conn.readError(err), 0)
			}
			return
		}
		if err := conn.deliver(Frame{Type: MessageType(mt), Data: data}); err != nil {
			conn.fail(CloseInternalError, "", err)
			return
		}
	}
}

// readBufKeep is the largest scratch buffer kept between messages, so that one
// big message does not pin memory on an idle connection.
const readBufKeep = 64 << 10

var errInvalidUTF8 = errors.New("wsclient: invalid UTF-8 in a text message")

// readMessage reads one message into a buffer of its own. Text is checked for
// valid UTF-8 as its fragments arrive, so that a bad sequence fails at once.
func (conn *Conn) readMessage(mt int, r io.Reader) ([]byte, error) {
	buf := conn.readBuf[:0]
	var v utf8Checker
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, max(len(buf), 512))...)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		if n > 0 {
			conn.life.Add(1)
			if mt == websocket.TextMessage && !v.check(buf[:len(buf)+n]) {
				return nil, errInvalidUTF8
			}
			buf = buf[:len(buf)+n]
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if mt == websocket.TextMessage && !v.complete(buf) {
		return nil, errInvalidUTF8
	}
	if cap(buf) <= readBufKeep {
		conn.readBuf = buf
	} else {
		conn.readBuf = nil
	}
	if len(buf) == 0 {
		return []byte{}, nil
	}
	return append([]byte(nil), buf...), nil
}

// deliver calls HandleFrame under the handler lock.
func (conn *Conn) deliver(f Frame) error {
	conn.inHandler.Store(true)
	defer conn.inHandler.Store(false)
	return conn.client.callback("HandleFrame", func(h Handler) error { return h.HandleFrame(conn, f) })
}

// onPing answers a server ping with a pong and passes the ping on.
func (conn *Conn) onPing(data string) error {
	conn.life.Add(1)
	err := conn.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(conn.client.opts.WriteTimeout))
	if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return err
		}
	}
	return conn.deliverControl(Ping, data)
}

// onPong records the round trip of our keepalive ping and passes the pong on.
func (conn *Conn) onPong(data string) error {
	conn.life.Add(1)
	if len(data) == 8 {
		sent := conn.pingSent.Load()
		if sent != 0 && string(pingPayload(sent)) == data {
			conn.rtt.Store(int64(time.Since(time.Unix(0, sent))))
		}
	}
	return conn.deliverControl(Pong, data)
}

func (conn *Conn) deliverControl(t MessageType, data string) error {
	if err := conn.deliver(Frame{Type: t, Data: []byte(data)}); err != nil {
		return &handlerFailed{err}
	}
	return nil
}

// handlerFailed carries a callback's error out of gorilla's control frame handlers.
type handlerFailed struct{ err error }

func (e *handlerFailed) Error() string { return e.err.Error() }

// onClose answers the server's close frame, unless this side started the close
// (then the server's frame completes the handshake). A close frame that the wire
// watcher found malformed where gorilla cannot see it (a 1-byte payload, a reason
// that is not UTF-8) fails the connection instead, with 1002 or 1007.
func (conn *Conn) onClose(code int, text string) error {
	conn.life.Add(1)
	fail, realCode := conn.wire.closeVerdict()
	if fail != nil {
		conn.fail(fail.Code, fail.Reason, fail.Err)
		return errCloseRejected
	}
	var result error // nil: gorilla reports the close as it parsed it
	if realCode != 0 {
		code = realCode
		result = &websocket.CloseError{Code: code, Text: text}
	}
	if conn.closeSent.CompareAndSwap(false, true) {
		msg := []byte{}
		if code != websocket.CloseNoStatusReceived {
			msg = websocket.FormatCloseMessage(code, "")
		}
		_ = conn.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(conn.client.opts.WriteTimeout))
	}
	return result
}

// errCloseRejected is what onClose gives gorilla after failing the connection
// over a malformed close frame; the cause is the connection's endErr.
var errCloseRejected = errors.New("wsclient: malformed close frame")

// readError says why reading stopped, in the terms of Disconnect.Err.
func (conn *Conn) readError(err error) error {
	var hf *handlerFailed
	var wce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &hf):
		conn.fail(CloseInternalError, "", hf.err)
		return conn.endErr
	case errors.Is(err, errCloseRejected):
		return conn.endErr
	case conn.localClose != nil && conn.closeSent.Load() && errors.As(err, &wce):
		return conn.localClose // the server answered our close
	case errors.As(err, &wce):
		ce := &CloseError{Code: wce.Code, Reason: wce.Text}
		if wce.Code == websocket.CloseAbnormalClosure {
			ce.Reason, ce.Err = "", io.ErrUnexpectedEOF
		}
		return ce
	case errors.Is(err, websocket.ErrReadLimit):
		return conn.readLimitError()
	case errors.As(err, &ne), errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("wsclient: connection lost: %w", err)
	case strings.HasPrefix(err.Error(), "websocket: "):
		// gorilla found a protocol violation and has sent 1002 itself.
		return &CloseError{Local: true, Code: CloseProtocolError, Err: err}
	}
	return fmt.Errorf("wsclient: read: %w", err)
}

// readLimitError tells apart the two causes of gorilla's ErrReadLimit. A message
// over ReadLimit: gorilla has sent 1009 itself. A 64-bit payload length with its
// most significant bit set (RFC 6455 5.2: it MUST be 0): gorilla sent nothing,
// and the right answer is 1002. The wire watcher saw which it was; without one,
// trying to send the 1002 tells, since gorilla refuses a second close frame.
func (conn *Conn) readLimitError() error {
	if conn.wire == nil || conn.wire.badLength {
		const reason = "invalid payload length"
		sent := false
		if conn.closeSent.CompareAndSwap(false, true) {
			msg := websocket.FormatCloseMessage(CloseProtocolError, reason)
			sent = conn.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(conn.client.opts.WriteTimeout)) == nil
		}
		if sent || conn.wire != nil {
			return &CloseError{Local: true, Code: CloseProtocolError, Reason: reason,
				Err: errors.New("a 64-bit payload length with its most significant bit set")}
		}
	}
	return &CloseError{Local: true, Code: CloseMessageTooBig, Err: fmt.Errorf("message over ReadLimit (%d bytes)", conn.client.opts.ReadLimit)}
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

// watchWire wraps the socket the dialer hands to gorilla, so that the client can
// follow the server's frames on their way in (see wireConn). The dialer calls it
// on every socket it makes; a socket that turns out to carry TLS records, or a
// proxy's traffic only, is passed through untouched.
func watchWire(nc net.Conn) net.Conn { return &wireConn{Conn: nc} }

// wireConn follows the server's frames under gorilla, for what gorilla cannot see
// or answers wrongly when it parses a close frame:
//
//   - a close frame with a 1-byte payload must fail the connection with 1002
//     (RFC 6455 5.5.1: a body starts with a 2-byte code); gorilla reports it
//     as a close without status (1005) and would have the client echo it;
//   - a close reason that is not UTF-8 must fail the connection (RFC 6455 5.5.1,
//     8.1). The client answers 1007 (invalid frame payload data, 7.4.1), as it
//     does for a text message; Autobahn case 7.5.1 accepts 1002 or 1007.
//     gorilla would send 1002 itself before any hook runs, so the watcher hands
//     gorilla that frame without its reason, and onClose fails the connection;
//   - gorilla v1.5.3 fails the registered code 1014 (bad gateway) as invalid
//     with 1002; the watcher hands gorilla a stand-in code, and onClose puts
//     the real one back (it is echoed and reported as sent).
//
// It costs no copy on the common path: it counts payload bytes as they pass and
// reads frame headers in place. Only a frame header cut after its first byte (one
// byte) and a close frame (at most 127 bytes) are held back until whole; gorilla
// cannot use either before it is whole anyway.
//
// It finds its place in the stream by itself: the response to the upgrade request
// (the first write that starts with "GET ") ends at the first empty line (a 101
// has no body), and the frames start there, just as gorilla's
// http.ReadResponse sees it. What is read before that request (a proxy's answer)
// is passed through; under TLS it never sees the request, and passes everything.
// It stops following after the first close frame, since gorilla reads no further.
//
// Reads come from one goroutine at a time (the handshake, then the reader, which
// also runs onClose), so the read side needs no lock.
type wireConn struct {
	net.Conn
	upgrade atomic.Bool // the upgrade request was written: its response comes next

	phase     wirePhase
	line      uint8       // in the response: 0 at a line start, 1 after a lone '\r', 2 in a line
	need      int         // bytes still to come of the extended length or mask key
	length    uint64      // the payload length being read
	masked    bool        // the current frame has a mask key
	skip      uint64      // payload bytes still to pass
	hold      []byte      // bytes read but not yet handed on, from the start of a frame; not yet followed
	out       []byte      // bytes followed and due to be handed on, before anything else
	err       error       // the socket's error, due after out
	verdict   *CloseError // the first close frame fails the connection so
	realCode  int         // the first close frame's code, given to gorilla as 1000
	badLength bool        // a 64-bit payload length had its most significant bit set
}

type wirePhase uint8

const (
	wireIdle     wirePhase = iota // before the upgrade request
	wireResponse                  // in the upgrade response's header
	wireHeader                    // at the start of a frame
	wireLength                    // in an extended payload length
	wireMask                      // in a mask key
	wirePayload                   // in a payload
	wireDone                      // past the first close frame, or after an error: pass everything
)

func (w *wireConn) Write(p []byte) (int, error) {
	if !w.upgrade.Load() && len(p) >= 4 && string(p[:4]) == "GET " {
		w.upgrade.Store(true)
	}
	return w.Conn.Write(p)
}

func (w *wireConn) Read(p []byte) (int, error) {
	for {
		if len(w.out) > 0 {
			n := copy(p, w.out)
			w.out = w.out[n:]
			return n, nil
		}
		if w.err != nil {
			err := w.err
			w.err = nil
			return 0, err
		}
		if w.phase == wireDone || w.phase == wireIdle && !w.upgrade.Load() {
			return w.Conn.Read(p)
		}
		if w.phase == wireIdle {
			w.phase = wireResponse
		}
		if len(p) == 0 {
			return 0, nil
		}
		n, err := w.Conn.Read(p)
		held := len(w.hold) > 0
		b := p[:n]
		if held {
			b = append(w.hold, b...)
			w.hold = nil
		}
		b, k := w.follow(b)
		if err != nil {
			k, w.phase = len(b), wireDone // gorilla reads no further after an error
		}
		if k < len(b) {
			w.hold = append([]byte(nil), b[k:]...)
		}
		if held { // b is a buffer of its own: hand on what fits
			m := copy(p, b[:k])
			w.out = b[m:k]
			k = m
		}
		switch {
		case k == 0 && err == nil:
			continue // all held: gorilla can do nothing with a part of a header either
		case len(w.out) > 0:
			w.err = err
			return k, nil
		}
		return k, err
	}
}

// follow moves the watcher along b, which starts where the last call stopped
// (or at the start of the held bytes). It returns b (shortened when a close
// reason was cut out) and how many bytes of it may be handed on; the rest, from
// the start of a frame, must be held and given again with more bytes.
func (w *wireConn) follow(b []byte) ([]byte, int) {
	i := 0
	for i < len(b) {
		switch w.phase {
		case wireResponse:
			for i < len(b) && w.phase == wireResponse {
				c := b[i]
				i++
				switch {
				case c == '\n' && w.line < 2: // an empty line: the header ends
					w.phase = wireHeader
				case c == '\n':
					w.line = 0
				case c == '\r' && w.line == 0:
					w.line = 1
				default:
					w.line = 2
				}
			}
		case wireHeader:
			if len(b)-i < 2 {
				return b, i
			}
			b0, b1 := b[i], b[i+1]
			if b0&0x0f == websocket.CloseMessage {
				// A close frame gorilla will parse (FIN, no RSV2/3, not masked,
				// at most 125 bytes) is held until whole and judged.
				if n := int(b1 & 0x7f); b0&0xb0 == 0x80 && b1&0x80 == 0 && n <= 125 {
					if len(b)-i < 2+n {
						return b, i
					}
					b = w.judgeClose(b, i, n)
				}
				w.phase = wireDone
				return b, len(b)
			}
			i += 2
			w.masked = b1&0x80 != 0
			switch w.length = uint64(b1 & 0x7f); w.length {
			case 126:
				w.need, w.length, w.phase = 2, 0, wireLength
			case 127:
				w.need, w.length, w.phase = 8, 0, wireLength
			default:
				w.startPayload()
			}
		case wireLength:
			for ; w.need > 0 && i < len(b); i++ {
				w.length = w.length<<8 | uint64(b[i])
				w.need--
			}
			if w.need == 0 {
				if w.length>>63 != 0 { // gorilla fails on it, as over ReadLimit
					w.badLength = true
					w.phase = wireDone
					return b, len(b)
				}
				w.startPayload()
			}
		case wireMask:
			t := min(w.need, len(b)-i)
			i += t
			if w.need -= t; w.need == 0 {
				w.phase = wirePayload
				if w.skip == 0 {
					w.phase = wireHeader
				}
			}
		case wirePayload:
			t := min(w.skip, uint64(len(b)-i))
			i += int(t)
			if w.skip -= t; w.skip == 0 {
				w.phase = wireHeader
			}
		default:
			return b, len(b)
		}
	}
	return b, i
}

// startPayload moves on past a header whose payload length is w.length.
func (w *wireConn) startPayload() {
	w.skip = w.length
	switch {
	case w.masked:
		w.need, w.phase = 4, wireMask
	case w.skip > 0:
		w.phase = wirePayload
	default:
		w.phase = wireHeader
	}
}

// judgeClose judges the whole close frame at b[i:], whose payload has n bytes,
// and returns b, changed when gorilla must see another frame than was sent.
func (w *wireConn) judgeClose(b []byte, i, n int) []byte {
	payload := b[i+2 : i+2+n]
	if n == 1 {
		w.verdict = &CloseError{Local: true, Code: CloseProtocolError, Reason: "invalid close frame",
			Err: errors.New("a close frame with a 1-byte payload: a body starts with a 2-byte code (RFC 6455 5.5.1)")}
		return b
	}
	if n == 0 {
		return b
	}
	code := int(binary.BigEndian.Uint16(payload))
	switch {
	case !validCloseCode(code):
		// gorilla fails it with 1002, whatever the reason holds.
	case !utf8.Valid(payload[2:]):
		// gorilla would send 1002 before any hook runs: it gets the code alone.
		w.verdict = &CloseError{Local: true, Code: CloseInvalidPayload, Reason: "invalid UTF-8 in close reason",
			Err: errors.New("the close reason is not valid UTF-8")}
		b[i+1] = 2
		b = append(b[:i+4], b[i+2+n:]...)
	case code == CloseBadGateway:
		// gorilla v1.5.3 fails the IANA-registered 1014 as a bad code: it gets
		// a stand-in, and onClose puts the real code back.
		w.realCode = code
		binary.BigEndian.PutUint16(payload, CloseNormal)
	}
	return b
}

// closeVerdict returns, once, what the watcher found in the server's close
// frame: the failure it calls for, or the real code behind a stand-in (0 for
// none). It runs on the reader, in gorilla's close handler.
func (w *wireConn) closeVerdict() (fail *CloseError, realCode int) {
	if w == nil {
		return nil, 0
	}
	fail, realCode = w.verdict, w.realCode
	w.verdict, w.realCode = nil, 0
	return fail, realCode
}
