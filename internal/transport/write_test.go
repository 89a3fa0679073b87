package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// stuckWrite starts a 200 KiB message on a pipe nobody reads but for the
// first byte: when it returns, the writer is inside its first frame's socket
// write, holding the frame lock. The reader continues the frame stream.
func stuckWrite(t *testing.T, c *Conn, p *ctPeer) (io.Reader, chan error) {
	t.Helper()
	data := make([]byte, 200<<10)
	done := make(chan error, 1)
	go func() { done <- c.WriteMessage(context.Background(), OpBinary, data) }()
	var first [1]byte
	if _, err := io.ReadFull(p.nc, first[:]); err != nil {
		t.Fatal(err)
	}
	return io.MultiReader(bytes.NewReader(first[:]), p.nc), done
}

func mustFrame(t *testing.T, r io.Reader) rawFrame {
	t.Helper()
	f, err := ctReadFrame(r)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// The pong answering a ping that arrives while a long message is being
// written goes out between two of its frames.
func TestWritePongBetweenFrames(t *testing.T) {
	t.Parallel()
	c, p := ctPipe(t, ConnOptions{}, false)
	r, done := stuckWrite(t, c, p)
	p.send(ctFrame(fin|byte(OpPing), false, []byte("are you there")))
	if m, err := readWithin(t, c); err != nil || m.Op != OpPing {
		t.Fatalf("%v %v", m, err)
	}
	if f := mustFrame(t, r); f.op != OpBinary || f.fin || len(f.payload) != 64<<10 {
		t.Fatalf("first frame %v fin %v len %d", f.op, f.fin, len(f.payload))
	}
	if f := mustFrame(t, r); f.op != OpPong || string(f.payload) != "are you there" || !f.masked {
		t.Fatalf("after the first frame: %+v, want the pong", f)
	}
	total := 64 << 10
	for total < 200<<10 {
		f := mustFrame(t, r)
		if f.op != OpContinuation {
			t.Fatalf("frame %v", f.op)
		}
		total += len(f.payload)
		if f.fin != (total == 200<<10) {
			t.Fatalf("fin %v at %d", f.fin, total)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Ping returns at once while a write is stuck; the ping follows the frame.
func TestPingNeverBlocks(t *testing.T) {
	t.Parallel()
	c, p := ctPipe(t, ConnOptions{}, false)
	r, done := stuckWrite(t, c, p)
	ping := make(chan error, 1)
	go func() { ping <- c.Ping([]byte("k")) }()
	select {
	case err := <-ping:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Ping blocked behind a stuck write")
	}
	mustFrame(t, r)
	if f := mustFrame(t, r); f.op != OpPing || string(f.payload) != "k" {
		t.Fatalf("after the first frame: %+v, want the ping", f)
	}
	go func() { _, _ = io.Copy(io.Discard, r) }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Close while a long message is stuck: the close goes out after the current
// frame, the message stops there (ErrCloseCutShort, not ErrCloseSent), and
// nothing else may be written.
func TestCloseCutsWriteShort(t *testing.T) {
	t.Parallel()
	c, p := ctPipe(t, ConnOptions{}, false)
	r, done := stuckWrite(t, c, p)
	closed := make(chan error, 1)
	go func() { closed <- c.Close(1000, "bye") }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close blocked behind a stuck write")
	}
	if !c.CloseSent() {
		t.Fatal("CloseSent false after Close")
	}
	if err := c.Ping(nil); !errors.Is(err, ErrCloseSent) {
		t.Fatalf("Ping after Close: %v", err)
	}
	if f := mustFrame(t, r); f.op != OpBinary || f.fin {
		t.Fatalf("first frame %+v", f.op)
	}
	if f := mustFrame(t, r); f.op != OpClose || string(f.payload) != "\x03\xe8bye" {
		t.Fatalf("after the first frame: %v %q, want the close", f.op, f.payload)
	}
	err := <-done
	if !errors.Is(err, ErrCloseCutShort) || errors.Is(err, ErrCloseSent) || errors.Is(err, ErrClosed) {
		t.Fatalf("cut-short write: %v", err)
	}
	if err := c.WriteMessage(t.Context(), OpText, []byte("x")); !errors.Is(err, ErrCloseSent) {
		t.Fatalf("write after Close: %v", err)
	}
	if err := c.Close(1000, ""); !errors.Is(err, ErrCloseSent) {
		t.Fatalf("second Close: %v", err)
	}
	// The peer's echo: no pong goes out for a ping after the close.
	p.send(ctFrame(fin|byte(OpPing), false, nil), ctFrame(fin|byte(OpClose), false, ctClosePayload(1000, "")))
	if m, err := readWithin(t, c); err != nil || m.Op != OpPing {
		t.Fatal(m, err)
	}
	if _, err := readWithin(t, c); asClose(t, err).Code != 1000 {
		t.Fatal(err)
	}
	c.Abort()
	if f, err := ctReadFrame(r); err == nil {
		t.Fatalf("frame after the close: %+v", f)
	}
}

// A write that times out fails the connection: the write error is wrapped
// (not ErrClosed), the reader returns 1006 with it, later writes ErrClosed.
func TestWriteTimeout(t *testing.T) {
	t.Parallel()
	c, _ := ctPipe(t, ConnOptions{WriteTimeout: 50 * time.Millisecond}, false)
	readErr := make(chan error, 1)
	go func() { _, err := c.ReadMessage(); readErr <- err }()
	err := c.WriteMessage(t.Context(), OpText, []byte("nobody reads this"))
	if !errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, ErrClosed) || errors.Is(err, ErrCloseSent) {
		t.Fatalf("write: %v", err)
	}
	rerr := <-readErr
	if ce := asClose(t, rerr); ce.Code != CloseAbnormal || !errors.Is(rerr, os.ErrDeadlineExceeded) {
		t.Fatalf("reader: %v", rerr)
	}
	if err := c.WriteMessage(t.Context(), OpText, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("later write: %v", err)
	}
}

// ctx bounds the wait for another writer's message; nothing is written.
func TestWriteContextBoundsWait(t *testing.T) {
	t.Parallel()
	c, p := ctPipe(t, ConnOptions{}, false)
	r, done := stuckWrite(t, c, p)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := c.WriteMessage(ctx, OpText, []byte("second")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	var total int
	for total < 200<<10 {
		f := mustFrame(t, r)
		if f.op == OpText {
			t.Fatal("the timed-out message was written")
		}
		total += len(f.payload)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Frames: at most 64 KiB, opcode then continuations, FIN on the last, each
// masked with its own key; the caller's data is not modified.
func TestWriteFraming(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 65537, 200000} {
		for _, compressed := range []bool{false, true} {
			c, p := ctPipe(t, ConnOptions{Compression: compressed}, true)
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(rng.Uint32()) // incompressible: compressed ones need several frames too
			}
			orig := bytes.Clone(data)
			errc := make(chan error, 1)
			go func() { errc <- c.WriteMessage(t.Context(), OpBinary, data) }()
			var got []byte
			for i := 0; ; i++ {
				f := p.next()
				if (i == 0) != (f.op == OpBinary) || (i > 0 && f.op != OpContinuation) {
					t.Fatalf("n %d frame %d: opcode %v", n, i, f.op)
				}
				if f.rsv1 != (compressed && i == 0) {
					t.Fatalf("n %d frame %d: rsv1 %v", n, i, f.rsv1)
				}
				if !f.masked || len(f.payload) > 64<<10 {
					t.Fatalf("n %d frame %d: masked %v, %d bytes", n, i, f.masked, len(f.payload))
				}
				got = append(got, f.payload...)
				if f.fin {
					break
				}
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if compressed {
				got = ctInflate(t, got)
			}
			if !bytes.Equal(got, orig) || !bytes.Equal(data, orig) {
				t.Fatalf("n %d compressed %v: payload differs (or the caller's data changed)", n, compressed)
			}
		}
	}
}

// The mask keys differ from frame to frame.
func TestWriteMaskKeysDiffer(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	c := NewConn(&memConn{r: bytes.NewReader(nil), w: &buf}, nil, ConnOptions{})
	seen := map[[4]byte]bool{}
	for range 100 {
		buf.Reset()
		if err := c.WriteMessage(t.Context(), OpBinary, []byte("x")); err != nil {
			t.Fatal(err)
		}
		var k [4]byte
		copy(k[:], buf.Bytes()[2:6])
		seen[k] = true
	}
	if len(seen) < 95 {
		t.Fatalf("%d distinct keys in 100 frames", len(seen))
	}
}

func TestWriteAllocs(t *testing.T) {
	// Not parallel: it counts the allocations of the whole process.
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	for _, n := range []int{64, 16 << 10, 100 << 10} {
		c := NewConn(&memConn{r: bytes.NewReader(nil)}, nil, ConnOptions{})
		data := make([]byte, n)
		ctx := context.Background()
		if a := testing.AllocsPerRun(100, func() { _ = c.WriteMessage(ctx, OpBinary, data) }); a != 0 {
			t.Errorf("%d bytes: %v allocations per message, want 0", n, a)
		}
	}
}

func TestWriteRejects(t *testing.T) {
	t.Parallel()
	c, _ := ctPipe(t, ConnOptions{}, true)
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"opcode close", c.WriteMessage(t.Context(), OpClose, nil)},
		{"opcode continuation", c.WriteMessage(t.Context(), OpContinuation, nil)},
		{"long ping", c.WriteMessage(t.Context(), OpPing, make([]byte, 126))},
		{"Ping long", c.Ping(make([]byte, 126))},
		{"close code", c.Close(1005, "")},
		{"close reason long", c.Close(1000, string(make([]byte, 124)))},
		{"close reason UTF-8", c.Close(1000, "\xff")},
	} {
		if tc.err == nil || errors.Is(tc.err, ErrClosed) || errors.Is(tc.err, ErrCloseSent) {
			t.Errorf("%s: %v", tc.name, tc.err)
		}
	}
	if c.CloseSent() {
		t.Error("CloseSent after rejected closes")
	}
}

func TestMask(t *testing.T) {
	t.Parallel()
	key := [4]byte{0xa1, 0xb2, 0xc3, 0xd4}
	for n := range 100 {
		for pos := range 4 {
			src := make([]byte, n)
			for i := range src {
				src[i] = byte(i * 7)
			}
			want := make([]byte, n)
			for i := range src {
				want[i] = src[i] ^ key[(pos+i)%4]
			}
			got := bytes.Clone(src)
			if end := maskBytes(key, pos, got); end != pos+n || !bytes.Equal(got, want) {
				t.Fatalf("maskBytes n %d pos %d", n, pos)
			}
			if pos == 0 {
				dst := make([]byte, n)
				maskCopy(dst, src, key)
				if !bytes.Equal(dst, want) {
					t.Fatalf("maskCopy n %d", n)
				}
			}
		}
	}
}
