package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"
)

const (
	fin  = 0x80
	rsv1 = 0x40
	rsv2 = 0x20
	rsv3 = 0x10
)

// Every protocol violation fails the connection with the right code: the
// reader's error is a local *CloseError and the peer gets that close frame.
func TestReadViolations(t *testing.T) {
	t.Parallel()
	long := make([]byte, 126)
	hugeLen := append([]byte{fin | byte(OpBinary), 127}, binary.BigEndian.AppendUint64(nil, 1<<63|5)...)
	cases := []struct {
		name   string
		o      ConnOptions
		script [][]byte
		code   int
	}{
		{"RSV2", ConnOptions{}, [][]byte{ctFrame(fin|rsv2|byte(OpText), false, []byte("x"))}, 1002},
		{"RSV3", ConnOptions{}, [][]byte{ctFrame(fin|rsv3|byte(OpBinary), false, []byte("x"))}, 1002},
		{"RSV1 without compression", ConnOptions{}, [][]byte{ctFrame(fin|rsv1|byte(OpText), false, []byte("x"))}, 1002},
		{"RSV1 on a continuation", ConnOptions{Compression: true}, [][]byte{
			ctFrame(rsv1|byte(OpText), false, ctDeflate(t, []byte("hello"))),
			ctFrame(fin|rsv1|byte(OpContinuation), false, nil)}, 1002},
		{"RSV1 on a control frame", ConnOptions{Compression: true}, [][]byte{ctFrame(fin|rsv1|byte(OpPing), false, nil)}, 1002},
		{"opcode 3", ConnOptions{}, [][]byte{ctFrame(fin|3, false, nil)}, 1002},
		{"opcode 0xB", ConnOptions{}, [][]byte{ctFrame(fin|0xB, false, nil)}, 1002},
		{"fragmented ping", ConnOptions{}, [][]byte{ctFrame(byte(OpPing), false, nil)}, 1002},
		{"126-byte ping", ConnOptions{}, [][]byte{ctFrame(fin|byte(OpPing), false, long)}, 1002},
		{"126-byte close", ConnOptions{}, [][]byte{ctFrame(fin|byte(OpClose), false, long)}, 1002},
		{"continuation without a message", ConnOptions{}, [][]byte{ctFrame(fin|byte(OpContinuation), false, []byte("x"))}, 1002},
		{"data frame inside a fragmented message", ConnOptions{}, [][]byte{
			ctFrame(byte(OpText), false, []byte("a")), ctFrame(fin|byte(OpText), false, []byte("b"))}, 1002},
		{"data frame inside a compressed message", ConnOptions{Compression: true}, [][]byte{
			ctFrame(rsv1|byte(OpText), false, ctDeflate(t, []byte("a"))), ctFrame(fin|byte(OpBinary), false, []byte("b"))}, 1002},
		{"masked frame from the server", ConnOptions{}, [][]byte{ctFrame(fin|byte(OpText), true, []byte("x"))}, 1002},
		{"unmasked frame from the client", ConnOptions{Server: true}, [][]byte{ctFrame(fin|byte(OpText), false, []byte("x"))}, 1002},
		{"64-bit length with the high bit", ConnOptions{}, [][]byte{hugeLen}, 1002},
		{"1-byte close", ConnOptions{}, [][]byte{ctFrame(fin|byte(OpClose), false, []byte{3})}, 1002},
		{"close code 999", ConnOptions{}, [][]byte{ctFrame(fin|byte(OpClose), false, ctClosePayload(999, ""))}, 1002},
		{"close code 1004", ConnOptions{}, [][]byte{ctFrame(fin|byte(OpClose), false, ctClosePayload(1004, ""))}, 1002},
		{"close code 1005", ConnOptions{}, [][]byte{ctFrame(fin|byte(OpClose), false, ctClosePayload(1005, ""))}, 1002},
		{"close code 1006", ConnOptions{}, [][]byte{ctFrame(fin|byte(OpClose), false, ctClosePayload(1006, ""))}, 1002},
		{"close code 1015", ConnOptions{}, [][]byte{ctFrame(fin|byte(OpClose), false, ctClosePayload(1015, ""))}, 1002},
		{"close code 2999", ConnOptions{}, [][]byte{ctFrame(fin|byte(OpClose), false, ctClosePayload(2999, ""))}, 1002},
		{"close code 5000", ConnOptions{}, [][]byte{ctFrame(fin|byte(OpClose), false, ctClosePayload(5000, ""))}, 1002},
		{"text not UTF-8", ConnOptions{}, [][]byte{ctFrame(fin|byte(OpText), false, []byte("ok\xff"))}, 1007},
		{"text cut in a sequence", ConnOptions{}, [][]byte{ctFrame(fin|byte(OpText), false, []byte("ok\xe2\x82"))}, 1007},
		{"fragmented text cut in a sequence", ConnOptions{}, [][]byte{
			ctFrame(byte(OpText), false, []byte("ok\xe2")), ctFrame(fin|byte(OpContinuation), false, []byte("\x82"))}, 1007},
		{"close reason not UTF-8", ConnOptions{}, [][]byte{ctFrame(fin|byte(OpClose), false, ctClosePayload(1000, "a\xffb"))}, 1007},
		{"compressed text not UTF-8", ConnOptions{Compression: true}, [][]byte{
			ctFrame(fin|rsv1|byte(OpText), false, ctDeflate(t, []byte("ok\xff")))}, 1007},
		{"bad deflate data", ConnOptions{Compression: true}, [][]byte{
			ctFrame(fin|rsv1|byte(OpBinary), false, []byte{0xff, 0xff, 0xff, 0xff})}, 1007},
		{"over ReadLimit", ConnOptions{ReadLimit: 10}, [][]byte{ctFrame(fin|byte(OpBinary), false, make([]byte, 11))}, 1009},
		{"fragments over ReadLimit", ConnOptions{ReadLimit: 10}, [][]byte{
			ctFrame(byte(OpBinary), false, make([]byte, 5)), ctFrame(fin|byte(OpContinuation), false, make([]byte, 6))}, 1009},
		{"compressed over ReadLimit", ConnOptions{Compression: true, ReadLimit: 10}, [][]byte{
			ctFrame(fin|rsv1|byte(OpBinary), false, ctDeflate(t, make([]byte, 11)))}, 1009},
		// The header alone: the payload never comes, so the check cannot
		// have waited for it (nor allocated it).
		{"header over ReadLimit", ConnOptions{ReadLimit: 1 << 20}, [][]byte{
			append([]byte{fin | byte(OpBinary), 127}, binary.BigEndian.AppendUint64(nil, 1<<40)...)}, 1009},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, p := ctPipe(t, tc.o, true)
			p.send(tc.script...)
			_, err := readWithin(t, c)
			ce := asClose(t, err)
			if !ce.Local || ce.Code != tc.code || ce.Err == nil || ce.Reason == "" {
				t.Fatalf("got %+v, want a local close with %d, a reason and an Err", ce, tc.code)
			}
			f := p.expectClose(tc.code)
			if string(f.payload[2:]) != ce.Reason {
				t.Errorf("close frame reason %q, error's %q", f.payload[2:], ce.Reason)
			}
			if _, again := c.ReadMessage(); again != err {
				t.Errorf("second ReadMessage: %v, want the same error", again)
			}
			if !c.CloseSent() {
				t.Error("CloseSent false after a protocol failure")
			}
			if err := c.WriteMessage(t.Context(), OpText, []byte("x")); !errors.Is(err, ErrCloseSent) {
				t.Errorf("WriteMessage after the failure: %v, want ErrCloseSent", err)
			}
		})
	}
}

