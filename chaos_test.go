package wsclient

// Chaos tests: the client under network faults injected by wstest's Network
// between it and a wstest server on loopback, restarts by Server.Down and Up.
// Every test runs a server that numbers its frames per connection, senders
// that count every Send's result, and a handler that checks, frame by frame,
// the invariants of the design:
//
//   - frames of one connection arrive complete, in order, with no gap;
//   - a frame is delivered only for the current connection (Conn.Generation()
//     is the one of the last OnConnect, and the server connection behind it is
//     new), never from a stale one;
//   - every OnConnect is followed by exactly one OnDisconnect, failed attempts
//     get one OnDisconnect each, callbacks never overlap, Terminate runs once;
//   - OnConnect's frames go out before the outbox and new sends;
//   - every Send returns, nil or an error; a frame the server echoed was a
//     Send that returned nil.
//
// Each test is bounded in count and time; timings are milliseconds via Options.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/wstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// chaosLeakCheck checks, after every other cleanup of t, that no goroutine
// started during t is left (goleak in TestMain only checks the whole package).
func chaosLeakCheck(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// chaosOptions are testOptions with an outbox and short backoff.
func chaosOptions() *Options {
	o := testOptions()
	o.OutboxSize = 2 // smaller than the number of senders: ErrOutboxFull happens
	o.Backoff = Backoff{Initial: 2 * time.Millisecond, Max: 20 * time.Millisecond, Multiplier: 2}
	return o
}

// chaosHelloSender marks the frame OnConnect sends; its number is the generation.
const chaosHelloSender = 0xFF

// chaosPayload is the frame sender s sends as its k-th: 1 byte s, 8 bytes k,
// then size bytes of a pattern derived from s and k (checked on the echo).
func chaosPayload(s byte, k uint64, size int) []byte {
	p := make([]byte, 9+size)
	p[0] = s
	binary.BigEndian.PutUint64(p[1:9], k)
	for i := range size {
		p[9+i] = byte(k*7 + uint64(i)*13 + uint64(s))
	}
	return p
}

// chaosParsePayload checks a payload built by chaosPayload.
func chaosParsePayload(p []byte) (s byte, k uint64, err error) {
	if len(p) < 9 {
		return 0, 0, fmt.Errorf("payload of %d bytes is too short", len(p))
	}
	s, k = p[0], binary.BigEndian.Uint64(p[1:9])
	if !bytes.Equal(p, chaosPayload(s, k, len(p)-9)) {
		return s, k, fmt.Errorf("payload %d/%d of %d bytes is corrupt", s, k, len(p))
	}
	return s, k, nil
}

// chaosServe drives one server connection until it ends or ctx does, and
// numbers everything it sends: each frame is 8 bytes of connection id (unique
// across server restarts), 8 bytes of sequence number (from 1, per
// connection), then the payload: empty for a tick (sent every tick), or the
// client's message it echoes.
func chaosServe(ctx context.Context, sc *wstest.Conn, id uint64, tick time.Duration) {
	var mu sync.Mutex
	var seq uint64
	send := func(payload []byte) error {
		mu.Lock()
		defer mu.Unlock()
		seq++
		msg := make([]byte, 16+len(payload))
		binary.BigEndian.PutUint64(msg[0:8], id)
		binary.BigEndian.PutUint64(msg[8:16], seq)
		copy(msg[16:], payload)
		return sc.SendBinary(msg)
	}
	defer everyTick(tick, func() error { return send(nil) })() // a send fails once the connection ended
	for {
		m, err := sc.ReadMessage(ctx) // fails once the connection ended and all was read
		if err != nil {
			return
		}
		if send(m.Data) != nil {
			return
		}
	}
}

// chaosRig is a chaos server (a wstest server whose every connection runs
// chaosServe), and the handler of the client that start runs through its
// network.
type chaosRig struct {
	ids  atomic.Uint64 // the server connection ids, across restarts
	srv  *wstest.Server
	net  *wstest.Network
	tap  wireTap // the client's sockets
	h    *chaosHandler
	c    *Client
	wait func() error
}

// newChaosRig checks t for leaked goroutines and starts the server, ticking
// every tick on each connection.
func newChaosRig(t *testing.T, tick time.Duration) *chaosRig {
	t.Helper()
	chaosLeakCheck(t)
	r := &chaosRig{h: newChaosHandler()}
	// The goroutines below wait on the server until the test ends (their ctx),
	// not for the default 5 s; WaitTimeout also bounds the server's writes.
	r.srv = wstest.Start(t, &wstest.Options{WaitTimeout: time.Minute})
	r.net = r.srv.Network()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			sc, err := r.srv.NextConn(ctx)
			switch {
			case ctx.Err() != nil, errors.Is(err, wstest.ErrServerClosed):
				return
			case err != nil:
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				chaosServe(ctx, sc, r.ids.Add(1), tick)
			}()
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() }) // after the client's cleanup, before the server's
	return r
}

