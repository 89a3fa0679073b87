package wstest

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// Opcodes of RFC 6455 section 5.2, for Frame.
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// Frame is one frame exactly as Conn.SendFrame writes it, for frames a
// client must refuse: a reserved opcode (3-7, 0xB-0xF), RSV bits without an
// extension, a masked server frame, a fragmented or oversized control frame,
// a text frame that is not UTF-8, a close frame with a bad code, a length
// in a form it should not have (LengthBits) or a false one (WithLength).
// Conn.Frames returns the client's frames as Frames too.
type Frame struct {
	Op  byte // the opcode, 0-15
	Fin bool
	// Rsv holds the RSV1, RSV2 and RSV3 bits as 4, 2 and 1.
	Rsv byte
	// Masked masks the payload with MaskKey (a server must not).
	Masked  bool
	MaskKey [4]byte
	Payload []byte
	// LengthBits is the form of the payload length in the header: 7 (in
	// the second byte), 16 (126, then 16 bits) or 64 (127, then 64 bits);
	// 0 is the shortest form, which RFC 6455 asks of senders; any other
	// value means 64. A length that does not fit the form is
	// cut to its low bits; with 7, a length of 126 or 127 announces an
	// extended length that is not there. In Conn.Frames it is the form the
	// client used.
	LengthBits int

	length    uint64 // the declared payload length, with hasLength
	hasLength bool
}

// WithLength returns a copy of f whose header declares a payload of n
// bytes, whatever len(f.Payload) is: a frame that promises more than it
// brings (the client must wait for the rest, or refuse a 4 GiB message at
// once), or a 64-bit length with its most significant bit set.
func (f Frame) WithLength(n uint64) Frame {
	f.length, f.hasLength = n, true
	return f
}

// CloseFrame is a close frame with any code (999, 1005, 5000 too) and
// reason, for SendFrame.
func CloseFrame(code int, reason string) Frame {
	p := binary.BigEndian.AppendUint16(nil, uint16(code))
	return Frame{Op: OpClose, Fin: true, Payload: append(p, reason...)}
}

// Bytes is the frame's wire encoding.
func (f Frame) Bytes() []byte { return f.AppendTo(nil) }

// AppendTo appends the frame's wire encoding to b.
func (f Frame) AppendTo(b []byte) []byte {
	b0 := f.Op&0x0f | (f.Rsv&0x7)<<4
	if f.Fin {
		b0 |= 0x80
	}
	var b1 byte
	if f.Masked {
		b1 = 0x80
	}
	n := uint64(len(f.Payload))
	if f.hasLength {
		n = f.length
	}
	bits := f.LengthBits
	if bits == 0 {
		switch {
		case n <= 125:
			bits = 7
		case n <= 0xffff:
			bits = 16
		default:
			bits = 64
		}
	}
	switch bits {
	case 7:
		b = append(b, b0, b1|byte(n&0x7f))
	case 16:
		b = binary.BigEndian.AppendUint16(append(b, b0, b1|126), uint16(n))
	default:
		b = binary.BigEndian.AppendUint64(append(b, b0, b1|127), n)
	}
	if !f.Masked {
		return append(b, f.Payload...)
	}
	b = append(b, f.MaskKey[:]...)
	for i, c := range f.Payload {
		b = append(b, c^f.MaskKey[i%4])
	}
	return b
}

// String describes f briefly (the first 32 bytes of its payload), for
// test failures.
func (f Frame) String() string {
	p, more := f.Payload, ""
	if len(p) > 32 {
		p, more = p[:32], "..."
	}
	s := fmt.Sprintf("{op %#x fin %t rsv %d masked %t len %d", f.Op, f.Fin, f.Rsv, f.Masked, len(f.Payload))
	if f.hasLength {
		s += fmt.Sprintf(" (declared %d)", f.length)
	}
	return s + fmt.Sprintf(" %q%s}", p, more)
}

// filterConn is the socket under the server's transport.Conn. Every write of
// the transport's own is one or more whole frames (its frame writer writes a
// frame per call, its control writer whole control frames), so it can count
// the pongs and drop them (SetAnswerPings(false)); a raw write is recognised
// by its buffer and passes untouched (in slices, for WriteSliced). A silent
// connection's writes are swallowed, and so are those after CloseWrite.
//
// With hold (AwaitClientClose), Close does not close the socket: it only
// wakes the reader, which reads on until the client closes its end and then
// closes the socket itself (Conn.linger).
type filterConn struct {
	net.Conn
	silent    atomic.Bool
	shut      atomic.Bool // CloseWrite was called
	hold      atomic.Bool
	dropPongs atomic.Bool
	raw       atomic.Pointer[rawWrite] // the raw write in progress
	pongs     atomic.Int64             // pongs written
}

// rawWrite is a raw write in progress: its first byte, and the slices it
// goes out in (size 0: one write).
type rawWrite struct {
	first *byte
	size  int
	gap   time.Duration
}

// Close closes the socket, or with hold wakes the reader.
func (f *filterConn) Close() error {
	if f.hold.Load() {
		return f.Conn.SetReadDeadline(time.Unix(1, 0))
	}
	return f.Conn.Close()
}