// The peer's close frame: echoed with its code and no reason, reported as a
// remote CloseError; 1014 (registered with IANA) is a valid code.
func TestReadPeerClose(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		payload []byte
		code    int
		reason  string
	}{
		{"1000 with a reason", ctClosePayload(1000, "bye"), 1000, "bye"},
		{"1014", ctClosePayload(1014, "upstream"), 1014, "upstream"},
		{"4999", ctClosePayload(4999, ""), 4999, ""},
		{"empty", nil, 1005, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, p := ctPipe(t, ConnOptions{}, true)
			p.send(ctFrame(fin|byte(OpClose), false, tc.payload))
			_, err := readWithin(t, c)
			ce := asClose(t, err)
			if ce.Local || ce.Code != tc.code || ce.Reason != tc.reason || ce.Err != nil {
				t.Fatalf("got %+v, want remote %d %q", ce, tc.code, tc.reason)
			}
			f := p.next()
			if f.op != OpClose || !f.masked {
				t.Fatalf("echo: %+v", f)
			}
			want := []byte{}
			if tc.payload != nil {
				want = ctClosePayload(tc.code, "")
			}
			if !bytes.Equal(f.payload, want) {
				t.Fatalf("echo payload %x, want %x", f.payload, want)
			}
			if _, again := c.ReadMessage(); again != err {
				t.Error("a later ReadMessage returned another error")
			}
		})
	}
}

