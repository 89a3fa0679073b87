package rawws

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame opcodes (RFC 6455 section 5.2).
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// MaxPayload is the largest payload DecodeFrame accepts, to keep a broken
// client from making a test allocate unbounded memory.
const MaxPayload = 64 << 20

// LengthForm selects how the payload length is encoded.
type LengthForm uint8

const (
	// LenMinimal uses the shortest valid encoding (the RFC requirement).
	LenMinimal LengthForm = iota
	// Len7 puts the length (low 7 bits only) in the second header byte.
	Len7
	// Len16 writes 126 followed by a 16-bit length (truncated if larger).
	Len16
	// Len64 writes 127 followed by a 64-bit length, even for small payloads.
	Len64
)

// Frame is one WebSocket frame. The zero value is a non-final continuation
// frame with an empty payload; use the helpers (Text, Binary, ...) for the
// common cases. Opcode is masked to 4 bits when encoding, so reserved
// opcodes (3-7, 0xB-0xF) can be sent.
type Frame struct {
	Fin              bool
	Rsv1, Rsv2, Rsv3 bool
	Opcode           byte

	// Masked frames carry MaskKey and have their payload masked by Encode.
	// Server frames must not be masked; set it to test that clients reject
	// them. For frames read from the client, Payload is already unmasked.
	Masked  bool
	MaskKey [4]byte

	Payload []byte

	// LengthForm forces a length encoding; for frames read from the client
	// it records the encoding that was used.
	LengthForm LengthForm
	// LengthOverride, if non-nil, is written as the declared payload length
	// instead of len(Payload) (see WithLength). Never set by DecodeFrame.
	LengthOverride *uint64
}

// Text returns a final, unmasked text frame.
func Text(s string) Frame { return Frame{Fin: true, Opcode: OpText, Payload: []byte(s)} }

// Binary returns a final, unmasked binary frame.
func Binary(b []byte) Frame { return Frame{Fin: true, Opcode: OpBinary, Payload: b} }

// Ping returns a ping frame.
func Ping(p []byte) Frame { return Frame{Fin: true, Opcode: OpPing, Payload: p} }

// Pong returns a pong frame.
func Pong(p []byte) Frame { return Frame{Fin: true, Opcode: OpPong, Payload: p} }

// Fragment returns one fragment of a message: op is OpText/OpBinary for the
// first fragment and OpContinuation for the rest; fin marks the last one.
func Fragment(op byte, fin bool, p []byte) Frame { return Frame{Fin: fin, Opcode: op, Payload: p} }

// CloseFrame returns a close frame whose payload is code as a big-endian
// uint16 followed by reason. Any code (also invalid ones such as 999, 1005
// or 5000) is encoded as given; use CloseFrameRaw for an empty or odd payload.
func CloseFrame(code int, reason string) Frame {
	p := binary.BigEndian.AppendUint16(nil, uint16(code))
	return CloseFrameRaw(append(p, reason...))
}

// CloseFrameRaw returns a close frame with an arbitrary payload.
func CloseFrameRaw(payload []byte) Frame { return Frame{Fin: true, Opcode: OpClose, Payload: payload} }

// WithLength returns a copy of f that declares payload length n regardless
// of len(Payload).
func (f Frame) WithLength(n uint64) Frame {
	f.LengthOverride = &n
	return f
}

// Encode returns the exact wire bytes of f.
func (f Frame) Encode() []byte {
	b0 := f.Opcode & 0x0F
	for i, set := range [...]bool{f.Fin, f.Rsv1, f.Rsv2, f.Rsv3} {
		if set {
			b0 |= 0x80 >> i
		}
	}
	n := uint64(len(f.Payload))
	if f.LengthOverride != nil {
		n = *f.LengthOverride
	}
	form := f.LengthForm
	if form == LenMinimal || form > Len64 {
		switch {
		case n <= 125:
			form = Len7
		case n <= 0xFFFF:
			form = Len16
		default:
			form = Len64
		}
	}
	var b1 byte
	if f.Masked {
		b1 = 0x80
	}
	out := make([]byte, 0, 14+len(f.Payload))
	switch form {
	case Len7:
		out = append(out, b0, b1|byte(n&0x7F))
	case Len16:
		out = binary.BigEndian.AppendUint16(append(out, b0, b1|126), uint16(n))
	default:
		out = binary.BigEndian.AppendUint64(append(out, b0, b1|127), n)
	}
	if !f.Masked {
		return append(out, f.Payload...)
	}
	out = append(out, f.MaskKey[:]...)
	for i, c := range f.Payload {
		out = append(out, c^f.MaskKey[i%4])
	}
	return out
}

// String describes f for test failure messages.
func (f Frame) String() string {
	p := f.Payload
	suffix := ""
	if len(p) > 32 {
		p, suffix = p[:32], "..."
	}
	return fmt.Sprintf("Frame{fin=%t rsv=%t/%t/%t op=%#x masked=%t len=%d payload=%q%s}",
		f.Fin, f.Rsv1, f.Rsv2, f.Rsv3, f.Opcode, f.Masked, len(f.Payload), p, suffix)
}

// DecodeFrame parses one frame from r, unmasking a masked payload. It fails on
// a 64-bit length with the most significant bit set or above MaxPayload. A
// clean end of stream before the first byte gives io.EOF, a truncated frame
// io.ErrUnexpectedEOF.
func DecodeFrame(r io.Reader) (Frame, error) {
	var f Frame
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:2]); err != nil {
		return f, err
	}
	f.Fin = hdr[0]&0x80 != 0
	f.Rsv1 = hdr[0]&0x40 != 0
	f.Rsv2 = hdr[0]&0x20 != 0
	f.Rsv3 = hdr[0]&0x10 != 0
	f.Opcode = hdr[0] & 0x0F
	f.Masked = hdr[1]&0x80 != 0

	n := uint64(hdr[1] & 0x7F)
	switch n {
	case 126:
		f.LengthForm = Len16
		if _, err := io.ReadFull(r, hdr[:2]); err != nil {
			return f, unexpected(err)
		}
		n = uint64(binary.BigEndian.Uint16(hdr[:2]))
	case 127:
		f.LengthForm = Len64
		if _, err := io.ReadFull(r, hdr[:8]); err != nil {
			return f, unexpected(err)
		}
		n = binary.BigEndian.Uint64(hdr[:8])
		if n>>63 != 0 {
			return f, errors.New("rawws: 64-bit payload length has its most significant bit set")
		}
	default:
		f.LengthForm = Len7
	}
	if n > MaxPayload {
		return f, fmt.Errorf("rawws: payload length %d exceeds MaxPayload", n)
	}
	if f.Masked {
		if _, err := io.ReadFull(r, f.MaskKey[:]); err != nil {
			return f, unexpected(err)
		}
	}
	f.Payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		return f, unexpected(err)
	}
	if f.Masked {
		for i := range f.Payload {
			f.Payload[i] ^= f.MaskKey[i%4]
		}
	}
	return f, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ParseClose decodes a close frame payload: an empty payload gives 1005
// (no status received) and "", a 1-byte payload (malformed) gives -1.
// The reason is returned as is (not checked for valid UTF-8).
func ParseClose(payload []byte) (code int, reason string) {
	switch len(payload) {
	case 0:
		return 1005, ""
	case 1:
		return -1, ""
	}
	return int(binary.BigEndian.Uint16(payload)), string(payload[2:])
}
