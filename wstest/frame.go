package wstest

import (
	"encoding/binary"
	"net"
	"sync/atomic"
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
// a text frame that is not UTF-8, a close frame with a bad code. The
// payload length is encoded in its shortest form.
type Frame struct {
	Op  byte // the opcode, 0-15
	Fin bool
	// Rsv holds the RSV1, RSV2 and RSV3 bits as 4, 2 and 1.
	Rsv byte
	// Masked masks the payload with MaskKey (a server must not).
	Masked  bool
	MaskKey [4]byte
	Payload []byte
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
	n := len(f.Payload)
	switch {
	case n <= 125:
		b = append(b, b0, b1|byte(n))
	case n <= 0xffff:
		b = binary.BigEndian.AppendUint16(append(b, b0, b1|126), uint16(n))
	default:
		b = binary.BigEndian.AppendUint64(append(b, b0, b1|127), uint64(n))
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

// filterConn is the socket under the server's transport.Conn. Every write of
// the transport's own is one or more whole frames (its frame writer writes a
// frame per call, its control writer whole control frames), so it can count
// the pongs and drop them (SetAnswerPings(false)); a raw write is recognised
// by its buffer and passes untouched. A silent connection's writes are
// swallowed.
type filterConn struct {
	net.Conn
	silent    atomic.Bool
	dropPongs atomic.Bool
	raw       atomic.Pointer[byte] // first byte of the raw write in progress
	pongs     atomic.Int64         // pongs written
}

func (f *filterConn) Write(p []byte) (int, error) {
	if f.silent.Load() {
		return len(p), nil
	}
	if len(p) == 0 || f.raw.Load() == &p[0] {
		return f.Conn.Write(p)
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
