package wsclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/ff42ae21/wsclient/internal/goid"
	"github.com/ff42ae21/wsclient/internal/transport"
)

// Client keeps one WebSocket connection alive: it dials, calls the Handler, keeps
// the connection alive with pings and reconnects with backoff until it is told to
// stop. Create it with New and start it with Run; every method is goroutine-safe.
type Client struct {
	handler Handler
	opts    Options
	url     *url.URL // the first attempts'; OnDisconnect may choose another
	dial    dialer
	clk     clock
	m       machine
	stats   counters

	hmu sync.Mutex // the handler lock: the user's functions never overlap

	mu      sync.Mutex
	cur     *Conn      // the open connection, nil when none
	outbox  []*pending // frames waiting for the next connection
	stopped bool       // no more sends: Close was called or Run has ended
	infos   []any      // messages for HandleInfo
	infoGen chan struct{}
	// live is cur, for Send's fast path (no mu); nil from Close on.
	live atomic.Pointer[Conn]

	infoWake    chan struct{} // tells the owner that infos has messages (cap 1)
	closeOnce   sync.Once
	closeCtx    context.Context // done once Close was called
	closeCancel context.CancelFunc
	closeCode   int
	closeWhy    string
	abortOnce   sync.Once
	abort       chan struct{} // closed when Close's ctx ran out: drop the socket now
	running     atomic.Bool
	runDone     chan struct{}

	logBase atomic.Pointer[slog.Logger] // Options.Logger with the URL being dialed

	// The goroutines that run the user's functions: the owner (the one in
	// Run) and the current reader. A call from one of them is a call from
	// inside a callback, which must never wait for them.
	ownerG, readerG atomic.Uint64
}

// pending is a frame waiting in the outbox, and the channel its Send waits on.
type pending struct {
	f     Frame
	ctx   context.Context // the Send's: a frame put back after its ctx ended fails
	done  chan error
	state atomic.Int32 // pendingWaiting, pendingWriting or pendingAbandoned
}

const (
	pendingWaiting   = iota // in the outbox, or taken and not yet tried
	pendingWriting          // the owner is writing it: its Send waits for the result
	pendingAbandoned        // its Send gave up (ctx): never written
)

// New checks rawURL, handler and opts and returns a client ready to Run. It
// does no I/O. handler must not be nil (nor a nil pointer in an interface);
// opts may be nil for the defaults.
func New(rawURL string, handler Handler, opts *Options) (*Client, error) {
	if isNil(handler) {
		return nil, errors.New("wsclient: nil Handler")
	}
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{
		handler:  handler,
		opts:     o,
		dial:     dialTransport,
		clk:      systemClock{},
		infoWake: make(chan struct{}, 1),
		infoGen:  make(chan struct{}),
		abort:    make(chan struct{}),
		runDone:  make(chan struct{}),
	}
	c.url = u
	c.setLogURL(u)
	c.closeCtx, c.closeCancel = context.WithCancel(context.Background())
	c.m.init(c)
	return c, nil
}

// isNil reports whether h is nil or holds a nil pointer, map, slice, func or chan.
func isNil(h Handler) bool {
	if h == nil {
		return true
	}
	switch v := reflect.ValueOf(h); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return v.IsNil()
	}
	return false
}

// State is the client's current state.
func (c *Client) State() State { return c.m.current() }

// Done is closed once Run has returned: Terminate has run and no callback will
// run again. It stays open while Run has not been called, also after a Close
// (which makes a later Run return at once).
func (c *Client) Done() <-chan struct{} { return c.runDone }