// start runs a client with options o through the server's network.
func (r *chaosRig) start(t *testing.T, o *Options) *Client {
	t.Helper()
	o.NetDialContext = r.tap.dial
	r.c = mustNew(t, r.srv.URL(), r.h, o)
	r.wait = startClient(t, r.c)
	return r.c
}

// live is the number of sockets the client holds open and of connections
// open on the server.
func (r *chaosRig) live() (client, server int) {
	return int(r.tap.open.Load()), r.srv.Stats().Open
}

// exactlyLive waits until the client holds n sockets open and the server has
// n open connections.
func (r *chaosRig) exactlyLive(t *testing.T, n int) {
	t.Helper()
	ok := assert.Eventually(t, func() bool { c, s := r.live(); return c == n && s == n }, 5*time.Second, time.Millisecond,
		"exactly %d live connection(s)", n)
	if !ok {
		c, s := r.live()
		t.Fatalf("client sockets open %d, server connections open %d", c, s)
	}
}

// stop closes the client normally and checks that Run returns nil.
func (r *chaosRig) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, r.c.Close(ctxTimeout(t, 5*time.Second), CloseNormal, ""))
	require.NoError(t, r.wait())
}

// verify stops the senders (if any), checks their count and the handler's
// invariants.
func (r *chaosRig) verify(t *testing.T, snd *chaosSenders) {
	t.Helper()
	if snd != nil {
		snd.finish(t)
	}
	r.h.verify(t, snd)
}

type chaosKey struct {
	sender byte
	k      uint64
}

// chaosHandler checks the invariants listed at the top of this file as the
// callbacks happen. The client serialises the callbacks; mu is only there for
// the test goroutine, which polls the state.
type chaosHandler struct {
	mu sync.Mutex

	// The current connection.
	open     bool
	conn     *Conn
	gen      uint64
	serverID uint64
	lastSeq  uint64
	ticks    int // ticks received on the current connection
	lastK    map[byte]uint64
	sawEcho  bool
	helloOK  bool // OnConnect's frame was written

	inside      atomic.Int32
	seenIDs     map[uint64]uint64 // server connection id -> generation
	echoed      map[chaosKey]bool
	echoes      int
	frames      int
	controls    int
	connects    int
	lost        int // OnDisconnect after an open connection
	failed      int // OnDisconnect after a failed attempt
	lastAttempt int
	discs       []Disconnect
	terminated  int
	termErr     error
	violations  []string

	allowStop bool                      // a Stop suggestion is expected (else it is a violation)
	decide    func(Disconnect) Decision // nil: follow Suggested
}

func newChaosHandler() *chaosHandler {
	return &chaosHandler{seenIDs: map[uint64]uint64{}, echoed: map[chaosKey]bool{}}
}

func (h *chaosHandler) violate(format string, args ...any) {
	if len(h.violations) < 20 {
		h.violations = append(h.violations, fmt.Sprintf(format, args...))
	}
}

