package wsclient

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/internal/transport"
)

// ---- a fake clock: time moves only when the test says so ----

type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*fakeTimer]bool // the armed ones
	armed  chan struct{}       // poked whenever a timer is armed
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1_000_000, 0), timers: map[*fakeTimer]bool{}, armed: make(chan struct{}, 1)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) timer {
	t := &fakeTimer{clk: c, c: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// Advance moves time on by d and fires the timers that are due, in order.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for t := range c.timers {
		if !t.when.After(c.now) {
			delete(c.timers, t)
			select {
			case t.c <- c.now:
			default:
			}
		}
	}
}

// armedTimers is how many timers wait to fire.
func (c *fakeClock) armedTimers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// nextDue is how long until the next armed timer fires (false: none armed).
func (c *fakeClock) nextDue() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first time.Time
	for t := range c.timers {
		if first.IsZero() || t.when.Before(first) {
			first = t.when
		}
	}
	return first.Sub(c.now), !first.IsZero()
}

// waitTimers waits (on real time, bounded) until n timers are armed.
func (c *fakeClock) waitTimers(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for c.armedTimers() < n {
		select {
		case <-c.armed:
		case <-deadline:
			t.Fatalf("fake clock: %d timers armed, want %d", c.armedTimers(), n)
		}
	}
}

type fakeTimer struct {
	clk  *fakeClock
	c    chan time.Time
	when time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	armed := t.clk.timers[t]
	delete(t.clk.timers, t)
	return armed
}

func (t *fakeTimer) Reset(d time.Duration) {
	c := t.clk
	c.mu.Lock()
	t.when = c.now.Add(d)
	select { // like a Go 1.23 timer: a reset drops a value not yet received
	case <-t.c:
	default:
	}
	if d <= 0 {
		delete(c.timers, t)
		t.c <- c.now
	} else {
		c.timers[t] = true
	}
	c.mu.Unlock()
	select {
	case c.armed <- struct{}{}:
	default:
	}
}

// ---- a fake transport: a connection the test plays the server of ----

var errFakeAborted = errors.New("fake: aborted")

type fakeWire struct {
	in      chan fakeRead // what the "server" sends, in order
	aborted chan struct{}
	abort   sync.Once
	life    atomic.Uint64

	mu          sync.Mutex
	written     []transport.Message
	pings       [][]byte
	closeSent   bool
	closeCode   int
	closeReason string
	wrote       chan struct{}  // poked at every write, ping or close
	block       chan struct{}  // while non-nil and open, data writes block (a full send buffer)
	ignoreClose bool           // set before use: the server never answers a close frame
	onPing      func(p []byte) // set before use: runs inside Ping, after the ping is recorded
	beforeAbort func()         // set before use: runs inside AbortWhenClosed (and CloseAndAbort), before the abort
}

type fakeRead struct {
	m   transport.Message
	err error
}

func newFakeWire() *fakeWire {
	return &fakeWire{in: make(chan fakeRead, 100), aborted: make(chan struct{}), wrote: make(chan struct{}, 1000)}
}

// send has the fake server send m.
func (w *fakeWire) send(op transport.Opcode, data string) {
	w.in <- fakeRead{m: transport.Message{Op: op, Data: []byte(data)}}
}

// fail has the connection end with err (a close frame, a reset).
func (w *fakeWire) fail(err error) { w.in <- fakeRead{err: err} }

func (w *fakeWire) ReadMessage() (transport.Message, error) {
	select {
	case r := <-w.in:
		if r.err != nil {
			return transport.Message{}, r.err
		}
		w.life.Add(1)
		return r.m, nil
	case <-w.aborted:
		return transport.Message{}, &CloseError{Code: CloseAbnormal, Err: errFakeAborted}
	}
}

func (w *fakeWire) WriteMessage(ctx context.Context, op transport.Opcode, data []byte) error {
	w.mu.Lock()
	block := w.block
	w.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-w.aborted:
			return errors.New("fake: write: connection aborted")
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case <-w.aborted:
		return transport.ErrClosed
	default:
	}
	if w.closeSent {
		return transport.ErrCloseSent
	}
	w.written = append(w.written, transport.Message{Op: op, Data: append([]byte(nil), data...)})
	w.poke()
	return nil
}

