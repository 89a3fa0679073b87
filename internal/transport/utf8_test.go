package transport

import (
	"bytes"
	"math/rand"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ff42ae21/wsclient/internal/utf8cases"
)

// feed runs a checker over x cut at the given ends (increasing, the last one
// len(x)), the way readMessage does: check on the whole prefix after every
// read. It returns how many bytes had arrived when check failed (or -1), and
// whether complete accepted the whole.
func feed(x []byte, ends []int) (failedAt int, complete bool) {
	var c utf8Checker
	for _, e := range ends {
		if !c.check(x[:e]) {
			return e, false
		}
	}
	return -1, c.complete(x)
}

func TestUTF8CheckerTable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		chunks   []string
		failedAt int // bytes received when the checker fails; -1: never
		valid    bool
	}{
		{"empty", []string{""}, -1, true},
		{"ascii", []string{"hello"}, -1, true},
		{"two-byte split", []string{"\xc3", "\xa9"}, -1, true},
		{"three-byte split 1+2", []string{"\xe2", "\x82\xac"}, -1, true},
		{"three-byte split 2+1", []string{"\xe2\x82", "\xac"}, -1, true},
		{"four-byte in single bytes", []string{"\xf0", "\x9f", "\x98", "\x80"}, -1, true},
		{"max code point split", []string{"a\xf4\x8f", "\xbf\xbf"}, -1, true},
		{"last before surrogates split", []string{"\xed\x9f", "\xbf"}, -1, true},
		{"κόσμε split everywhere", []string{"\xce", "\xba\xe1", "\xbd", "\xb9\xcf\x83\xce", "\xbc\xce\xb5"}, -1, true},
		{"empty chunks between", []string{"\xe2", "", "\x82", "", "\xac"}, -1, true},
		{"incomplete at the end", []string{"ab\xe2\x82"}, -1, false},
		{"lone lead at the end", []string{"ab", "\xf0"}, -1, false},
		{"lone continuation", []string{"ab", "\x80"}, 3, false},
		{"C0 fails at once", []string{"a\xc0"}, 2, false},
		{"C1 fails at once", []string{"\xc1"}, 1, false},
		{"F5 fails at once", []string{"x", "\xf5"}, 2, false},
		{"FF fails at once", []string{"\xff"}, 1, false},
		{"overlong E0 80 fails at the second byte", []string{"\xe0", "\x80", "\x80"}, 2, false},
		{"surrogate ED A0 fails at the second byte", []string{"\xed", "\xa0", "\x80"}, 2, false},
		{"above U+10FFFF F4 90 fails at the second byte", []string{"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4", "\x90\x80\x80", "edited"}, 15, false},
		{"overlong F0 8F fails at the second byte", []string{"\xf0\x8f", "\xbf\xbf"}, 2, false},
		{"sequence cut by ASCII", []string{"\xe2\x82", "a"}, 3, false},
		{"new lead inside a sequence", []string{"\xe2", "\xe2"}, 2, false},
		{"bad byte in a later valid chunk", []string{"ok", "ok\x80ok"}, 7, false},
		{"valid then invalid in one read", []string{"\xc3\xa9\xc3\x28"}, 4, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := []byte(strings.Join(tc.chunks, ""))
			var ends []int
			n := 0
			for _, c := range tc.chunks {
				n += len(c)
				ends = append(ends, n)
			}
			failedAt, complete := feed(x, ends)
			if failedAt != tc.failedAt {
				t.Errorf("failed after %d bytes, want %d", failedAt, tc.failedAt)
			}
			if failedAt < 0 && complete != tc.valid {
				t.Errorf("complete = %v, want %v", complete, tc.valid)
			}
			if tc.valid != utf8.Valid(x) {
				t.Fatalf("bad case: utf8.Valid = %v", utf8.Valid(x))
			}
		})
	}
}

// checkChunkings checks the checker on x cut at each of the chunkings against
// utf8.Valid: it must fail exactly at the first read after which x's prefix can
// no longer become valid UTF-8 (fail fast, and never early), and otherwise
// accept x iff it is valid.
func checkChunkings(t *testing.T, x []byte, chunkings ...[]int) {
	t.Helper()
	bad, impossible := impossibleAt(x)
	for _, ends := range chunkings {
		want := -1
		for _, e := range ends {
			if impossible && e >= bad {
				want = e
				break
			}
		}
		failedAt, complete := feed(x, ends)
		if failedAt != want {
			t.Fatalf("%q cut at %v: failed after %d bytes, want %d", x, ends, failedAt, want)
		}
		if failedAt < 0 && complete != utf8.Valid(x) {
			t.Fatalf("%q cut at %v: complete = %v, utf8.Valid = %v", x, ends, complete, utf8.Valid(x))
		}
	}
}

// randomChunking cuts n bytes at random places; byteWise cuts every byte.
func randomChunking(r *rand.Rand, n int) []int {
	var ends []int
	for e := 0; e < n; {
		e += r.Intn(min(n-e, 6)) + 1
		ends = append(ends, e)
	}
	if n == 0 {
		ends = []int{0}
	}
	return ends
}

func byteWise(n int) []int {
	ends := []int{0}
	for e := 1; e <= n; e++ {
		ends = append(ends, e)
	}
	return ends
}