func (h *chaosHandler) enter() func() {
	if h.inside.Add(1) != 1 {
		h.mu.Lock()
		h.violate("callbacks overlap")
		h.mu.Unlock()
	}
	return func() { h.inside.Add(-1) }
}

func (h *chaosHandler) OnConnect(c *Conn) error {
	defer h.enter()()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.open {
		h.violate("OnConnect of generation %d while generation %d is open", c.Generation(), h.gen)
	}
	if c.Generation() <= h.gen {
		h.violate("OnConnect of generation %d after generation %d", c.Generation(), h.gen)
	}
	h.open, h.conn, h.gen = true, c, c.Generation()
	h.serverID, h.lastSeq, h.ticks, h.lastK, h.sawEcho = 0, 0, 0, map[byte]uint64{}, false
	h.connects++
	// Re-subscribe: this frame must be the first of this connection the server sees.
	h.helloOK = c.SendBinary(chaosPayload(chaosHelloSender, c.Generation(), 3)) == nil
	return nil
}

func (h *chaosHandler) HandleFrame(c *Conn, f Frame) error {
	defer h.enter()()
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.open || c.Generation() != h.gen {
		h.violate("frame of generation %d delivered while the current one is %d (open %v)", c.Generation(), h.gen, h.open)
		return nil
	}
	if f.Type == Ping || f.Type == Pong {
		h.controls++
		return nil
	}
	h.frames++
	if f.Type != Binary || len(f.Data) < 16 {
		h.violate("unexpected %v frame of %d bytes", f.Type, len(f.Data))
		return nil
	}
	id, seq := binary.BigEndian.Uint64(f.Data[0:8]), binary.BigEndian.Uint64(f.Data[8:16])
	if h.serverID == 0 {
		if g, seen := h.seenIDs[id]; seen {
			h.violate("generation %d got a frame of server connection %d, which belonged to generation %d", h.gen, id, g)
		}
		h.serverID = id
		h.seenIDs[id] = h.gen
	} else if id != h.serverID {
		h.violate("generation %d mixes server connections %d and %d", h.gen, h.serverID, id)
	}
	if seq != h.lastSeq+1 {
		h.violate("generation %d: server frame %d after %d", h.gen, seq, h.lastSeq)
	}
	h.lastSeq = seq
	payload := f.Data[16:]
	if len(payload) == 0 {
		h.ticks++
		return nil
	}
	s, k, err := chaosParsePayload(payload)
	if err != nil {
		h.violate("generation %d: %v", h.gen, err)
		return nil
	}
	first := !h.sawEcho
	h.sawEcho = true
	if s == chaosHelloSender {
		if !first || k != h.gen {
			h.violate("generation %d: OnConnect's frame (%d) is not the first echoed", h.gen, k)
		}
		return nil
	}
	if first && h.helloOK {
		h.violate("generation %d: frame %d/%d echoed before OnConnect's frame", h.gen, s, k)
	}
	if k <= h.lastK[s] {
		h.violate("generation %d: sender %d's frame %d echoed after its frame %d", h.gen, s, k, h.lastK[s])
	}
	h.lastK[s] = k
	key := chaosKey{s, k}
	if h.echoed[key] {
		h.violate("frame %d/%d echoed twice", s, k)
	}
	h.echoed[key] = true
	h.echoes++
	return nil
}

func (h *chaosHandler) HandleInfo(*Conn, any) error { return nil }

func (h *chaosHandler) OnDisconnect(d Disconnect) Decision {
	defer h.enter()()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.discs = append(h.discs, d)
	if d.Err == nil {
		h.violate("OnDisconnect without a cause: %+v", d)
	}
	if d.Connected {
		if !h.open {
			h.violate("OnDisconnect of a connection while none is open: %v", d.Err)
		}
		h.lost++
	} else {
		if h.open {
			h.violate("OnDisconnect of a failed attempt while generation %d is open: %v", h.gen, d.Err)
		}
		h.failed++
	}
	h.open = false
	want := h.lastAttempt + 1
	if d.Final || deliberate(d.Err) {
		want = h.lastAttempt // Client.Close, ctx's end, Conn.Close: no failure
	}
	if d.Attempt != want {
		h.violate("Attempt %d after %d, want %d (StableAfter is not reached in these tests)", d.Attempt, h.lastAttempt, want)
	}
	h.lastAttempt = d.Attempt
	if d.Suggested.IsStop() && !d.Final && !h.allowStop {
		h.violate("policy suggests Stop after %v", d.Err)
	}
	if h.decide != nil {
		return h.decide(d)
	}
	return Decision{}
}