func (w *fakeWire) poke() {
	select {
	case w.wrote <- struct{}{}:
	default:
	}
}

func (w *fakeWire) Ping(p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closeSent {
		return transport.ErrCloseSent
	}
	w.pings = append(w.pings, append([]byte(nil), p...))
	w.poke()
	if w.onPing != nil {
		w.mu.Unlock()
		w.onPing(p)
		w.mu.Lock()
	}
	return nil
}

func (w *fakeWire) Close(code int, reason string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closeSent {
		return transport.ErrCloseSent
	}
	w.closeSent, w.closeCode, w.closeReason = true, code, reason
	w.poke()
	if !w.ignoreClose { // a polite server answers the close
		w.in <- fakeRead{err: &CloseError{Code: code}}
	}
	return nil
}

func (w *fakeWire) Abort() { w.abort.Do(func() { close(w.aborted) }) }

// CloseAndAbort: a fake's writes never block, so the close is out at once.
func (w *fakeWire) CloseAndAbort(code int, reason string, d time.Duration) {
	_ = w.Close(code, reason)
	w.AbortWhenClosed(d)
}

func (w *fakeWire) AbortWhenClosed(time.Duration) {
	if w.beforeAbort != nil {
		w.beforeAbort()
	}
	w.Abort()
}

func (w *fakeWire) CloseSent() bool     { w.mu.Lock(); defer w.mu.Unlock(); return w.closeSent }
func (w *fakeWire) Life() uint64        { return w.life.Load() }
func (w *fakeWire) Subprotocol() string { return "" }
func (w *fakeWire) Response() *http.Response {
	return &http.Response{StatusCode: 101, Header: http.Header{}}
}
func (w *fakeWire) LocalAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (w *fakeWire) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2} }

// texts is what was written as Text messages so far.
func (w *fakeWire) texts() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var s []string
	for _, m := range w.written {
		if m.Op == transport.OpText {
			s = append(s, string(m.Data))
		}
	}
	return s
}

func (w *fakeWire) closeFrame() (bool, int, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closeSent, w.closeCode, w.closeReason
}

// fakeNet is a fake dialer: each attempt takes the next scripted outcome, or
// waits for one (an attempt may be cut short by its ctx).
type fakeNet struct {
	outcomes chan fakeOutcome
	attempts atomic.Int32
	configs  chan *transport.Config
}

type fakeOutcome struct {
	w   *fakeWire
	err error
}

func newFakeNet() *fakeNet {
	return &fakeNet{outcomes: make(chan fakeOutcome, 100), configs: make(chan *transport.Config, 100)}
}

func (n *fakeNet) dial(ctx context.Context, cfg *transport.Config) (wire, error) {
	n.attempts.Add(1)
	n.configs <- cfg
	select {
	case o := <-n.outcomes:
		if o.err != nil {
			return nil, o.err
		}
		return o.w, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// accept scripts the next attempt to succeed and returns its connection.
func (n *fakeNet) accept() *fakeWire {
	w := newFakeWire()
	n.outcomes <- fakeOutcome{w: w}
	return w
}

// fakeClient is a client on the fake transport and the fake clock.
func fakeClient(t *testing.T, h Handler, o *Options) (*Client, *fakeNet, *fakeClock) {
	t.Helper()
	if o == nil {
		o = testOptions()
	}
	c, err := New("ws://fake.test/feed", h, o)
	if err != nil {
		t.Fatal(err)
	}
	n, clk := newFakeNet(), newFakeClock()
	c.dial, c.clk = n.dial, clk
	return c, n, clk
}

// runFake runs c until the test ends, and returns Run's result channel.
func runFake(t *testing.T, c *Client) <-chan error {
	t.Helper()
	res := make(chan error, 1)
	go func() { res <- c.Run(context.Background()) }()
	t.Cleanup(func() {
		_ = c.Close(context.Background(), CloseNormal, "")
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after Close")
		}
	})
	return res
}

// waitFor polls cond (on real time, bounded): for conditions no channel tells.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
