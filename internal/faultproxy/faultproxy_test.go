package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// echoServer is a plain TCP echo upstream. It records when connections end.
type echoServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	ended chan struct{} // one value per finished connection
}

func newEcho(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln, conns: map[net.Conn]struct{}{}, ended: make(chan struct{}, 100)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				_, _ = io.Copy(c, c)
				_ = c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				s.ended <- struct{}{}
			}()
		}
	}()
	t.Cleanup(s.Close)
	return s
}

func (s *echoServer) Addr() string { return s.ln.Addr().String() }

func (s *echoServer) Close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// setup checks for goroutine leaks at the end of the test and starts an echo
// upstream and a proxy in front of it.
func setup(t *testing.T) (*Proxy, *echoServer) {
	t.Helper()
	// Registered first, so it runs after all other cleanups.
	t.Cleanup(func() { goleak.VerifyNone(t) })
	echo := newEcho(t)
	p, err := New(echo.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p, echo
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// roundTrip writes msg and expects it echoed back within a second.
func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(buf) != msg {
		t.Fatalf("got %q, want %q", buf, msg)
	}
}

// expectSilence asserts that nothing arrives on c within d and that the
// socket is still open (the read times out rather than failing).
func expectSilence(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	var b [1]byte
	n, err := c.Read(b[:])
	if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("expected read timeout, got n=%d err=%v", n, err)
	}
}

// expectClosed asserts that c is closed by the peer (EOF or reset).
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if err == nil || errors.Is(err, syscall.ECONNRESET) {
		return // io.Copy reports EOF as nil
	}
	t.Fatalf("expected EOF or ECONNRESET, got %v", err)
}

// expectRejected dials p and asserts that the connection is refused: the
// reset may already surface from the dial, or from the first read.
func expectRejected(t *testing.T, p *Proxy) {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("dial: %v, want success or ECONNRESET", err)
		}
		return
	}
	defer c.Close()
	expectClosed(t, c)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestForward(t *testing.T) {
	p, _ := setup(t)
	c := dial(t, p)
	roundTrip(t, c, "hello")
	roundTrip(t, c, "world")
	if got := p.Accepted(); got != 1 {
		t.Errorf("Accepted = %d, want 1", got)
	}
	if got := p.Live(); got != 1 {
		t.Errorf("Live = %d, want 1", got)
	}
	_ = c.Close()
	waitFor(t, "Live == 0", func() bool { return p.Live() == 0 })
}

func TestHalfClosePropagates(t *testing.T) {
	p, _ := setup(t)
	c := dial(t, p)
	roundTrip(t, c, "x")
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// The echo server sees EOF, closes, and the proxy passes the FIN back.
	expectClosed(t, c)
	waitFor(t, "Live == 0", func() bool { return p.Live() == 0 })
}

func TestBlackhole(t *testing.T) {
	p, echo := setup(t)
	c := dial(t, p)
	roundTrip(t, c, "before")

	p.Blackhole(true)
	if _, err := c.Write([]byte("lost")); err != nil {
		t.Fatal(err)
	}
	expectSilence(t, c, 50*time.Millisecond)
	if got := p.Live(); got != 1 {
		t.Errorf("Live = %d during blackhole, want 1", got)
	}

	// New connections are accepted but nothing is forwarded.
	c2 := dial(t, p)
	waitFor(t, "second link", func() bool { return p.Live() == 2 })
	if _, err := c2.Write([]byte("lost too")); err != nil {
		t.Fatal(err)
	}
	expectSilence(t, c2, 50*time.Millisecond)

	// A close is not propagated through the blackhole either.
	_ = c2.Close()
	select {
	case <-echo.ended:
		t.Fatal("upstream saw the close through the blackhole")
	case <-time.After(50 * time.Millisecond):
	}

	p.Blackhole(false)
	// Data sent during the blackhole was dropped, new data flows.
	roundTrip(t, c, "after")
	// The deferred close now reaches the upstream.
	select {
	case <-echo.ended:
	case <-time.After(2 * time.Second):
		t.Fatal("upstream did not see the close after the blackhole")
	}
	waitFor(t, "Live == 1", func() bool { return p.Live() == 1 })
}