func (h *chaosHandler) Terminate(err error) {
	defer h.enter()()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.terminated++
	h.termErr = err
}

// waitFor polls cond (called with h.mu held) until it holds, for at most 10s.
func (h *chaosHandler) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ok := assert.Eventually(t, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return cond()
	}, 10*time.Second, time.Millisecond, what)
	if !ok {
		h.mu.Lock()
		t.Logf("handler: open %v gen %d ticks %d connects %d lost %d failed %d violations %q",
			h.open, h.gen, h.ticks, h.connects, h.lost, h.failed, h.violations)
		h.mu.Unlock()
		t.FailNow()
	}
}

// waitConnected waits for a connection newer than after that got ticks server ticks,
// and returns its generation.
func (h *chaosHandler) waitConnected(t *testing.T, after uint64, ticks int) uint64 {
	t.Helper()
	h.waitFor(t, fmt.Sprintf("a connection after generation %d with %d server frames", after, ticks), func() bool {
		return h.open && h.gen > after && h.ticks >= ticks
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gen
}

func (h *chaosHandler) snapshot() (gen uint64, connects, lost, failed int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gen, h.connects, h.lost, h.failed
}

// verify checks the invariants once Run has returned.
func (h *chaosHandler) verify(t *testing.T, snd *chaosSenders) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	assert.Empty(t, h.violations, "handler invariants")
	assert.Equal(t, h.connects, h.lost, "every OnConnect is paired with exactly one OnDisconnect")
	assert.Equal(t, 1, h.terminated, "Terminate runs exactly once")
	if snd != nil {
		var notOK []chaosKey
		for key := range h.echoed {
			if !snd.okKeys[key] {
				notOK = append(notOK, key)
			}
		}
		assert.Empty(t, notOK, "frames echoed although their Send returned an error")
	}
}

// chaosSenders run Client.Send from several goroutines and count the results.
type chaosSenders struct {
	attempted atomic.Int64
	stop      chan struct{}
	stopOnce  sync.Once
	done      chan struct{}

	mu     sync.Mutex
	ok     int
	errs   map[string]int
	sample map[string]string // one message per error class
	okKeys map[chaosKey]bool
}

// startChaosSenders starts n senders; each sends up to max frames of size
// bytes, one per every, through Client.Send with a 100ms ctx.
func startChaosSenders(c *Client, n, size, max int, every time.Duration) *chaosSenders {
	s := &chaosSenders{
		stop: make(chan struct{}), done: make(chan struct{}),
		errs: map[string]int{}, sample: map[string]string{}, okKeys: map[chaosKey]bool{},
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func(sender byte) {
			defer wg.Done()
			tk := time.NewTicker(every)
			defer tk.Stop()
			for k := uint64(1); k <= uint64(max); k++ {
				select {
				case <-s.stop:
					return
				case <-tk.C:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				s.attempted.Add(1)
				err := c.Send(ctx, BinaryFrame(chaosPayload(sender, k, size)))
				cancel()
				s.record(chaosKey{sender, k}, err)
				if errors.Is(err, ErrClosed) {
					return
				}
			}
		}(byte(i))
	}
	go func() { wg.Wait(); close(s.done) }()
	return s
}

func (s *chaosSenders) record(key chaosKey, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.ok++
		s.okKeys[key] = true
		return
	}
	class := "other"
	switch {
	case errors.Is(err, ErrOutboxFull):
		class = "outbox full"
	case errors.Is(err, context.DeadlineExceeded):
		class = "ctx deadline"
	case errors.Is(err, ErrClosed):
		class = "closed"
	case errors.Is(err, ErrNotConnected):
		class = "not connected"
	case strings.Contains(err.Error(), "write"):
		class = "write failed"
	}
	s.errs[class]++
	if _, ok := s.sample[class]; !ok {
		s.sample[class] = err.Error()
	}
}

// wait waits for the senders to finish by themselves (within 10s).
func (s *chaosSenders) wait(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("a Send did not return within 10s")
	}
}