// WaitOpen waits until a connection is open and returns nil, or returns
// ErrClosed once Run has ended (or Close was called), or ctx's error. Called
// from inside a callback it never waits: it returns nil when a connection is
// open and ErrNotConnected otherwise (the next connection comes only after
// the callback returns).
func (c *Client) WaitOpen(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	for {
		s, changed := c.m.watch()
		switch {
		case s == Open && c.connected(): // not while OnDisconnect decides
			return nil
		case s == Closed || c.closeCtx.Err() != nil:
			return ErrClosed
		case c.inCallback():
			return fmt.Errorf("%w: WaitOpen from inside a callback cannot wait", ErrNotConnected)
		}
		select {
		case <-changed:
		case <-c.closeCtx.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Send writes f on the open connection, on the caller's goroutine, and returns
// nil once the frame was handed to the socket ("sent" means written to the
// socket, not received by the server). ctx bounds the wait for the write lock
// or for a place in the outbox; Options.WriteTimeout bounds the write. A nil
// ctx means context.Background().
//
// While a connection is open, Send writes at once; while its OnConnect runs
// and the outbox is written, Send waits for them (a re-subscription or an
// authentication goes first), except a Send from inside OnConnect, which is
// one of OnConnect's frames. While none is open, Send
// returns ErrNotConnected, or with Options.OutboxSize > 0 it waits in the
// outbox (bounded by ctx) and the frame is written right after the next
// OnConnect; ErrOutboxFull when the outbox is full. From inside a callback, a
// Send that would have to wait for the next connection returns ErrNotConnected
// at once. Once Close was called or Run has ended, Send returns ErrClosed.
func (c *Client) Send(ctx context.Context, f Frame) error {
	if err := checkFrame(f); err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	// The common case, an open connection: no client lock.
	if conn := c.live.Load(); conn != nil {
		if err := conn.write(ctx, f); err != errNotWritten {
			return err
		}
	}
	for {
		c.mu.Lock()
		if c.stopped {
			c.mu.Unlock()
			return ErrClosed
		}
		if conn := c.cur; conn != nil && conn.writable() {
			c.mu.Unlock()
			// Until OnConnect's frames and the outbox are written, other
			// goroutines wait (a re-subscription or an authentication goes
			// first); a Send from inside OnConnect is one of its frames.
			select {
			case <-conn.ready:
			default:
				if !c.inCallback() {
					select {
					case <-conn.ready:
					case <-conn.done:
						continue // it ended during OnConnect: the outbox, or an error
					case <-ctx.Done():
						return ctx.Err()
					}
				}
			}
			if err := conn.write(ctx, f); err != errNotWritten {
				return err
			}
			continue // it ended or started closing first: nothing went out
		}
		switch {
		case c.opts.OutboxSize == 0:
			c.mu.Unlock()
			return ErrNotConnected
		case c.inCallback():
			c.mu.Unlock()
			return fmt.Errorf("%w: a Send from inside a callback cannot wait in the outbox for the next connection", ErrNotConnected)
		case len(c.outbox) >= c.opts.OutboxSize:
			c.mu.Unlock()
			return ErrOutboxFull
		}
		p := &pending{f: f, ctx: ctx, done: make(chan error, 1)}
		c.outbox = append(c.outbox, p)
		c.mu.Unlock()
		return c.awaitPending(ctx, p)
	}
}

// awaitPending waits for an outbox frame to be written or failed. If ctx ends
// while the frame still waits, it is abandoned (never written) and Send reports
// ctx's error; if the owner is writing it at that moment, the write's own result
// (bounded by WriteTimeout) is reported.
func (c *Client) awaitPending(ctx context.Context, p *pending) error {
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
	}
	if !p.state.CompareAndSwap(pendingWaiting, pendingAbandoned) {
		return <-p.done
	}
	c.mu.Lock()
	for i, q := range c.outbox {
		if q == p {
			c.outbox = append(c.outbox[:i], c.outbox[i+1:]...)
			break
		}
	}
	c.mu.Unlock()
	return ctx.Err()
}

// Info posts msg to HandleInfo, which runs in turn with the other callbacks,
// whatever the state, on the goroutine that called Run. It returns once msg is
// queued; while Options.InfoQueueSize messages wait, it waits for room,
// bounded by ctx (nil: no bound), except from inside a callback, where it
// returns ErrInfoQueueFull at once. After Close or the end of Run it returns
// ErrClosed; messages still queued when Run ends are dropped.
func (c *Client) Info(ctx context.Context, msg any) error {
	if ctx == nil {
		ctx = context.Background()
	}
	for {
		c.mu.Lock()
		if c.stopped {
			c.mu.Unlock()
			return ErrClosed
		}
		if len(c.infos) < c.opts.InfoQueueSize {
			c.infos = append(c.infos, msg)
			c.mu.Unlock()
			select {
			case c.infoWake <- struct{}{}:
			default:
			}
			return nil
		}
		room := c.infoGen
		c.mu.Unlock()
		if c.inCallback() {
			return ErrInfoQueueFull
		}
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close closes the client: it sends a close frame with code and reason
// (CloseNormal for a plain goodbye), waits for the server's close up to
// Options.CloseTimeout, and returns once Run has returned. A dial or a backoff
// wait in progress is cut short. ctx bounds the whole wait (nil: no bound);
// when it ends first the socket is dropped at once and ctx's error is
// returned. Close always ends the client: an invalid code or reason is
// reported as an error and replaced (1000; the reason made valid UTF-8 and
// cut to 123 bytes). Close may be called many times, before Run (Run then
// returns at once) and from inside a callback, where it starts the close and
// returns without waiting (Run returns after the callback).
func (c *Client) Close(ctx context.Context, code int, reason string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	bad := checkClose(code, reason)
	if bad != nil {
		code, reason = sanitizeClose(code, reason)
		bad = fmt.Errorf("%w; closing with %d instead", bad, code)
	}
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.stopped = true
		c.live.Store(nil)
		c.closeCode, c.closeWhy = code, reason
		c.mu.Unlock()
		c.closeCancel()
	})
	if !c.running.Load() || c.inCallback() {
		return bad
	}
	select {
	case <-c.runDone:
		return bad
	case <-ctx.Done():
		c.abortOnce.Do(func() { close(c.abort) })
		return ctx.Err()
	}
}

// callback runs fn with the handler under the handler lock, turning a panic into
// an error (with the stack logged) and wrapping a returned error.
func (c *Client) callback(name string, fn func(Handler) error) (err error) {
	c.hmu.Lock()
	defer c.hmu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			stack := debug.Stack()
			c.logger().Error("wsclient: callback panicked", "callback", name, "panic", r, "stack", string(stack))
			err = &CallbackError{Callback: name, Err: &PanicError{Value: r, Stack: stack}}
		}
	}()
	if err := fn(c.handler); err != nil {
		return &CallbackError{Callback: name, Err: err}
	}
	return nil
}