// When this side closed first, the peer's close completes the handshake:
// no second close frame.
func TestReadCloseAfterLocalClose(t *testing.T) {
	t.Parallel()
	c, p := ctPipe(t, ConnOptions{}, true)
	go func() { _ = c.Close(1000, "done") }()
	if f := p.expectClose(1000); string(f.payload[2:]) != "done" {
		t.Fatalf("close payload %q", f.payload)
	}
	p.send(ctFrame(fin|byte(OpClose), false, ctClosePayload(1001, "")), ctFrame(fin|byte(OpPing), false, []byte("late")))
	_, err := readWithin(t, c)
	if ce := asClose(t, err); ce.Local || ce.Code != 1001 {
		t.Fatalf("got %+v", ce)
	}
	c.Abort()
	for f := range p.frames {
		t.Fatalf("frame after the close handshake: %+v", f)
	}
}

func TestReadMessages(t *testing.T) {
	t.Parallel()
	c, p := ctPipe(t, ConnOptions{ReadLimit: 10}, true)
	p.send(
		ctFrame(fin|byte(OpText), false, []byte("0123456789")), // exactly the limit
		ctFrame(fin|byte(OpBinary), false, nil),
		ctFrame(byte(OpBinary), false, []byte("01234")),
		ctFrame(byte(OpContinuation), false, nil),
		ctFrame(fin|byte(OpContinuation), false, []byte("56789")), // fragments at the limit
		ctFrame(fin|byte(OpPong), false, []byte("pong")),
		ctFrame(byte(OpText), false, []byte("\xe2")), // a rune split across fragments
		ctFrame(fin|byte(OpContinuation), false, []byte("\x82\xac")),
	)
	want := []Message{
		{OpText, []byte("0123456789")}, {OpBinary, []byte{}}, {OpBinary, []byte("0123456789")},
		{OpPong, []byte("pong")}, {OpText, []byte("€")},
	}
	for i, w := range want {
		m, err := readWithin(t, c)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if m.Op != w.Op || !bytes.Equal(m.Data, w.Data) || m.Data == nil {
			t.Fatalf("message %d: %v %q, want %v %q", i, m.Op, m.Data, w.Op, w.Data)
		}
	}
}

