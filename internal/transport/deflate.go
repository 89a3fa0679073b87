package transport

import (
	"compress/flate"
	"io"
	"sync"
)

// permessage-deflate (RFC 7692) without context takeover: every message is
// deflated by a reset writer and inflated by a reset reader, both pooled.

var flateWriterPool = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed) // never fails at a valid level
	return w
}}

var flateReaderPool = sync.Pool{New: func() any { return flate.NewReader(nil) }}

// deflateTail ends a message's deflate data for the inflater: the 00 00 ff ff
// the sender removed (RFC 7692 7.2.2), then an empty final stored block, so
// that the inflater ends with io.EOF instead of asking for more.
var deflateTail = [...]byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// deflateBuf collects a writer's output after room for a frame header.
type deflateBuf struct{ b []byte }

func (d *deflateBuf) Write(p []byte) (int, error) {
	d.b = append(d.b, p...)
	return len(p), nil
}

// Deflate buffers larger than this are not pooled.
const deflateBufKeep = 256 << 10

var deflateBufPool = sync.Pool{New: func() any { return &deflateBuf{b: make([]byte, 0, 4096)} }}

// writeCompressed deflates data and writes it as a compressed message: RSV1
// on the first frame. A result up to maxFramePayload is framed in place (one
// buffer, one socket write). Under the message lock.
func (c *Conn) writeCompressed(op Opcode, data []byte) error {
	d := deflateBufPool.Get().(*deflateBuf)
	d.b = append(d.b[:0], make([]byte, maxHeader)...)
	fw := flateWriterPool.Get().(*flate.Writer)
	fw.Reset(d)
	_, _ = fw.Write(data) // writes to d never fail
	_ = fw.Flush()
	flateWriterPool.Put(fw)
	p := d.b[maxHeader:]
	if n := len(p); n >= 4 && p[n-4] == 0 && p[n-3] == 0 && p[n-2] == 0xff && p[n-1] == 0xff {
		p = p[:n-4]
	}
	b0 := 0x40 | byte(op) // RSV1
	var err error
	if len(p) <= maxFramePayload {
		h := c.headerLen(len(p))
		c.frameMu.Lock()
		if err = c.startErr(); err != nil {
			c.unlockFrame()
		} else {
			frame := d.b[maxHeader-h : maxHeader+len(p)]
			key := c.putHeader(frame, 0x80|b0, len(p))
			if !c.server {
				maskBytes(key, 0, frame[h:])
			}
			if err = c.writeRaw(frame); err != nil {
				err = c.failWrite(err)
				c.frameMu.Unlock()
			} else {
				c.unlockFrame()
			}
		}
	} else {
		err = c.writeFrames(b0, p)
	}
	if cap(d.b) <= deflateBufKeep {
		deflateBufPool.Put(d)
	}
	return err
}

// inflateSrc is the inflater's input: the payloads of a compressed message's
// frames, read in place from the connection's read buffer (unmasked there),
// then deflateTail. It is an io.ByteReader, so that flate reads it directly
// (no buffer of its own). Control frames between the message's frames are
// handled as they come (answered, queued for delivery in c.ctlq).
type inflateSrc struct {
	c      *Conn
	win    []byte // bytes ready: peeked from br (or deflateTail)
	i      int    // win[:i] consumed
	peeked bool   // win is in br's buffer: Discard it when done
	remain int64  // payload bytes of the current frame not yet in win
	fin    bool   // the current frame is the message's last
	tail   bool   // deflateTail was handed out
	masked bool
	key    [4]byte
	pos    int   // payload position of the next byte, for the mask
	err    error // the error that stopped it: a *CloseError
}

func (s *inflateSrc) start(h frameHeader) {
	*s = inflateSrc{c: s.c, remain: h.length, fin: h.fin, masked: h.masked, key: h.key}
}

