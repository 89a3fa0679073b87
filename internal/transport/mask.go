package transport

import "encoding/binary"

// The masking of RFC 6455 5.3: byte i of a payload is XORed with byte i%4 of
// the key. Both functions work a 64-bit word at a time (the key repeated
// twice), 32 bytes per round on long payloads.

// maskWord is key (as it appears on the wire) repeated into a little-endian
// word, rotated so that its first byte applies to payload position pos.
func maskWord(key [4]byte, pos int) uint64 {
	k := uint64(binary.LittleEndian.Uint32(key[:]))
	k |= k << 32
	if r := uint(pos&3) * 8; r != 0 {
		k = k>>r | k<<(64-r)
	}
	return k
}

// maskBytes masks (or unmasks) b in place; b starts at payload position pos.
// It returns the position after b.
func maskBytes(key [4]byte, pos int, b []byte) int {
	k := maskWord(key, pos)
	i := 0
	for ; len(b)-i >= 32; i += 32 {
		q := b[i : i+32 : i+32]
		binary.LittleEndian.PutUint64(q[0:], binary.LittleEndian.Uint64(q[0:])^k)
		binary.LittleEndian.PutUint64(q[8:], binary.LittleEndian.Uint64(q[8:])^k)
		binary.LittleEndian.PutUint64(q[16:], binary.LittleEndian.Uint64(q[16:])^k)
		binary.LittleEndian.PutUint64(q[24:], binary.LittleEndian.Uint64(q[24:])^k)
	}
	for ; len(b)-i >= 8; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k)
	}
	for ; i < len(b); i++ {
		b[i] ^= byte(k)
		k = k>>8 | k<<56
	}
	return pos + len(b)
}

// maskCopy writes src masked with key (from payload position 0) to dst, which
// is at least as long as src. src is not modified.
func maskCopy(dst, src []byte, key [4]byte) {
	k := maskWord(key, 0)
	dst = dst[:len(src)]
	i := 0
	for ; len(src)-i >= 32; i += 32 {
		s := src[i : i+32 : i+32]
		d := dst[i : i+32 : i+32]
		binary.LittleEndian.PutUint64(d[0:], binary.LittleEndian.Uint64(s[0:])^k)
		binary.LittleEndian.PutUint64(d[8:], binary.LittleEndian.Uint64(s[8:])^k)
		binary.LittleEndian.PutUint64(d[16:], binary.LittleEndian.Uint64(s[16:])^k)
		binary.LittleEndian.PutUint64(d[24:], binary.LittleEndian.Uint64(s[24:])^k)
	}
	for ; len(src)-i >= 8; i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(src[i:])^k)
	}
	for ; i < len(src); i++ {
		dst[i] = src[i] ^ byte(k)
		k = k>>8 | k<<56
	}
}