// A ping between two fragments is returned at once (its pong queued), then
// the message, whole.
func TestReadPingInFragmentedMessage(t *testing.T) {
	t.Parallel()
	for _, compressed := range []bool{false, true} {
		name := "plain"
		if compressed {
			name = "compressed"
		}
		t.Run(name, func(t *testing.T) {
			c, p := ctPipe(t, ConnOptions{Compression: compressed}, true)
			first, b0 := []byte("hel"), byte(OpText)
			rest := []byte("lo")
			if compressed {
				d := ctDeflate(t, []byte("hello"))
				first, rest, b0 = d[:2], d[2:], byte(OpText)|rsv1
			}
			p.send(ctFrame(b0, false, first), ctFrame(fin|byte(OpPing), false, []byte("p1")),
				ctFrame(fin|byte(OpPing), false, []byte("p2")), ctFrame(fin|byte(OpContinuation), false, rest))
			for _, w := range []Message{{OpPing, []byte("p1")}, {OpPing, []byte("p2")}, {OpText, []byte("hello")}} {
				m, err := readWithin(t, c)
				if err != nil || m.Op != w.Op || !bytes.Equal(m.Data, w.Data) {
					t.Fatalf("got %v %q %v, want %v %q", m.Op, m.Data, err, w.Op, w.Data)
				}
			}
			for _, want := range []string{"p1", "p2"} {
				if f := p.next(); f.op != OpPong || string(f.payload) != want {
					t.Fatalf("frame %+v, want pong %q", f, want)
				}
			}
		})
	}
}

// A bad sequence in the first fragment fails before the last one comes
// (the script never sends it).
func TestReadBadUTF8FailsOnFirstFragment(t *testing.T) {
	t.Parallel()
	for _, compressed := range []bool{false, true} {
		c, p := ctPipe(t, ConnOptions{Compression: compressed}, true)
		payload, b0 := []byte("ok\xc0"), byte(OpText)
		if compressed {
			// A sender streaming the message flushes its deflater per
			// fragment: the first fragment holds a whole flushed block
			// (with its 00 00 ff ff), which the inflater hands out.
			payload, b0 = append(ctDeflate(t, payload), 0, 0, 0xff, 0xff), b0|rsv1
		}
		p.send(ctFrame(b0, false, payload))
		_, err := readWithin(t, c)
		if ce := asClose(t, err); ce.Code != 1007 || !ce.Local {
			t.Fatalf("compressed %v: %+v", compressed, ce)
		}
		p.expectClose(1007)
	}
}

// A compression bomb (200 MiB of zeros in about 200 KB) fails at ReadLimit,
// and what the reader allocated stays near the limit.
func TestReadCompressionBomb(t *testing.T) {
	// Not parallel: it measures the allocations of the whole process.
	zeros := make([]byte, 1<<20)
	var chunks [][]byte
	var d []byte
	{
		// 1 MiB of zeros deflated and flushed is a run of blocks that refer
		// to nothing before them: repeated 200 times, it inflates to 200 MiB
		// (compressing 200 MiB here took most of the package's test time).
		var buf bytes.Buffer
		w := newTestFlateWriter(&buf)
		_, _ = w.Write(zeros)
		_ = w.Flush()
		d = bytes.Repeat(buf.Bytes(), 200)
		d = d[:len(d)-4]
	}
	if len(d) > 1<<20 {
		t.Fatalf("bomb of %d bytes", len(d))
	}
	for i := 0; i < len(d); i += 64 << 10 {
		b0 := byte(OpContinuation)
		if i == 0 {
			b0 = byte(OpBinary) | rsv1
		}
		end := min(i+64<<10, len(d))
		if end == len(d) {
			b0 |= fin
		}
		chunks = append(chunks, ctFrame(b0, false, d[i:end]))
	}
	const limit = 1 << 20
	c, p := ctPipe(t, ConnOptions{Compression: true, ReadLimit: limit}, true)
	p.send(chunks...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := c.ReadMessage()
	runtime.ReadMemStats(&after)
	if ce := asClose(t, err); ce.Code != 1009 || !ce.Local {
		t.Fatalf("got %+v", ce)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*limit {
		t.Fatalf("the reader allocated %d bytes for a limit of %d", alloc, limit)
	}
	p.expectClose(1009)
}

// Without a limit, a header announcing an enormous payload costs nothing
// until the bytes come: no panic, no huge allocation.
func TestReadHugeHeaderNoLimit(t *testing.T) {
	t.Parallel()
	c, p := ctPipe(t, ConnOptions{}, true)
	p.sendThenClose(append([]byte{fin | byte(OpBinary), 127}, binary.BigEndian.AppendUint64(nil, 1<<62)...), make([]byte, 1000))
	_, err := readWithin(t, c)
	if c.Life() < 2 {
		t.Fatal("the payload was not read")
	}
	if ce := asClose(t, err); ce.Code != CloseAbnormal || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %+v", ce)
	}
}

// The peer going away inside a message: 1006 with io.ErrUnexpectedEOF.
func TestReadEOF(t *testing.T) {
	t.Parallel()
	c, p := ctPipe(t, ConnOptions{}, true)
	p.sendThenClose(ctFrame(byte(OpText), false, []byte("partial")))
	if m, err := readWithin(t, c); err == nil {
		t.Fatalf("message %q from half a message", m.Data)
	} else if ce := asClose(t, err); ce.Code != CloseAbnormal || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v", err)
	}
}