// inCallback reports whether the caller is one of the goroutines that run the
// user's functions, that is, whether it is inside one of them. It costs a
// stack read, so only paths that would wait for those goroutines ask.
func (c *Client) inCallback() bool {
	g := goid.ID() // the only way to tell a call from inside a callback
	return g == c.ownerG.Load() || g == c.readerG.Load()
}

// takeInfos removes the queued messages and wakes Info callers waiting for room.
func (c *Client) takeInfos() []any {
	c.mu.Lock()
	defer c.mu.Unlock()
	msgs := c.infos
	c.infos = nil
	if len(msgs) >= c.opts.InfoQueueSize {
		close(c.infoGen)
		c.infoGen = make(chan struct{})
	}
	return msgs
}

// handleInfos delivers the queued messages to HandleInfo with conn. The first
// error stops the delivery (the rest wait for the next turn) and is returned.
func (c *Client) handleInfos(conn *Conn) error {
	msgs := c.takeInfos()
	for i, msg := range msgs {
		if err := c.callback("HandleInfo", func(h Handler) error { return h.HandleInfo(conn, msg) }); err != nil {
			c.requeueInfos(msgs[i+1:])
			return err
		}
	}
	return nil
}

func (c *Client) requeueInfos(msgs []any) {
	if len(msgs) == 0 {
		return
	}
	c.mu.Lock()
	c.infos = append(msgs, c.infos...)
	c.mu.Unlock()
	select {
	case c.infoWake <- struct{}{}:
	default:
	}
}

