package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Read buffer sizes. A connection waiting for its next frame holds only the
// small buffer, part of the Conn; the pooled one is taken only while bytes of
// a frame are owed (a partial header, or a payload still arriving that is
// shorter than it) and goes back as soon as what it holds is consumed.
// Payloads at least bigRead long are read straight into the message.
const (
	smallRead = 512
	bigRead   = 16 << 10
)

// connReader buffers the socket's bytes for the frame reader, with buffers
// sized by need: an idle connection keeps no buffer sized by past traffic.
// Owned by the goroutine in ReadMessage.
type connReader struct {
	src   io.Reader
	buf   []byte // small[:] or *big; buffered bytes are buf[r:w]
	r, w  int
	err   error   // the read error, returned once the buffered bytes are consumed
	big   *[]byte // pooled (write.go's classes), nil when buf is small
	small [smallRead]byte
}

func (b *connReader) init(src io.Reader, early []byte) {
	b.src = src
	b.buf = b.small[:]
	if len(early) > len(b.small) {
		b.takeBig()
	}
	b.w = copy(b.buf, early)
}

// Buffered is the number of bytes that can be read without a socket read.
func (b *connReader) Buffered() int { return b.w - b.r }

func (b *connReader) takeBig() {
	b.big = getBuf(bigRead)
	n := copy(*b.big, b.buf[b.r:b.w])
	b.buf, b.r, b.w = *b.big, 0, n
}

// consumed returns the pooled buffer once nothing is buffered.
func (b *connReader) consumed() {
	if b.r != b.w {
		return
	}
	b.r, b.w = 0, 0
	if b.big != nil {
		putBuf(b.big)
		b.big, b.buf = nil, b.small[:]
	}
}

