package wsclient

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// Client keeps one WebSocket connection alive: it dials, calls the Handler, keeps
// the connection alive with pings and reconnects with backoff until it is told to
// stop. Create it with New and start it with Run; every method is goroutine-safe.
type Client struct {
	handler Handler
	opts    Options
	m       machine

	// The handler lock, taken by the reader for every message, on a cache line
	// of its own: Send reads live and mu's neighbours on every call.
	_   [64]byte
	hmu sync.Mutex // the handler lock: callbacks never overlap
	_   [64]byte

	mu  sync.Mutex
	cur *Conn // the open connection, nil when none
	// live is cur once its outbox has drained, for Send's fast path (no mu);
	// nil while there is none, and from Close on.
	live    atomic.Pointer[Conn]
	outbox  []*pending // frames waiting for the next connection
	stopped bool       // no more sends: Close was called or Run has ended
	infos   []any      // messages for HandleInfo
	infoGen chan struct{}

	infoWake  chan struct{} // tells the owner that infos has messages (cap 1)
	closeOnce sync.Once
	closing   chan struct{} // closed by Close
	closeCode int
	closeWhy  string
	abortOnce sync.Once
	abort     chan struct{} // closed when Close's ctx ran out: drop the socket now
	running   atomic.Bool
	runDone   chan struct{}

	// Owned by the Run goroutine.
	url      *url.URL
	header   http.Header
	gen      uint64
	detached *Conn
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

// New checks rawURL and opts and returns a client ready to Run. It does no I/O.
// handler must not be nil; opts may be nil for the defaults.
func New(rawURL string, handler Handler, opts *Options) (*Client, error) {
	if handler == nil {
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
		url:      u,
		header:   o.Header,
		infoWake: make(chan struct{}, 1),
		infoGen:  make(chan struct{}),
		closing:  make(chan struct{}),
		abort:    make(chan struct{}),
		runDone:  make(chan struct{}),
	}
	c.m.log = o.Logger
	c.m.notify = o.OnStateChange
	return c, nil
}

// State is the client's current state.
func (c *Client) State() State { return c.m.current() }

// Send writes f on the open connection, on the caller's goroutine, and returns
// nil once the frame was handed to the socket. ctx bounds the wait for the write
// lock or for a place in the outbox; Options.WriteTimeout bounds the write.
//
// While no connection is open, Send returns ErrNotConnected at once, or with
// Options.OutboxSize > 0 it waits in the outbox (bounded by ctx) and the frame
// is written right after the next OnConnect; ErrOutboxFull when the outbox is full.
// Once Close was called or Run has ended, Send returns ErrClosed.
func (c *Client) Send(ctx context.Context, f Frame) error {
	if err := checkFrame(f); err != nil {
		return err
	}
	// The common case, an open connection past its outbox: no client lock.
	if conn := c.live.Load(); conn != nil {
		if err := conn.write(ctx, f); err != errConnEnded {
			return err
		}
	}
	for {
		c.mu.Lock()
		if c.stopped {
			c.mu.Unlock()
			return ErrClosed
		}
		conn := c.cur
		if conn != nil && !conn.ended() && !conn.closeSent.Load() {
			c.mu.Unlock()
			select {
			case <-conn.ready:
			default: // OnConnect or the outbox flush is still running: wait
				select {
				case <-conn.ready:
				case <-conn.done:
					continue // it ended while OnConnect ran: try the outbox
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			err := conn.write(ctx, f)
			if err == errConnEnded {
				continue // nothing was written: try the outbox
			}
			return err
		}
		if c.opts.OutboxSize == 0 {
			c.mu.Unlock()
			return ErrNotConnected
		}
		if len(c.outbox) >= c.opts.OutboxSize {
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

// Info posts msg to HandleInfo, which runs on the client's goroutine in turn
// with the other callbacks, whatever the state. It returns once msg is queued;
// while Options.InfoQueueSize messages wait, it waits for room, bounded by ctx.
// After Close or the end of Run it returns ErrClosed; messages still queued
// when Run ends are dropped.
func (c *Client) Info(ctx context.Context, msg any) error {
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
// wait in progress is cut short. ctx bounds the whole wait; when it ends first
// the socket is dropped at once and ctx's error is returned. Close may be called
// many times and before Run (Run then returns at once). Do not call it from a
// callback: it waits for Run, which waits for the callback; use Conn.Close there.
func (c *Client) Close(ctx context.Context, code int, reason string) error {
	if err := checkClose(code, reason); err != nil {
		return err
	}
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.stopped = true
		c.live.Store(nil)
		c.closeCode, c.closeWhy = code, reason
		c.mu.Unlock()
		close(c.closing)
	})
	if !c.running.Load() {
		return nil
	}
	select {
	case <-c.runDone:
		return nil
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
			c.opts.Logger.Error("wsclient: callback panicked", "callback", name, "panic", r, "stack", string(stack))
			err = &callbackError{callback: name, err: &PanicError{Value: r, Stack: stack}}
		}
	}()
	if err := fn(c.handler); err != nil {
		return &callbackError{callback: name, err: err}
	}
	return nil
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

// failOutbox fails every frame still waiting.
func (c *Client) failOutbox(err error) {
	c.mu.Lock()
	waiting := c.outbox
	c.outbox = nil
	c.mu.Unlock()
	for _, p := range waiting {
		p.done <- err
	}
}

// flushOutbox writes the frames that waited for this connection, after
// OnConnect's, then lets direct sends through. Frames not yet tried when the
// connection ends go back to the head of the outbox for the next one.
func (c *Client) flushOutbox(conn *Conn) {
	// Frames are claimed one by one (waiting -> writing), so a Send whose ctx
	// ends while its frame is still in the batch abandons it, unwritten.
	for {
		c.mu.Lock()
		batch := c.outbox
		c.outbox = nil
		if len(batch) == 0 {
			close(conn.ready)
			if !c.stopped && c.cur == conn {
				c.live.Store(conn)
			}
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		for i, p := range batch {
			if !p.state.CompareAndSwap(pendingWaiting, pendingWriting) {
				continue // abandoned by its Send
			}
			err := conn.write(context.Background(), p.f)
			if err == errConnEnded {
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