// Abort makes a blocked reader return 1006 with an error saying so.
func TestReadAbort(t *testing.T) {
	t.Parallel()
	c, _ := ctPipe(t, ConnOptions{}, true)
	done := make(chan error, 1)
	go func() { _, err := c.ReadMessage(); done <- err }()
	c.Abort()
	c.Abort()
	err := <-done
	if ce := asClose(t, err); ce.Code != CloseAbnormal || !errors.Is(err, errAborted) || !strings.Contains(err.Error(), "aborted locally") {
		t.Fatalf("got %v", err)
	}
	if err := c.WriteMessage(t.Context(), OpText, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after Abort: %v", err)
	}
	if err := c.Ping(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("ping after Abort: %v", err)
	}
}

// The server role reads masked frames and writes unmasked ones.
func TestServerRole(t *testing.T) {
	t.Parallel()
	c, p := ctPipe(t, ConnOptions{Server: true}, true)
	p.send(ctFrame(fin|byte(OpText), true, []byte("masked hello, longer than eight bytes")),
		ctFrame(byte(OpBinary), true, []byte("ab")), ctFrame(fin|byte(OpContinuation), true, []byte("cd")))
	for _, want := range []string{"masked hello, longer than eight bytes", "abcd"} {
		m, err := readWithin(t, c)
		if err != nil || string(m.Data) != want {
			t.Fatalf("got %q %v", m.Data, err)
		}
	}
	go func() { _ = c.WriteMessage(t.Context(), OpBinary, []byte("out")) }()
	if f := p.next(); f.masked || string(f.payload) != "out" {
		t.Fatalf("server frame %+v", f)
	}
}

// Life grows with every frame read.
func TestLife(t *testing.T) {
	t.Parallel()
	c, p := ctPipe(t, ConnOptions{}, true)
	p.send(ctFrame(fin|byte(OpBinary), false, []byte("x")), ctFrame(fin|byte(OpPong), false, nil))
	l0 := c.Life()
	for range 2 {
		if _, err := readWithin(t, c); err != nil {
			t.Fatal(err)
		}
		if l := c.Life(); l <= l0 {
			t.Fatalf("Life %d after a frame, was %d", l, l0)
		} else {
			l0 = l
		}
	}
}

// A single-frame uncompressed message costs one allocation.
func TestReadAllocs(t *testing.T) {
	// Not parallel: it counts the allocations of the whole process.
	for _, n := range []int{64, 16 << 10} {
		src := &repeatReader{b: ctFrame(fin|byte(OpBinary), false, make([]byte, n))}
		c := NewConn(&memConn{r: src}, nil, ConnOptions{})
		allocs := testing.AllocsPerRun(100, func() {
			if m, err := c.ReadMessage(); err != nil || len(m.Data) != n {
				t.Fatal(err)
			}
		})
		if allocs != 1 {
			t.Errorf("%d bytes: %v allocations per message, want 1", n, allocs)
		}
	}
}