func TestLatency(t *testing.T) {
	p, _ := setup(t)
	c := dial(t, p)
	roundTrip(t, c, "warm")

	const d = 100 * time.Millisecond
	p.SetLatency(d)
	start := time.Now()
	roundTrip(t, c, "slow")
	if rtt := time.Since(start); rtt < 2*d {
		t.Fatalf("round trip %v, want >= %v", rtt, 2*d)
	}

	// Delays overlap: five chunks sent 20ms apart arrive together after
	// about 2d+80ms, not after 5*2d.
	start = time.Now()
	const n = 5
	for i := 0; i < n; i++ {
		if _, err := c.Write([]byte{byte('a' + i)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	if string(buf) != "abcde" {
		t.Fatalf("got %q, order not preserved", buf)
	}
	if el < 2*d || el > 4*d+n*20*time.Millisecond {
		t.Fatalf("5 chunks took %v, want about %v", el, 2*d+80*time.Millisecond)
	}

	p.SetLatency(0)
	start = time.Now()
	roundTrip(t, c, "fast")
	if rtt := time.Since(start); rtt >= d {
		t.Fatalf("round trip %v after removing latency", rtt)
	}
}

func TestBandwidth(t *testing.T) {
	p, _ := setup(t)
	c := dial(t, p)

	const rate = 128 << 10 // bytes per second
	const size = 64 << 10
	p.SetBandwidth(rate)
	payload := bytes.Repeat([]byte("0123456789abcdef"), size/16)

	var wg sync.WaitGroup
	wg.Add(1)
	start := time.Now()
	go func() {
		defer wg.Done()
		_, _ = c.Write(payload)
	}()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, size)
	_, err := io.ReadFull(c, got)
	el := time.Since(start)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("payload corrupted")
	}
	// Both directions are capped but pipelined, so the echo takes about
	// size/rate.
	want := time.Duration(size) * time.Second / rate
	if el < want*7/10 || el > want*4 {
		t.Fatalf("64 KiB at %d B/s took %v, want about %v", rate, el, want)
	}

	p.SetBandwidth(0)
	start = time.Now()
	roundTrip(t, c, string(payload))
	if el := time.Since(start); el > want/2 {
		t.Fatalf("uncapped transfer took %v", el)
	}
}

func TestResetAll(t *testing.T) {
	p, echo := setup(t)
	c := dial(t, p)
	roundTrip(t, c, "hi")

	p.ResetAll()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) {
		t.Fatalf("read after ResetAll: %v, want ECONNRESET or EOF", err)
	}
	select {
	case <-echo.ended:
	case <-time.After(2 * time.Second):
		t.Fatal("upstream connection not reset")
	}
	if got := p.Live(); got != 0 {
		t.Fatalf("Live = %d after ResetAll", got)
	}

	// New connections still work.
	roundTrip(t, dial(t, p), "again")
}

func TestRejectNew(t *testing.T) {
	p, _ := setup(t)
	live := dial(t, p)
	roundTrip(t, live, "up")

	p.RejectNew(true)
	expectRejected(t, p)
	if got := p.Accepted(); got != 2 {
		t.Errorf("Accepted = %d, want 2", got)
	}
	// Live links are unaffected.
	roundTrip(t, live, "still up")

	p.RejectNew(false)
	roundTrip(t, dial(t, p), "back")
}

func TestCutAfter(t *testing.T) {
	p, _ := setup(t)
	p.CutAfter(10)
	c := dial(t, p)
	if _, err := c.Write([]byte("0123456789abcdefghij")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatal(err)
	}
	if string(got) != "0123456789" {
		t.Fatalf("got %q, want exactly the first 10 bytes", got)
	}

	p.CutAfter(0)
	roundTrip(t, dial(t, p), "0123456789abcdefghij")
}

func TestSetUpstream(t *testing.T) {
	p, echo := setup(t)
	echo.Close() // upstream down: connections are dropped
	expectRejected(t, p)

	echo2 := newEcho(t)
	p.SetUpstream(echo2.Addr())
	roundTrip(t, dial(t, p), "new upstream")
}

func TestCloseWithLiveLinks(t *testing.T) {
	p, _ := setup(t)
	p.SetLatency(time.Hour)
	p.SetBandwidth(1)
	c := dial(t, p)
	_, _ = c.Write([]byte("stuck"))
	c2 := dial(t, p)
	waitFor(t, "two links", func() bool { return p.Live() == 2 })
	p.Blackhole(true)
	_ = c2.Close()

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if got := p.Live(); got != 0 {
		t.Fatalf("Live = %d after Close", got)
	}
	expectClosed(t, c)
	// goleak in the cleanup proves every goroutine has exited.
}

// TestWriteErrorKeepsOtherDirection: the client sends its last bytes and
// resets while the server keeps writing to it. The proxy's next write to the
// client fails; that must stop the server->client direction only, so that the
// client's last bytes, still on their way (the bandwidth cap makes them take
// a quarter of a second), reach the server before the reset does.
func TestWriteErrorKeepsOtherDirection(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p, err := New(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	const rate = 32 << 10
	p.SetBandwidth(rate)
	c := dial(t, p)
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(2 * time.Second))
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// The server writes to the client until its socket fails: once the
	// proxy has forwarded the client's reset.
	writing := make(chan error, 1)
	go func() {
		chunk := bytes.Repeat([]byte("s"), 1<<10)
		for {
			if _, err := s.Write(chunk); err != nil {
				writing <- err
				return
			}
		}
	}()

	// 8 KiB take 250 ms at 32 KiB/s; the reset reaches the proxy at once,
	// and its first write to the client after it fails.
	payload := append(bytes.Repeat([]byte("c"), 8<<10), "last words"...)
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	resetClose(c.(*net.TCPConn))

	_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	buf := make([]byte, 4<<10)
	for {
		n, err := s.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("the server's read: %v, after %d bytes", err, len(got))
			}
			break // EOF or the reset passed on
		}
	}
	if !bytes.Equal(got, payload) {
		t.Errorf("the server got %d bytes (ending %q), want the client's %d, ending %q",
			len(got), got[max(len(got)-10, 0):], len(payload), "last words")
	}
	select {
	case <-writing:
	case <-time.After(5 * time.Second):
		t.Fatal("the server's writes still succeed 5 s after the client's reset")
	}
	waitFor(t, "Live == 0", func() bool { return p.Live() == 0 })
}