// connected reports whether a connection is open.
func (c *Client) connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur != nil && !c.cur.ended()
}

// setCurrent makes conn the connection Send writes to (nil for none); the
// fast path opens once conn is ready.
func (c *Client) setCurrent(conn *Conn) {
	c.mu.Lock()
	c.cur = conn
	c.live.Store(nil)
	c.mu.Unlock()
	c.m.wake() // WaitOpen may have seen Open before the connection was set
}

// setReady marks conn's OnConnect frames and outbox written: every Send may
// write now, on the fast path.
func (c *Client) setReady(conn *Conn) {
	c.mu.Lock()
	close(conn.ready)
	if c.cur == conn && !c.stopped {
		c.live.Store(conn)
	}
	c.mu.Unlock()
}

// stop marks the client stopped, wakes Info callers waiting for room and
// fails every frame still waiting in the outbox with ErrClosed.
func (c *Client) stop() {
	c.mu.Lock()
	c.stopped = true
	c.live.Store(nil)
	close(c.infoGen)
	c.infoGen = make(chan struct{})
	waiting := c.outbox
	c.outbox = nil
	c.mu.Unlock()
	for _, p := range waiting {
		p.done <- ErrClosed
	}
}

// flushOutbox writes the frames that waited for this connection, after
// OnConnect's. Frames not yet tried when the connection ends go back to the
// head of the outbox for the next one.
func (c *Client) flushOutbox(conn *Conn) {
	// Frames are claimed one by one (waiting -> writing), so a Send whose ctx
	// ends while its frame is still in the batch abandons it, unwritten.
	for {
		c.mu.Lock()
		batch := c.outbox
		c.outbox = nil
		c.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		for i, p := range batch {
			if !p.state.CompareAndSwap(pendingWaiting, pendingWriting) {
				continue // abandoned by its Send
			}
			err := conn.write(context.Background(), p.f)
			if err == errNotWritten {
				c.requeue(batch[i:])
				return
			}
			p.done <- err
		}
	}
}

// requeue puts frames that were not written back at the head of the outbox for
// the next connection. The first was claimed for writing: if its Send's ctx has
// ended meanwhile, the Send waits for a result, so it gets its ctx's error now.
func (c *Client) requeue(frames []*pending) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keep := make([]*pending, 0, len(frames)+len(c.outbox))
	for _, p := range frames {
		if p.state.CompareAndSwap(pendingWriting, pendingWaiting) && p.ctx.Err() != nil {
			p.state.Store(pendingWriting)
			p.done <- p.ctx.Err()
			continue
		}
		if p.state.Load() == pendingWaiting {
			keep = append(keep, p)
		}
	}
	c.outbox = append(keep, c.outbox...)
}

// redact is u as it may appear in a log line or an error: no credentials, no
// query values (tokens often travel there).
func redact(u *url.URL) string { return transport.Redact(u) }

// logger is Options.Logger (the user's own attributes kept) with the
// client's: the redacted URL, the generation of the attempt and the state.
// Levels: Debug for state changes, Info for disconnects (one line per
// routine reconnect), Warn for what needs a look (no close answer, TLS
// verification off, a failing HandleInfo while down), Error for failing
// callbacks.
func (c *Client) logger() *slog.Logger {
	return c.logBase.Load().With("generation", c.stats.generation.Load(), "state", c.m.current())
}

func (c *Client) setLogURL(u *url.URL) {
	c.logBase.Store(c.opts.Logger.With("url", redact(u)))
}