// ctHeader is a frame header with the length in the form given: 0 (7-bit),
// 126 (16-bit) or 127 (64-bit), whatever the length.
func ctHeader(b0 byte, form byte, n int) []byte {
	switch form {
	case 126:
		return binary.BigEndian.AppendUint16([]byte{b0, 126}, uint16(n))
	case 127:
		return binary.BigEndian.AppendUint64([]byte{b0, 127}, uint64(n))
	}
	return []byte{b0, byte(n)}
}

// A control frame's 7-bit length field may not be 126 or 127, even when the
// extended length is at most 125 (RFC 6455 5.5): 1002, decided on the first
// two bytes (the extended length need not come).
func TestReadControlExtendedLength(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		script []byte
	}{
		{"ping of 5 bytes, 16-bit form", append(ctHeader(fin|byte(OpPing), 126, 5), "hello"...)},
		{"pong of 0 bytes, 64-bit form", ctHeader(fin|byte(OpPong), 127, 0)},
		{"close 1000, 16-bit form", append(ctHeader(fin|byte(OpClose), 126, 2), ctClosePayload(1000, "")...)},
		{"ping, 64-bit form, the length never comes", []byte{fin | byte(OpPing), 127}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, p := ctPipe(t, ConnOptions{}, true)
			p.send(tc.script)
			m, err := readWithinShort(t, c)
			if err == nil {
				t.Fatalf("got message %v %q, want a 1002 failure", m.Op, m.Data)
			}
			if ce := asClose(t, err); !ce.Local || ce.Code != CloseProtocolError {
				t.Fatalf("got %+v, want a local 1002", ce)
			}
			p.expectClose(CloseProtocolError)
		})
	}
}

// readWithinShort is readWithin with a 2s bound: for what must fail at once.
func readWithinShort(t *testing.T, c *Conn) (Message, error) {
	t.Helper()
	type res struct {
		m   Message
		err error
	}
	ch := make(chan res, 1)
	go func() {
		m, err := c.ReadMessage()
		ch <- res{m, err}
	}()
	select {
	case r := <-ch:
		return r.m, r.err
	case <-time.After(2 * time.Second):
		c.Abort()
		<-ch
		t.Fatal("ReadMessage did not return within 2s")
	}
	return Message{}, nil
}

// Invalid UTF-8 fails on the read that brings it, inside one frame too: the
// header announces the whole text, only the bytes up to the bad one come,
// the rest never does. Masked (server role) too: unmasking is progressive.
func TestReadBadUTF8FailsInsideAFrame(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		good   string // valid text before
		bad    string // the bytes that make it impossible (ends with the bad byte)
		rest   string // never sent
		chunks int    // 0: one write; 1: single-byte writes; 2: good, then bad
	}{
		{"0xff in one write", "hello", "\xff", " world", 0},
		{"overlong in one write", "κόσμε", "\xc0", "\xafxyz", 0},
		{"above U+10FFFF, prefix only", "κόσμε", "\xf4\x90", "\x80\x80edited", 0},
		{"surrogate, in single-byte writes", "abc", "\xed\xa0", "\x80def", 1},
		{"bad after a valid split rune, single-byte writes", "κό", "\xce\xff", "σμε", 1},
		{"two reads, the second brings the bad bytes", "κόσμε", "\xf4\x90\x80\x80", "edited", 2},
	}
	for _, tc := range cases {
		for _, server := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/server=%v", tc.name, server), func(t *testing.T) {
				c, p := ctPipe(t, ConnOptions{Server: server}, true)
				whole := ctFrame(fin|byte(OpText), server, []byte(tc.good+tc.bad+tc.rest))
				cut := len(whole) - len(tc.rest)
				var writes [][]byte
				switch tc.chunks {
				case 0:
					writes = [][]byte{whole[:cut]}
				case 1:
					for i := range cut {
						writes = append(writes, whole[i:i+1])
					}
				case 2:
					writes = [][]byte{whole[:cut-len(tc.bad)], whole[cut-len(tc.bad) : cut]}
				}
				p.send(writes...)
				_, err := readWithinShort(t, c)
				if ce := asClose(t, err); !ce.Local || ce.Code != CloseInvalidPayload {
					t.Fatalf("got %+v, want a local 1007", ce)
				}
				p.expectClose(CloseInvalidPayload)
			})
		}
	}
}