// fill reads once more from the socket (retrying reads that bring nothing).
// owed: bytes of a frame in progress are awaited; otherwise (an empty buffer
// at a frame boundary) the read waits on the small buffer.
func (b *connReader) fill(owed bool) error {
	if b.err != nil {
		return b.err
	}
	if owed && b.big == nil {
		b.takeBig()
	} else if b.r > 0 {
		b.w = copy(b.buf, b.buf[b.r:b.w])
		b.r = 0
	}
	for range 100 {
		n, err := b.src.Read(b.buf[b.w:])
		b.w += n
		if err != nil {
			b.err = err
		}
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	b.err = io.ErrNoProgress
	return b.err
}

// Peek returns the next n bytes (n <= smallRead) without consuming them;
// they stay valid until the next Discard or Read. With nothing buffered it
// waits on the small buffer: Peek starts a frame header.
func (b *connReader) Peek(n int) ([]byte, error) {
	for b.w-b.r < n {
		if err := b.fill(b.w > b.r); err != nil {
			if b.w-b.r >= n {
				break
			}
			return nil, err
		}
	}
	return b.buf[b.r : b.r+n], nil
}

// more makes at least one byte buffered: the payload of a frame in progress.
func (b *connReader) more() error {
	if b.w > b.r {
		return nil
	}
	return b.fill(true)
}

// Discard consumes n buffered bytes (n <= Buffered()).
func (b *connReader) Discard(n int) {
	b.r += n
	b.consumed()
}

// Read reads up to len(p) bytes of a frame in progress: buffered bytes
// first, then straight from the socket into p when p is at least bigRead
// long, else through the pooled buffer (which may bring the next frames too).
func (b *connReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w {
		if len(p) >= bigRead && b.err == nil {
			n, err := b.src.Read(p)
			if err != nil {
				b.err = err
			}
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		if err := b.fill(true); err != nil && b.r == b.w {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	b.consumed()
	return n, nil
}

// frameHeader is a frame's header, validated.
type frameHeader struct {
	fin    bool
	rsv1   bool
	op     Opcode
	masked bool
	key    [4]byte
	length int64
}

var errBadUTF8 = errors.New("a text message that is not valid UTF-8")

func errTooBig(limit int64) error {
	return fmt.Errorf("a message over the read limit of %d bytes", limit)
}

// protocolError fails the connection from this side: it queues a close frame
// with code and reason (unless one was queued already) and returns the
// reader's error.
func (c *Conn) protocolError(code int, reason string, err error) error {
	c.queueCloseFrame(code, reason)
	return &CloseError{Local: true, Code: code, Reason: reason, Err: err}
}

// readFailed turns a socket read error into the reader's error: 1006, with
// the write error or Abort that ended the connection first, or the read
// error (io.ErrUnexpectedEOF for EOF).
func (c *Conn) readFailed(err error) error {
	if e := c.endErr(); e != nil {
		err = e
	} else if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return &CloseError{Code: CloseAbnormal, Err: err}
}

// readHeader reads and validates the next frame header.
func (c *Conn) readHeader() (frameHeader, error) {
	var h frameHeader
	b, err := c.br.Peek(2)
	if err != nil {
		return h, c.readFailed(err)
	}
	c.life.Add(1)
	b0, b1 := b[0], b[1]
	// A control frame's length must fit the 7-bit field: the extended forms
	// are a protocol error whatever length they carry (RFC 6455 5.5), decided
	// here, without waiting for the extended length.
	if op := Opcode(b0 & 0x0f); (op == OpClose || op == OpPing || op == OpPong) && b1&0x7f > MaxControlPayload {
		return h, c.protocolError(CloseProtocolError, "control frame too long",
			fmt.Errorf("a control frame with the extended length form (7-bit length field %d)", b1&0x7f))
	}
	n := 2
	switch b1 & 0x7f {
	case 126:
		n = 4
	case 127:
		n = 10
	}
	h.masked = b1&0x80 != 0
	if h.masked {
		n += 4
	}
	if n > 2 {
		if b, err = c.br.Peek(n); err != nil {
			return h, c.readFailed(err)
		}
	}
	h.fin = b0&0x80 != 0
	h.rsv1 = b0&0x40 != 0
	h.op = Opcode(b0 & 0x0f)
	i := 2
	switch l := b1 & 0x7f; l {
	case 126:
		h.length = int64(binary.BigEndian.Uint16(b[2:]))
		i = 4
	case 127:
		u := binary.BigEndian.Uint64(b[2:])
		if u>>63 != 0 {
			return h, c.protocolError(CloseProtocolError, "invalid frame length",
				errors.New("a 64-bit payload length with the most significant bit set"))
		}
		h.length = int64(u)
		i = 10
	default:
		h.length = int64(l)
	}
	if h.masked {
		copy(h.key[:], b[i:i+4])
	}
	c.br.Discard(n)

	if b0&0x30 != 0 {
		return h, c.protocolError(CloseProtocolError, "reserved bits set", errors.New("a frame with RSV2 or RSV3 set"))
	}
	switch h.op {
	case OpContinuation:
		if !c.inMsg {
			return h, c.protocolError(CloseProtocolError, "unexpected continuation",
				errors.New("a continuation frame without a message to continue"))
		}
		if h.rsv1 {
			return h, c.protocolError(CloseProtocolError, "reserved bits set",
				errors.New("RSV1 set on a continuation frame"))
		}
	case OpText, OpBinary:
		if c.inMsg {
			return h, c.protocolError(CloseProtocolError, "expected continuation",
				errors.New("a new data frame inside a fragmented message"))
		}
		if h.rsv1 && !c.compress {
			return h, c.protocolError(CloseProtocolError, "reserved bits set",
				errors.New("RSV1 set without permessage-deflate"))
		}
	case OpClose, OpPing, OpPong:
		switch {
		case h.rsv1:
			return h, c.protocolError(CloseProtocolError, "reserved bits set",
				errors.New("RSV1 set on a control frame"))
		case !h.fin:
			return h, c.protocolError(CloseProtocolError, "fragmented control frame",
				errors.New("a control frame without FIN"))
		case h.length > MaxControlPayload:
			return h, c.protocolError(CloseProtocolError, "control frame too long",
				fmt.Errorf("a %d-byte control frame payload (at most %d)", h.length, MaxControlPayload))
		}
	default:
		return h, c.protocolError(CloseProtocolError, "unknown opcode", fmt.Errorf("a frame with opcode %d", h.op))
	}
	if h.masked != c.server {
		return h, c.protocolError(CloseProtocolError, "bad masking", c.maskingError())
	}
	return h, nil
}

func (c *Conn) maskingError() error {
	if c.server {
		return errors.New("an unmasked frame from the client")
	}
	return errors.New("a masked frame from the server")
}

// eagerAlloc is the largest payload allocated whole from its header alone: a
// longer one (possible only with a large or no ReadLimit) grows as its bytes
// arrive, so that a header cannot make this side allocate what never comes.
const eagerAlloc = 16 << 20

// readGrow appends h's payload to buf as its bytes arrive, unmasking each
// read's bytes. When buf is full it grows geometrically (amortized: a message
// in many small fragments is copied O(log n) times, not once per fragment),
// up to exactly the message's end on its last frame, never past ReadLimit;
// a buf with room for the payload is not reallocated. With utf, the text
// (all of buf) is checked after every read, from where the last check
// stopped, so that invalid UTF-8 fails on the read that brings it, before
// the rest of the frame arrives.
func (c *Conn) readGrow(h *frameHeader, buf []byte, utf *utf8Checker) ([]byte, error) {
	end := len(buf) + int(h.length)
	pos := 0 // payload position of the next byte, for the mask
	for len(buf) < end {
		if len(buf) == cap(buf) {
			n := max(2*cap(buf), len(buf)+512, 4096)
			if h.fin { // the message's size is known
				n = min(n, end)
			}
			if c.readLimit > 0 && int64(n) > c.readLimit { // end <= readLimit
				n = int(c.readLimit)
			}
			nb := make([]byte, len(buf), n)
			copy(nb, buf)
			buf = nb
		}
		k, err := c.br.Read(buf[len(buf):min(cap(buf), end)])
		if k > 0 {
			if h.masked {
				pos = maskBytes(h.key, pos, buf[len(buf):len(buf)+k])
			}
			buf = buf[:len(buf)+k]
			c.life.Add(1)
			if utf != nil && !utf.check(buf) {
				return buf, c.protocolError(CloseInvalidPayload, "invalid UTF-8", errBadUTF8)
			}
			continue
		}
		if err != nil {
			return buf, c.readFailed(err)
		}
	}
	return buf, nil
}

// readControl reads a control frame's payload and acts on it: a ping's pong
// is queued, a close ends the reading.
func (c *Conn) readControl(h frameHeader) (Message, error) {
	p, err := c.readGrow(&h, make([]byte, 0, h.length), nil)
	if err != nil {
		return Message{}, err
	}
	switch h.op {
	case OpPing:
		_ = c.queueControl(pendingPong, p)
		return Message{Op: OpPing, Data: p}, nil
	case OpPong:
		return Message{Op: OpPong, Data: p}, nil
	}
	// close
	if len(p) == 0 {
		c.queueCloseFrame(0, "")
		return Message{}, &CloseError{Code: CloseNoStatus}
	}
	if len(p) == 1 {
		return Message{}, c.protocolError(CloseProtocolError, "invalid close frame",
			errors.New("a close frame with a 1-byte payload: a body starts with a 2-byte code (RFC 6455 5.5.1)"))
	}
	code := int(binary.BigEndian.Uint16(p))
	if !ValidCloseCode(code) {
		return Message{}, c.protocolError(CloseProtocolError, "invalid close code",
			fmt.Errorf("close code %d may not be sent", code))
	}
	if !utf8.Valid(p[2:]) {
		return Message{}, c.protocolError(CloseInvalidPayload, "invalid UTF-8 in close reason",
			errors.New("the close reason is not valid UTF-8"))
	}
	c.queueCloseFrame(code, "")
	return Message{}, &CloseError{Code: code, Reason: string(p[2:])}
}

func (c *Conn) popControl() Message {
	m := c.ctlq[0]
	n := copy(c.ctlq, c.ctlq[1:])
	c.ctlq[n] = Message{}
	c.ctlq = c.ctlq[:n]
	return m
}

// ReadMessage returns the next message: a whole Text or Binary message, or a
// Ping or Pong frame (a ping's pong is queued first). Data belongs to the
// caller. The peer's close frame (echoed unless this side sent one first), a
// protocol violation (answered with a close frame) and the end of the
// connection give a *CloseError, which every later call returns again. One
// goroutine at a time.
func (c *Conn) ReadMessage() (Message, error) {
	if c.readErr != nil {
		return Message{}, c.readErr
	}
	if len(c.ctlq) > 0 {
		return c.popControl(), nil
	}
	m, err := c.readMessage()
	if err != nil {
		c.readErr = err
		c.inMsg, c.msgBuf = false, nil
	}
	return m, err
}

func (c *Conn) readMessage() (Message, error) {
	for {
		h, err := c.readHeader()
		if err != nil {
			return Message{}, err
		}
		if h.op.IsControl() {
			return c.readControl(h)
		}
		if h.rsv1 {
			return c.readCompressed(h)
		}
		total := h.length
		if h.op == OpContinuation {
			total += int64(len(c.msgBuf))
		}
		if c.readLimit > 0 && total > c.readLimit {
			return Message{}, c.protocolError(CloseMessageTooBig, "message too big", errTooBig(c.readLimit))
		}
		if total != int64(int(total)) {
			return Message{}, c.protocolError(CloseMessageTooBig, "message too big", errors.New("a message too large for memory"))
		}
		var utf *utf8Checker
		if h.op == OpText || (h.op == OpContinuation && c.msgOp == OpText) {
			utf = &c.utf
		}
		if h.op != OpContinuation {
			c.msgOp, c.utf = h.op, utf8Checker{}
			if h.fin && h.length <= eagerAlloc { // the common case: one frame, one allocation of its size
				p, err := c.readGrow(&h, make([]byte, 0, h.length), utf)
				if err != nil {
					return Message{}, err
				}
				if utf != nil && !utf.complete(p) {
					return Message{}, c.protocolError(CloseInvalidPayload, "invalid UTF-8", errBadUTF8)
				}
				return Message{Op: h.op, Data: p}, nil
			}
			c.inMsg, c.msgBuf = true, make([]byte, 0, min(h.length, eagerAlloc))
		}
		buf, err := c.readGrow(&h, c.msgBuf, utf)
		c.msgBuf = buf
		if err != nil {
			return Message{}, err
		}
		if h.fin {
			c.inMsg, c.msgBuf = false, nil
			if c.msgOp == OpText && !c.utf.complete(buf) {
				return Message{}, c.protocolError(CloseInvalidPayload, "invalid UTF-8", errBadUTF8)
			}
			return Message{Op: c.msgOp, Data: buf}, nil
		}
	}
}
