package transport

import "unicode/utf8"

// utf8Checker validates a text message while its bytes arrive. It checks what has
// come so far, holds back an incomplete sequence at the end for the next chunk, and
// rejects at once a sequence that no later byte can make valid, so that a bad
// message fails on its first bad fragment, not after the last.
type utf8Checker struct {
	pos int // p[:pos] is known to be valid and to end on a rune boundary
}

// check validates p[c.pos:] and reports whether p can still be a prefix of valid UTF-8.
func (c *utf8Checker) check(p []byte) bool {
	end := len(p)
	for k := 1; k <= utf8.UTFMax-1 && end-k >= c.pos; k++ {
		b := p[end-k]
		if b < utf8.RuneSelf {
			break
		}
		if b >= 0xC0 { // the leading byte of the last sequence
			if seqLen(b) > k {
				end -= k
			}
			break
		}
	}
	if !utf8.Valid(p[c.pos:end]) {
		return false
	}
	if end < len(p) && !validPrefix(p[end:]) {
		return false
	}
	c.pos = end
	return true
}

// complete reports whether the whole message p ends on a rune boundary.
func (c *utf8Checker) complete(p []byte) bool { return c.pos == len(p) }

func seqLen(b byte) int {
	switch {
	case b >= 0xF0:
		return 4
	case b >= 0xE0:
		return 3
	case b >= 0xC0:
		return 2
	}
	return 1
}

// validPrefix reports whether the incomplete sequence p (1 to 3 bytes) can begin
// a valid encoding (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
func validPrefix(p []byte) bool {
	b0 := p[0]
	if b0 < 0xC2 || b0 > 0xF4 {
		return false
	}
	if len(p) == 1 {
		return true
	}
	lo, hi := byte(0x80), byte(0xBF)
	switch b0 {
	case 0xE0:
		lo = 0xA0
	case 0xED:
		hi = 0x9F
	case 0xF0:
		lo = 0x90
	case 0xF4:
		hi = 0x8F
	}
	if p[1] < lo || p[1] > hi {
		return false
	}
	return len(p) == 2 || (p[2] >= 0x80 && p[2] <= 0xBF)
}