// fill makes win hold unconsumed bytes, or returns io.EOF after deflateTail,
// or the error that stopped the message.
func (s *inflateSrc) fill() error {
	if s.err != nil {
		return s.err
	}
	c := s.c
	if s.peeked {
		c.br.Discard(len(s.win))
		s.peeked = false
	}
	s.win, s.i = nil, 0
	for s.remain == 0 {
		if s.fin {
			if s.tail {
				return io.EOF
			}
			s.tail = true
			s.win = deflateTail[:]
			return nil
		}
		h, err := c.readHeader()
		if err != nil {
			s.err = err
			return err
		}
		if h.op.IsControl() {
			m, err := c.readControl(h)
			if err != nil {
				s.err = err
				return err
			}
			if len(c.ctlq) < maxQueuedControl {
				c.ctlq = append(c.ctlq, m)
			}
			continue
		}
		// readHeader let only a continuation through
		s.remain, s.fin, s.masked, s.key, s.pos = h.length, h.fin, h.masked, h.key, 0
	}
	if err := c.br.more(); err != nil {
		s.err = c.readFailed(err)
		return s.err
	}
	c.life.Add(1)
	n := int(min(s.remain, int64(c.br.Buffered())))
	b, _ := c.br.Peek(n)
	if s.masked {
		s.pos = maskBytes(s.key, s.pos, b)
	}
	s.remain -= int64(n)
	s.win, s.peeked = b, true
	return nil
}

func (s *inflateSrc) ReadByte() (byte, error) {
	if s.i >= len(s.win) {
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	b := s.win[s.i]
	s.i++
	return b, nil
}

func (s *inflateSrc) Read(p []byte) (int, error) {
	if s.i >= len(s.win) {
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.win[s.i:])
	s.i += n
	return n, nil
}

// drain consumes the rest of the message (the peer's deflate data may end
// before its last frame does). It returns nil at the message's end.
func (s *inflateSrc) drain() error {
	for {
		s.i = len(s.win)
		if err := s.fill(); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// maxQueuedControl bounds the control frames held for delivery while a
// compressed message is inflated; more are answered but not delivered.
const maxQueuedControl = 16

// readCompressed reads the compressed message whose first frame is h,
// inflating as its frames arrive, within ReadLimit.
func (c *Conn) readCompressed(h frameHeader) (Message, error) {
	c.inMsg, c.msgOp = true, h.op
	c.utf = utf8Checker{}
	s := &c.src
	s.start(h)
	fr := flateReaderPool.Get().(io.ReadCloser)
	_ = fr.(flate.Resetter).Reset(s, nil)
	limit := c.readLimit
	// A first guess from the header, bounded like eagerAlloc: without a
	// ReadLimit, a header alone must not allocate what never comes.
	size := max(2*min(h.length, eagerAlloc/2), 512)
	if limit > 0 {
		size = min(size, limit+1)
	}
	buf := make([]byte, 0, size)
	var err error
	for {
		if len(buf) == cap(buf) {
			size := 2 * int64(cap(buf))
			if limit > 0 {
				size = min(size, limit+1)
			}
			nb := make([]byte, len(buf), size)
			copy(nb, buf)
			buf = nb
		}
		var n int
		n, err = fr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if limit > 0 && int64(len(buf)) > limit {
			err = c.protocolError(CloseMessageTooBig, "message too big", errTooBig(limit))
			break
		}
		if h.op == OpText && n > 0 && !c.utf.check(buf) {
			err = c.protocolError(CloseInvalidPayload, "invalid UTF-8", errBadUTF8)
			break
		}
		if err == io.EOF {
			err = nil
			if h.op == OpText && !c.utf.complete(buf) {
				err = c.protocolError(CloseInvalidPayload, "invalid UTF-8", errBadUTF8)
			}
			break
		}
		if err != nil {
			if s.err != nil {
				err = s.err
			} else {
				err = c.protocolError(CloseInvalidPayload, "invalid compressed data", err)
			}
			break
		}
	}
	flateReaderPool.Put(fr)
	if err == nil {
		err = s.drain()
	}
	if s.peeked { // after an error: what was peeked is not read again
		c.br.Discard(len(s.win))
	}
	s.win, s.peeked = nil, false
	c.inMsg = false
	if err != nil {
		return Message{}, err
	}
	m := Message{Op: h.op, Data: buf}
	if len(c.ctlq) > 0 { // control frames that came first are delivered first
		c.ctlq = append(c.ctlq, m)
		m = c.popControl()
	}
	return m, nil
}