// Valid text in one frame, arriving a byte at a time (runes split across
// reads), masked or not, is read whole.
func TestReadTextInOneFrameByteByByte(t *testing.T) {
	t.Parallel()
	text := "Hello-µ@ßöäüàá-UTF-8!! κόσμε 𝄞 \U0010FFFF end"
	for _, server := range []bool{false, true} {
		c, p := ctPipe(t, ConnOptions{Server: server}, true)
		f := ctFrame(fin|byte(OpText), server, []byte(text))
		var writes [][]byte
		for i := range f {
			writes = append(writes, f[i:i+1])
		}
		p.send(writes...)
		m, err := readWithin(t, c)
		if err != nil || m.Op != OpText || string(m.Data) != text {
			t.Fatalf("server=%v: got %v %q %v", server, m.Op, m.Data, err)
		}
	}
}

// fragmented is a text or binary message of n bytes in fragments of size.
func fragmented(op Opcode, n, size int) []byte {
	p := bytes.Repeat([]byte("*µ"), n/3+1)[:n/3*3]
	if op == OpBinary {
		p = bytes.Repeat([]byte{0xfe, 0, 0x7f}, n/3)
	}
	var out []byte
	for i := 0; i < len(p); i += size {
		b0 := byte(OpContinuation)
		if i == 0 {
			b0 = byte(op)
		}
		end := min(i+size, len(p))
		if end == len(p) {
			b0 |= fin
		}
		out = append(out, ctFrame(b0, false, p[i:end])...)
	}
	return out
}

// A 1 MiB message in 64-byte fragments (16384 of them) costs a logarithmic
// number of allocations (amortized growth), not one per fragment.
func TestReadFragmentedAllocs(t *testing.T) {
	// Not parallel: it counts the allocations of the whole process.
	for _, op := range []Opcode{OpText, OpBinary} {
		msg := fragmented(op, 1<<20, 64)
		c := NewConn(&memConn{r: &repeatReader{b: msg}}, nil, ConnOptions{})
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		allocs := testing.AllocsPerRun(5, func() {
			if m, err := c.ReadMessage(); err != nil || m.Op != op || len(m.Data) != 1<<20/3*3 {
				t.Fatalf("%v %d %v", m.Op, len(m.Data), err)
			}
		})
		runtime.ReadMemStats(&after)
		limit := 40.0
		if raceEnabled {
			limit = 60 // sync.Pool drops items at random there: the read buffer's pool misses
		}
		if allocs > limit {
			t.Errorf("opcode %d: %v allocations per message, want a few dozen at most", op, allocs)
		}
		if b := (after.TotalAlloc - before.TotalAlloc) / 6; b > 4<<20 {
			t.Errorf("opcode %d: %d bytes allocated per 1 MiB message", op, b)
		}
	}
}

// The same for a compressed message: the inflater's first buffer is not
// sized from the header alone (it was twice the announced length: a 1 TiB
// header killed the process).
func TestReadHugeCompressedHeaderNoLimit(t *testing.T) {
	// Not parallel: it measures the allocations of the whole process.
	c, p := ctPipe(t, ConnOptions{Compression: true}, true)
	p.sendThenClose(append([]byte{fin | rsv1 | byte(OpBinary), 127}, binary.BigEndian.AppendUint64(nil, 1<<40)...), make([]byte, 1000))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := readWithin(t, c)
	runtime.ReadMemStats(&after)
	asClose(t, err)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Fatalf("the reader allocated %d bytes for 1000 payload bytes", alloc)
	}
}

