package wsclient

import (
	"encoding/binary"
	"errors"
	"net"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// watchWire wraps the socket the dialer hands to gorilla, so that the client can
// follow the server's frames on their way in (see wireConn). The dialer calls it
// on every socket it makes; a socket that turns out to carry TLS records, or a
// proxy's traffic only, is passed through untouched.
func watchWire(nc net.Conn) net.Conn {
	w := &wireConn{Conn: nc, writer: nc}
	if d, ok := nc.(*dialConn); ok {
		w.writer = d.Conn // dialConn only watches reads: writes skip a layer
	}
	return w
}

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
	writer  net.Conn    // where writes go: Conn, or the socket under it
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

	wdl atomic.Int64 // the write deadline last set on the socket, as deadlineKey
}

// SetWriteDeadline passes a deadline on only when it changed. gorilla sets the
// socket's write deadline before every frame, and Conn.write moves the data
// deadline only every WriteTimeout/8: an unchanged one then costs a comparison
// instead of a clock read and the runtime poller's lock. gorilla makes these
// calls under its write lock, one at a time.
func (w *wireConn) SetWriteDeadline(t time.Time) error {
	k := deadlineKey(t)
	if w.wdl.Load() == k {
		return nil
	}
	err := w.Conn.SetWriteDeadline(t)
	if err == nil {
		w.wdl.Store(k)
	}
	return err
}

// SetDeadline sets both deadlines (gorilla does, around the handshake).
func (w *wireConn) SetDeadline(t time.Time) error {
	err := w.Conn.SetDeadline(t)
	w.wdl.Store(deadlineKey(t))
	return err
}

// deadlineKey is t as a number, 0 for no deadline.
func deadlineKey(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
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
	return w.writer.Write(p)
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