// finish stops the senders, waits for them and checks the count.
func (s *chaosSenders) finish(t *testing.T) {
	t.Helper()
	s.stopOnce.Do(func() { close(s.stop) })
	s.wait(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	failed := 0
	for _, n := range s.errs {
		failed += n
	}
	assert.Equal(t, s.attempted.Load(), int64(s.ok+failed), "sent_ok + sent_err == attempted")
	assert.Zero(t, s.errs["not connected"], "with an outbox, Client.Send never returns ErrNotConnected")
	assert.Zero(t, s.errs["other"], "unexpected Send errors: %v", s.sample)
	t.Logf("sends: attempted %d, ok %d, errors %v %v", s.attempted.Load(), s.ok, s.errs, s.sample)
}

// TestChaosServerKilledAndRestarted50Times kills the server 50 times in a
// row (Down: all its connections dropped without a close frame, new ones
// refused) and brings it back on the same address (Up). Every other time the
// server stays down until the client has failed an attempt; otherwise it
// comes back at once.
func TestChaosServerKilledAndRestarted50Times(t *testing.T) {
	const restarts = 50
	r := newChaosRig(t, 2*time.Millisecond)
	h := r.h
	c := r.start(t, chaosOptions())
	snd := startChaosSenders(c, 3, 32, 1_000_000, time.Millisecond)
	start := time.Now()

	gen := h.waitConnected(t, 0, 2)
	for i := range restarts {
		_, _, _, failed := h.snapshot()
		r.srv.Down() // kill: every connection dropped without a close frame
		if i%2 == 1 {
			h.waitFor(t, "a failed attempt while the server is down", func() bool { return h.failed > failed })
		}
		r.srv.Up()
		gen = h.waitConnected(t, gen, 2)
	}
	t.Logf("%d restarts in %v", restarts, time.Since(start))

	r.exactlyLive(t, 1)
	// Still one, and the same, after 20 more server frames.
	h.mu.Lock()
	ticks := h.ticks
	h.mu.Unlock()
	h.waitFor(t, "20 more server frames", func() bool { return h.ticks >= ticks+20 })
	g, connects, lost, failed := h.snapshot()
	assert.Equal(t, gen, g, "no reconnect once the server stays up")
	cl, sv := r.live()
	assert.Equal(t, 1, cl, "sockets the client holds open")
	assert.Equal(t, 1, sv, "live connections on the server")
	assert.Equal(t, Open, c.State())
	assert.Equal(t, restarts+1, connects)
	assert.Equal(t, restarts, lost)
	t.Logf("connects %d, lost %d, failed attempts %d, sockets dialed %d, refused while down %d",
		connects, lost, failed, r.tap.dialed.Load(), r.srv.Stats().Refused)

	r.stop(t)
	r.verify(t, snd)
	r.exactlyLive(t, 0)
}

// TestChaosConnectionReset resets (TCP RST both ways) the connection 10 times:
// each is a lost connection that the policy reconnects.
func TestChaosConnectionReset(t *testing.T) {
	r := newChaosRig(t, 2*time.Millisecond)
	h := r.h
	c := r.start(t, chaosOptions())
	snd := startChaosSenders(c, 3, 64, 1_000_000, time.Millisecond)

	gen := h.waitConnected(t, 0, 2)
	for range 10 {
		r.net.ResetAll()
		gen = h.waitConnected(t, gen, 2)
	}
	r.exactlyLive(t, 1)
	r.stop(t)
	r.verify(t, snd)

	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range h.discs[:len(h.discs)-1] { // the last one is Close's
		if !d.Connected {
			continue
		}
		assert.False(t, d.Suggested.IsStop(), "a reset connection is retried: %v", d.Err)
		assert.Positive(t, d.Suggested.Delay(), "with the backoff's delay")
		if CloseStatus(d.Err) != -1 {
			assert.Equal(t, CloseAbnormal, CloseStatus(d.Err), "a reset is an abnormal close, not a close frame: %v", d.Err)
		}
	}
	t.Logf("connects %d, lost %d, failed %d; first cause: %v", h.connects, h.lost, h.failed, h.discs[0].Err)
}

// TestChaosLatency300ms adds 300 ms each way: the connection survives, with
// keepalive on, every frame arrives intact and in order, the keepalive RTT
// shows the delay, and a reconnect and the close handshake work through it.
func TestChaosLatency300ms(t *testing.T) {
	const latency = 300 * time.Millisecond
	r := newChaosRig(t, 20*time.Millisecond)
	h, nw := r.h, r.net
	o := chaosOptions()
	// PingInterval above the RTT (see TestChaosKeepaliveRTTAboveInterval).
	o.PingInterval, o.PongTimeout = time.Second, time.Second
	o.CloseTimeout = 3 * time.Second
	c := r.start(t, o)
	gen := h.waitConnected(t, 0, 2)

	nw.SetLatency(latency)
	start := time.Now()
	snd := startChaosSenders(c, 2, 1024, 20, 10*time.Millisecond)
	snd.wait(t)
	h.waitFor(t, "all 40 frames echoed", func() bool { return h.echoes == 40 })
	assert.GreaterOrEqual(t, time.Since(start), 2*latency, "the echoes took a round trip through the delay")
	h.waitFor(t, "a keepalive RTT of at least 2x the latency", func() bool { return h.conn.RTT() >= 2*latency })
	g, connects, lost, _ := h.snapshot()
	assert.Equal(t, gen, g)
	assert.Equal(t, 1, connects)
	assert.Zero(t, lost, "the connection survived the latency")

	// A reconnect through the delay.
	nw.ResetAll()
	h.waitConnected(t, gen, 2)
	closeStart := time.Now()
	r.stop(t)
	assert.Less(t, time.Since(closeStart), o.CloseTimeout, "the server answered the close through the delay")
	r.verify(t, snd)
	assert.Equal(t, 40, snd.ok, "every Send on the open connection succeeded")
	h.mu.Lock()
	defer h.mu.Unlock()
	assert.Len(t, h.echoed, 40)
	var ce *CloseError
	if d := h.discs[len(h.discs)-1]; assert.ErrorAs(t, d.Err, &ce) {
		assert.True(t, ce.Local)
		assert.Equal(t, CloseNormal, ce.Code)
	}
}

// TestChaosBandwidthCap caps each direction at 64 KiB/s and sends 48 KiB: the
// connection survives, with keepalive on, and every frame arrives intact and
// in order, at the capped rate.
func TestChaosBandwidthCap(t *testing.T) {
	const rate = 64 << 10
	r := newChaosRig(t, 50*time.Millisecond)
	h, nw := r.h, r.net
	o := chaosOptions()
	o.PingInterval, o.PongTimeout = 50*time.Millisecond, time.Second
	c := r.start(t, o)
	gen := h.waitConnected(t, 0, 1)

	nw.SetBandwidth(rate)
	start := time.Now()
	snd := startChaosSenders(c, 2, 2048, 12, time.Millisecond)
	snd.wait(t)
	h.waitFor(t, "all 24 frames echoed", func() bool { return h.echoes == 24 })
	elapsed := time.Since(start)
	// 24 x 2 KiB at 64 KiB/s is 0.75 s; both directions overlap.
	assert.GreaterOrEqual(t, elapsed, 500*time.Millisecond, "the cap was applied")
	g, connects, lost, _ := h.snapshot()
	assert.Equal(t, gen, g)
	assert.Equal(t, 1, connects)
	assert.Zero(t, lost, "the connection survived the bandwidth cap")
	t.Logf("48 KiB echoed at %d KiB/s in %v", rate>>10, elapsed)

	nw.SetBandwidth(0)
	r.stop(t)
	r.verify(t, snd)
	assert.Equal(t, 24, snd.ok)
}

// TestChaosBlackhole silently drops everything: keepalive finds the dead peer
// within PingInterval+PongTimeout, the reconnect attempts time out while the
// path is dead, and the client reconnects once it is back. Close on a dead
// path returns after CloseTimeout.
func TestChaosBlackhole(t *testing.T) {
	r := newChaosRig(t, 5*time.Millisecond)
	h, nw := r.h, r.net
	o := chaosOptions()
	o.PingInterval, o.PongTimeout = 50*time.Millisecond, 150*time.Millisecond
	o.HandshakeTimeout = 300 * time.Millisecond
	o.CloseTimeout = 300 * time.Millisecond
	c := r.start(t, o)
	snd := startChaosSenders(c, 2, 32, 1_000_000, 2*time.Millisecond)
	gen := h.waitConnected(t, 0, 5)

	nw.SetBlackhole(true)
	start := time.Now()
	h.waitFor(t, "the dead peer found", func() bool { return h.lost == 1 })
	detect := time.Since(start)
	h.waitFor(t, "an attempt timed out on the dead path", func() bool { return h.failed >= 1 })
	nw.SetBlackhole(false)
	h.waitConnected(t, gen, 5)

	h.mu.Lock()
	lostD, failedD := h.discs[0], h.discs[1]
	h.mu.Unlock()
	assert.ErrorIs(t, lostD.Err, ErrKeepaliveTimeout)
	assert.True(t, lostD.Connected)
	assert.False(t, lostD.Suggested.IsStop(), "a keepalive timeout is retried")
	assert.False(t, failedD.Connected)
	assert.Contains(t, failedD.Err.Error(), "timed out")
	assert.False(t, failedD.Suggested.IsStop(), "a handshake timeout is retried")
	// Worst case is PingInterval + PongTimeout = 200ms; allow for -race on 2 cores.
	assert.Less(t, detect, time.Second, "detection time")
	t.Logf("blackhole detected in %v: %v; then %v", detect, lostD.Err, failedD.Err)

	// Close on a dead path: bounded by CloseTimeout.
	nw.SetBlackhole(true)
	closeStart := time.Now()
	r.stop(t)
	assert.Less(t, time.Since(closeStart), o.CloseTimeout+time.Second)
	nw.SetBlackhole(false)
	r.verify(t, snd)
	r.exactlyLive(t, 0)
}

// TestChaosKeepaliveRTTAboveInterval: on a path whose round trip (300 ms) is
// longer than PingInterval (100 ms), the connection survives and Conn.RTT
// still reports the round trip of the keepalive pings.
func TestChaosKeepaliveRTTAboveInterval(t *testing.T) {
	const latency = 150 * time.Millisecond
	r := newChaosRig(t, 20*time.Millisecond)
	h := r.h
	r.net.SetLatency(latency)
	o := chaosOptions()
	o.PingInterval, o.PongTimeout = 100*time.Millisecond, time.Second
	r.start(t, o)
	h.waitConnected(t, 0, 2)
	ok := assert.Eventually(t, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.conn.RTT() >= 2*latency
	}, 3*time.Second, time.Millisecond, "Conn.RTT() reports the round trip of a ping")
	h.mu.Lock()
	rtt, pongs := h.conn.RTT(), h.controls
	h.mu.Unlock()
	t.Logf("RTT() = %v after %d pongs", rtt, pongs)
	assert.Positive(t, pongs, "pongs arrived")
	r.stop(t)
	r.verify(t, nil)
	if !ok {
		t.Log("hint: a pong must be matched to the ping it answers, not only to the last ping sent: " +
			"with RTT > PingInterval every pong answers an older ping")
	}
}