// chunkReader returns its bytes in reads of random sizes from 1 to max.
type chunkReader struct {
	b   []byte
	rng *mrand.Rand
	max int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(r.b), 1+r.rng.IntN(r.max))
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

// The read buffer is sized by need: messages of every size, fragmented or
// not, with pings between, arrive whole whatever the socket's read sizes,
// and whenever nothing is buffered between two messages the connection holds
// no pooled buffer (a connection waiting for its next frame keeps only the
// small one, whatever came before).
//
// The stream begins with every size once whole and, over 1000 bytes, once in
// three fragments with a ping between, in random order; 300 messages of
// random sizes and forms follow. Reads of 1 to 7 bytes take only the first
// part: there each header is cut at (nearly) every byte and the pooled
// buffer is taken and given back around each read of a payload's last
// 16 KiB, for every kind of message, and a read carries at most 6 bytes of
// the next frame, so more messages of the same kinds add only time (26 s
// under -race, where the pooled buffer of a read is often a new one: the
// race detector's sync.Pool drops items). The larger read sizes, which carry
// several frames from one message into the next, read the whole stream.
func TestReadBufferSizedByNeed(t *testing.T) {
	t.Parallel()
	rng := mrand.New(mrand.NewPCG(1, 2))
	sizes := []int{0, 1, 100, 125, 126, 511, 512, 513, 4000, 16 << 10, 40 << 10, 70000}
	var stream []byte
	var want [][]byte
	add := func(size int, fragmented bool) {
		n := size + rng.IntN(3)
		p := make([]byte, n)
		for j := range p {
			p[j] = byte(rng.Uint32())
		}
		if fragmented { // in three fragments, a ping between
			a, b := n/3, 2*n/3
			stream = append(stream, ctFrame(byte(OpBinary), false, p[:a])...)
			stream = append(stream, ctFrame(fin|byte(OpPing), false, []byte("hi"))...)
			stream = append(stream, ctFrame(byte(OpContinuation), false, p[a:b])...)
			stream = append(stream, ctFrame(fin|byte(OpContinuation), false, p[b:])...)
			want = append(want, []byte("hi"), p)
			return
		}
		stream = append(stream, ctFrame(fin|byte(OpBinary), false, p)...)
		want = append(want, p)
	}
	type kind struct {
		size       int
		fragmented bool
	}
	var kinds []kind
	for _, size := range sizes {
		kinds = append(kinds, kind{size, false})
		if size > 1000 {
			kinds = append(kinds, kind{size, true})
		}
	}
	rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	for _, k := range kinds {
		add(k.size, k.fragmented)
	}
	everyKind, everyKindMsgs := len(stream), len(want)
	for range 300 {
		size := sizes[rng.IntN(len(sizes))]
		add(size, size > 1000 && rng.IntN(2) == 0)
	}
	for _, maxRead := range []int{1, 7, 600, 5000, 1 << 20} {
		t.Run(fmt.Sprintf("reads_up_to_%d", maxRead), func(t *testing.T) {
			t.Parallel()
			stream, want := stream, want
			if maxRead < 8 {
				stream, want = stream[:everyKind], want[:everyKindMsgs]
			}
			rng := mrand.New(mrand.NewPCG(3, uint64(maxRead)))
			c := NewConn(&memConn{r: &chunkReader{b: stream, rng: rng, max: maxRead}}, nil, ConnOptions{})
			for i, w := range want {
				m, err := c.ReadMessage()
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if !bytes.Equal(m.Data, w) {
					t.Fatalf("message %d: %d bytes, want %d", i, len(m.Data), len(w))
				}
				if c.br.Buffered() == 0 && c.br.big != nil {
					t.Fatalf("message %d: nothing buffered, yet the pooled buffer is held", i)
				}
			}
			if _, err := c.ReadMessage(); err == nil {
				t.Fatal("a message after the end")
			}
		})
	}
}
