package wsclient

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

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
		conn.life.Add(1) // an empty message is life too; others counted as they were read
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
	case conn.localClose.Load() != nil && errors.As(err, &wce):
		return conn.localClose.Load() // the server answered our close
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