// edgeBytes are the byte values where RFC 3629's rules change.
var edgeBytes = []byte{0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf,
	0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xf7, 0xf8, 0xfe, 0xff}

// randomText is valid UTF-8 (runes from all lengths and edges) with, when
// broken is set, bytes and cut sequences that may make it invalid.
func randomText(r *rand.Rand, broken bool) []byte {
	runes := []rune{0, 'a', 0x7f, 0x80, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xfffd, 0xffff, 0x10000, 0x10ffff}
	var b []byte
	for n := r.Intn(12); n > 0; n-- {
		switch k := r.Intn(10); {
		case broken && k < 2:
			b = append(b, edgeBytes[r.Intn(len(edgeBytes))])
		case broken && k < 3: // a sequence cut short
			enc := utf8.AppendRune(nil, runes[r.Intn(len(runes))])
			b = append(b, enc[:r.Intn(len(enc))+1]...)
		case k < 6:
			b = utf8.AppendRune(b, runes[r.Intn(len(runes))])
		default:
			b = utf8.AppendRune(b, rune(r.Intn(0x110000)))
		}
	}
	return b
}

func TestUTF8CheckerAgainstUTF8Valid(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewSource(1))
	n := 5000
	if testing.Short() {
		n = 500
	}
	t.Run("random", func(t *testing.T) {
		t.Parallel()
		for i := 0; i < n; i++ {
			x := randomText(r, i%3 != 0) // a third valid
			checkChunkings(t, x, byteWise(len(x)), randomChunking(r, len(x)), []int{len(x)})
		}
	})
	// Every sequence of up to three edge bytes, after a valid prefix, byte by byte.
	t.Run("edges", func(t *testing.T) {
		t.Parallel()
		for _, a := range edgeBytes {
			for _, b := range edgeBytes {
				for _, c := range edgeBytes {
					x := []byte{'o', 'k', a, b, c}
					checkChunkings(t, x, byteWise(len(x)), []int{len(x)})
				}
			}
		}
	})
}

// FuzzUTF8Checker: the checker and utf8.Valid agree on every input and
// chunking, and the checker fails on the first impossible prefix.
func FuzzUTF8Checker(f *testing.F) {
	for _, s := range append(append([]string{}, utf8cases.Valid...), utf8cases.Invalid...) {
		f.Add([]byte(s), uint8(1))
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, x []byte, step uint8) {
		if len(x) > 1024 {
			return
		}
		var ends []int
		for e := 0; e < len(x); {
			e = min(e+int(step%8)+1, len(x))
			ends = append(ends, e)
		}
		if len(x) == 0 {
			ends = []int{0}
		}
		checkChunkings(t, x, ends, byteWise(len(x)))
	})
}

// impossibleAt is the length of the shortest prefix of p that no bytes can
// complete to valid UTF-8 (impossible), or len(p) when there is none (p is
// valid, or only cut short at its end). It asks utf8.Valid, not the client's
// checker.
func impossibleAt(p []byte) (n int, impossible bool) {
	for i := 1; i <= len(p); i++ {
		if !canComplete(p[:i]) {
			return i, true
		}
	}
	return len(p), false
}

// canComplete reports whether some 0 to 3 continuation bytes make p valid
// UTF-8. One byte of each range that RFC 3629 tells apart is enough. The
// candidates are written in place after one copy of p (an append for each
// allocated, which took half of TestUTF8CheckerAgainstUTF8Valid's time under
// -race).
func canComplete(p []byte) bool {
	if utf8.Valid(p) {
		return true
	}
	var buf [64]byte
	q := append(append(buf[:0], p...), 0, 0, 0)
	n := len(p)
	conts := [...]byte{0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf}
	for _, a := range conts {
		q[n] = a
		if utf8.Valid(q[:n+1]) {
			return true
		}
		for _, b := range conts {
			q[n+1] = b
			if utf8.Valid(q[:n+2]) {
				return true
			}
			for _, c := range conts {
				q[n+2] = c
				if utf8.Valid(q[:n+3]) {
					return true
				}
			}
		}
	}
	return false
}

// BenchmarkUTF8Checker: the incremental check of a 16 KiB text message arriving
// in 4 KiB reads (sequences cut across reads), against utf8.Valid on the whole.
func BenchmarkUTF8Checker(b *testing.B) {
	inputs := []struct {
		name string
		data []byte
	}{
		{"ascii", bytes.Repeat([]byte("a"), 16<<10)},
		{"mixed", []byte(strings.Repeat("héllo wörld, привет мир, 你好世界 😀 ", 16<<10/30)[:16<<10])},
	}
	for _, in := range inputs {
		data := in.data
		for !utf8.Valid(data) { // cut at a rune boundary
			data = data[:len(data)-1]
		}
		b.Run(in.name+"/checker", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				var v utf8Checker
				for end := 4 << 10; ; end += 4 << 10 {
					end = min(end, len(data))
					if !v.check(data[:end]) {
						b.Fatal("invalid")
					}
					if end == len(data) {
						break
					}
				}
				if !v.complete(data) {
					b.Fatal("incomplete")
				}
			}
		})
		b.Run(in.name+"/utf8.Valid", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				if !utf8.Valid(data) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