func (f *filterConn) Write(p []byte) (int, error) {
	if f.silent.Load() || f.shut.Load() {
		return len(p), nil
	}
	if len(p) == 0 {
		return f.Conn.Write(p)
	}
	if rw := f.raw.Load(); rw != nil && rw.first == &p[0] {
		return f.writeSliced(p, rw)
	}
	drop := f.dropPongs.Load()
	var kept []byte
	for i := 0; i < len(p); {
		n, ok := frameLen(p[i:])
		if !ok { // not whole frames after all: leave it alone
			kept = nil
			drop = false
			break
		}
		if p[i]&0x0f == OpPong {
			if drop {
				if kept == nil {
					kept = append(make([]byte, 0, len(p)), p[:i]...)
				}
				i += n
				continue
			}
			f.pongs.Add(1)
		}
		if kept != nil {
			kept = append(kept, p[i:i+n]...)
		}
		i += n
	}
	if kept == nil { // nothing dropped
		return f.Conn.Write(p)
	}
	if len(kept) > 0 {
		if _, err := f.Conn.Write(kept); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// writeSliced writes a raw write in rw.size pieces, rw.gap apart.
func (f *filterConn) writeSliced(p []byte, rw *rawWrite) (int, error) {
	if rw.size <= 0 {
		return f.Conn.Write(p)
	}
	n := 0
	for n < len(p) {
		if n > 0 && rw.gap > 0 {
			time.Sleep(rw.gap)
		}
		k, err := f.Conn.Write(p[n:min(n+rw.size, len(p))])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// frameLen is the length of the whole frame at the start of b.
func frameLen(b []byte) (int, bool) {
	if len(b) < 2 {
		return 0, false
	}
	h, n := 2, uint64(b[1]&0x7f)
	switch n {
	case 126:
		if len(b) < 4 {
			return 0, false
		}
		h, n = 4, uint64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		if len(b) < 10 {
			return 0, false
		}
		h, n = 10, binary.BigEndian.Uint64(b[2:])
	}
	if b[1]&0x80 != 0 {
		h += 4
	}
	if len(b) < h || n > uint64(len(b)-h) {
		return 0, false
	}
	return h + int(n), true
}

// tap is the transport's read source: it passes the client's bytes on as
// they are and parses them into frames for Conn.Frames, up to the close
// frame; what comes after the close frame is kept apart (Conn.AfterClose).
// Only the connection's reader goroutine uses it.
type tap struct {
	c      *Conn
	r      io.Reader // the handshake's reader, which may hold early bytes
	hdr    [14]byte
	nh     int // header bytes so far
	body   bool
	left   uint64 // payload bytes still to come, with body
	cur    Frame
	closed bool // the close frame went by
}

func (t *tap) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.feed(p[:n])
	}
	if err != nil {
		t.c.s.update(func() { t.c.readErr = err })
	}
	return n, err
}

func (t *tap) feed(b []byte) {
	for len(b) > 0 {
		switch {
		case t.closed:
			t.c.s.update(func() { t.c.after = append(t.c.after, b...) })
			return
		case t.body:
			k := int(min(uint64(len(b)), t.left))
			start := len(t.cur.Payload)
			t.cur.Payload = append(t.cur.Payload, b[:k]...)
			if t.cur.Masked {
				for i := start; i < len(t.cur.Payload); i++ {
					t.cur.Payload[i] ^= t.cur.MaskKey[i%4]
				}
			}
			t.left -= uint64(k)
			b = b[k:]
			if t.left == 0 {
				t.finish()
			}
		default:
			t.hdr[t.nh] = b[0]
			t.nh++
			b = b[1:]
			if t.header() {
				if t.left == 0 {
					t.finish()
				} else {
					t.body = true
				}
			}
		}
	}
}

// header parses the frame header once it is whole.
func (t *tap) header() bool {
	if t.nh < 2 {
		return false
	}
	h := t.hdr[:t.nh]
	need, bits := 2, 7
	switch h[1] & 0x7f {
	case 126:
		need, bits = 4, 16
	case 127:
		need, bits = 10, 64
	}
	masked := h[1]&0x80 != 0
	if masked {
		need += 4
	}
	if t.nh < need {
		return false
	}
	f := Frame{Op: h[0] & 0x0f, Fin: h[0]&0x80 != 0, Rsv: h[0] >> 4 & 0x7, Masked: masked, LengthBits: bits}
	switch bits {
	case 7:
		t.left = uint64(h[1] & 0x7f)
	case 16:
		t.left = uint64(binary.BigEndian.Uint16(h[2:]))
	default:
		t.left = binary.BigEndian.Uint64(h[2:])
	}
	if masked {
		copy(f.MaskKey[:], h[need-4:need])
	}
	t.cur = f
	return true
}

// flush records a frame cut short, with what came of its payload, when
// the connection ends in its middle.
func (t *tap) flush() {
	if t.body {
		t.finish()
	}
}

// finish records the frame in progress.
func (t *tap) finish() {
	f := t.cur
	t.cur, t.nh, t.body = Frame{}, 0, false
	t.closed = f.Op == OpClose
	t.c.s.update(func() {
		if t.c.s.opts.Forget {
			t.c.frames = t.c.frames[:0] // the last one only: end reads it
		}
		t.c.frames = append(t.c.frames, f)
	})
}
