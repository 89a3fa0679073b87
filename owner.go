package wsclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/ff42ae21/wsclient/internal/goid"
	"github.com/ff42ae21/wsclient/internal/transport"
)

// Run connects and keeps the connection alive until a Stop decision, Close or
// the end of ctx. It returns nil after a deliberate close (Client.Close, or the
// handler's Conn.Close followed by the suggested Stop), ctx.Err() when ctx ends,
// and otherwise the Disconnect.Err that led to Stop. Run may be called once;
// a nil ctx is an error. When Run returns, no goroutine of the client is left
// and every frame that waited in the outbox has had its Send fail with
// ErrClosed.
func (c *Client) Run(ctx context.Context) error {
	if ctx == nil {
		return errors.New("wsclient: Run with a nil context")
	}
	if !c.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer close(c.runDone)
	c.ownerG.Store(goid.ID())
	defer c.ownerG.Store(0)
	o := &owner{c: c, ctx: ctx, url: c.url, header: c.opts.Header, bo: newBackoff(c.opts.Backoff)}
	err := o.run()
	c.stop()
	if t, ok := c.handler.(Terminator); ok {
		if terr := c.callback("Terminate", func(Handler) error { t.Terminate(err); return nil }); terr != nil {
			c.logger().Error("wsclient: Terminate failed", "err", terr)
		}
	}
	return err
}

// input is one event for the state machine, with what it carries.
type input struct {
	ev    event
	err   error         // evDialFailed: why
	w     wire          // evDialed: the new connection
	delay time.Duration // evReconnect
}

type dialResult struct {
	w   wire
	err error
}

// owner is the state of the goroutine that runs Run: everything here belongs
// to it alone.
type owner struct {
	c      *Client
	ctx    context.Context
	url    *url.URL
	header http.Header
	gen    uint64

	queue []input // events the actions posted, handled before waiting again

	dialRes    chan dialResult // the attempt's result, nil when no dial is under way
	dialCancel context.CancelFunc

	conn       *Conn
	ka         *keepalive
	closeTimer timer
	retryTimer timer
	detached   *Conn

	attempt   int
	certDrops int           // attempts in a row that ended in ErrCertDropped
	uptime    time.Duration // of the last connection, for StateChange
	bo        *backoffPolicy
	result    error // what Run returns

	// Sources that stay ready once they fired, waited on no more after that.
	closeNoted, ctxSeen, abortSeen bool
}

// run is the owner loop: wait for an event, look it up in the table, act.
func (o *owner) run() error {
	o.post(input{ev: evRun})
	for o.c.m.current() != Closed {
		o.handle(o.next())
	}
	return o.result
}

// handle applies the table's row for in in the current state.
func (o *owner) handle(in input) {
	from := o.c.m.current()
	t, ok := transitions[from][in.ev]
	if !ok {
		o.c.logger().Debug("wsclient: event ignored", "event", in.ev)
		return
	}
	o.c.m.set(t.to, in, o.gen, o.uptime)
	t.do(o, in)
}

func (o *owner) post(in input) { o.queue = append(o.queue, in) }

// next returns the next event: one an action posted, else the first thing
// that happens among those the owner waits for.
func (o *owner) next() input {
	if len(o.queue) > 0 {
		in := o.queue[0]
		o.queue = o.queue[1:]
		return in
	}
	c := o.c
	var lost, connClose <-chan struct{}
	if o.conn != nil {
		lost, connClose = o.conn.readerDone, o.conn.closeStart
		if o.closeTimer != nil {
			connClose = nil // seen already
		}
	}
	closing, abort := c.closeCtx.Done(), (<-chan struct{})(c.abort)
	if o.closeNoted {
		closing = nil
	}
	if o.abortSeen {
		abort = nil
	}
	ctxDone := o.ctx.Done()
	if o.ctxSeen {
		ctxDone = nil
	}
	select {
	case r := <-o.dialRes:
		o.dialRes = nil
		o.dialCancel()
		if r.err != nil {
			return input{ev: evDialFailed, err: r.err}
		}
		return input{ev: evDialed, w: r.w}
	case <-lost:
		return input{ev: evLost}
	case <-c.infoWake:
		return input{ev: evInfo}
	case <-closing:
		o.closeNoted = true
		return input{ev: evClose}
	case <-connClose:
		return input{ev: evConnClose}
	case <-timerC(o.closeTimer):
		return input{ev: evCloseTimeout}
	case <-abort:
		o.abortSeen = true
		return input{ev: evAbort}
	case <-ctxDone:
		o.ctxSeen = true
		return input{ev: evCtxDone, err: o.ctx.Err()}
	case <-o.keepaliveC():
		return input{ev: evPing}
	case <-timerC(o.retryTimer):
		o.retryTimer = nil
		return input{ev: evRetry}
	}
}

func timerC(t timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C()
}

func (o *owner) keepaliveC() <-chan time.Time {
	if o.ka == nil {
		return nil
	}
	return o.ka.C()
}

// finishing reports whether the client must stop now (Close or ctx), and what
// Run returns then.
func (o *owner) finishing() (bool, error) {
	if o.c.closeCtx.Err() != nil {
		return true, nil
	}
	if err := o.ctx.Err(); err != nil {
		return true, err
	}
	return false, nil
}

// ---- the actions of the table ----

func (o *owner) nothing(input) {}

// startDial makes the next attempt: the user's HeaderFunc and Proxy run here,
// on the owner, one at a time with the callbacks; the dial itself on a
// goroutine of its own, so that the owner keeps serving Info and Close.
func (o *owner) startDial(input) {
	c := o.c
	o.gen++
	c.stats.generation.Store(o.gen)
	actx, cancel := context.WithCancel(o.ctx)
	stop := context.AfterFunc(c.closeCtx, cancel)
	o.dialCancel = func() { stop(); cancel() }
	cfg, err := o.attemptConfig(actx)
	if err != nil {
		o.dialCancel()
		o.post(input{ev: evDialFailed, err: err})
		return
	}
	res := make(chan dialResult, 1)
	o.dialRes = res
	limiter := c.opts.DialLimiter
	go func() {
		if limiter != nil { // shared by a fleet: every attempt waits its turn
			if err := limiter.Wait(actx); err != nil {
				if actx.Err() != nil {
					err = actx.Err()
				}
				res <- dialResult{err: fmt.Errorf("wsclient: DialLimiter: %w", err)}
				return
			}
		}
		w, err := c.dial(actx, cfg)
		res <- dialResult{w, err}
	}()
}

// attemptConfig builds the transport's config for one attempt: headers (with
// HeaderFunc's), the proxy (Options.Proxy, asked once), TLS (files read now).
func (o *owner) attemptConfig(ctx context.Context) (*transport.Config, error) {
	c := o.c
	header := o.header.Clone()
	if header == nil {
		header = http.Header{}
	}
	if hf := c.opts.HeaderFunc; hf != nil {
		var extra http.Header
		var herr error
		if err := c.callback("HeaderFunc", func(Handler) error { extra, herr = hf(ctx); return nil }); err != nil {
			return nil, err
		}
		if herr != nil {
			return nil, fmt.Errorf("wsclient: HeaderFunc: %w", herr)
		}
		if err := checkHeader(extra); err != nil {
			return nil, err
		}
		for k, v := range extra {
			header[k] = v
		}
	}
	var proxy *url.URL
	if pick := c.opts.Proxy; pick != nil {
		req := &http.Request{Method: http.MethodGet, URL: proxyRequestURL(o.url), Header: header, Host: o.url.Host}
		var perr error
		if err := c.callback("Proxy", func(Handler) error { proxy, perr = pick(req.WithContext(ctx)); return nil }); err != nil {
			return nil, err
		}
		if perr != nil {
			return nil, fmt.Errorf("wsclient: Options.Proxy: %w", perr)
		}
	}
	tlsConf, err := c.tlsConfig(o.url)
	if err != nil {
		return nil, err
	}
	return &transport.Config{
		URL:              o.url,
		Header:           header,
		Subprotocols:     c.opts.Subprotocols,
		TLS:              tlsConf,
		Proxy:            func(*http.Request) (*url.URL, error) { return proxy, nil },
		NetDialContext:   c.opts.NetDialContext,
		Compression:      c.opts.Compression,
		HandshakeTimeout: c.opts.HandshakeTimeout,
		ReadLimit:        c.opts.ReadLimit,
		WriteTimeout:     c.opts.WriteTimeout,
	}, nil
}

// proxyRequestURL is u as a proxy chooser sees it: http or https, as for the
// equivalent HTTP request (what http.ProxyFromEnvironment expects).
func proxyRequestURL(u *url.URL) *url.URL {
	r := *u
	r.Scheme = "http"
	if u.Scheme == "wss" {
		r.Scheme = "https"
	}
	return &r
}

// cutDial stops a dial in progress (Close or ctx) and waits for its goroutine;
// a connection it made after all is dropped. The attempt fails with why.
func (o *owner) cutDial(in input) {
	why := in.err
	if in.ev == evClose {
		why = ErrClosed
	}
	if o.dialRes == nil {
		return // the attempt already failed: its evDialFailed is queued
	}
	o.dialCancel()
	r := <-o.dialRes
	o.dialRes = nil
	if r.w != nil {
		r.w.Abort()
	}
	o.post(input{ev: evDialFailed, err: why})
}

// opened runs OnConnect on the new connection, writes the outbox, and starts
// the reader and the keepalive.
func (o *owner) opened(in input) {
	c := o.c
	conn := newConn(c, o.gen, in.w)
	o.conn = conn
	c.stats.connects.Add(1)
	c.setCurrent(conn)
	if c.opts.InsecureSkipVerifyTLS && o.url.Scheme == "wss" {
		c.logger().Warn("wsclient: connected WITHOUT verifying the server's TLS certificate")
	}
	if err := c.callback("OnConnect", func(h Handler) error { return h.OnConnect(conn) }); err != nil {
		conn.fail(CloseInternalError, "", err)
	} else {
		c.flushOutbox(conn)
		c.setReady(conn)
	}
	go conn.readLoop()
	o.ka = startKeepalive(conn, c.clk, c.opts.PingInterval, c.opts.PongTimeout)
}

// dialFailed decides after a failed attempt.
func (o *owner) dialFailed(in input) {
	o.decide(Disconnect{Err: in.err})
}

// lost decides after the open connection ended (its reader has returned).
func (o *owner) lost(input) {
	conn := o.conn
	o.conn = nil
	o.ka.stop()
	o.ka = nil
	if o.closeTimer != nil {
		o.closeTimer.Stop()
		o.closeTimer = nil
	}
	o.c.setCurrent(nil)
	o.c.stats.disconnects.Add(1)
	d := Disconnect{Err: conn.endErr, Connected: true, Uptime: o.c.clk.Now().Sub(conn.opened)}
	o.uptime = d.Uptime
	if d.Uptime >= o.c.opts.StableAfter {
		o.bo.reset()
		o.attempt = 0
		o.c.stats.failures.Store(0)
	}
	o.decide(d)
}

// deliberate reports whether err is a close this side chose (the handler's
// Conn.Close), not a failure.
func deliberate(err error) bool {
	var ce *CloseError
	return errors.As(err, &ce) && ce.Local && ce.Err == nil
}

// decide asks OnDisconnect and posts its decision (evReconnect or evStop).
func (o *owner) decide(d Disconnect) {
	c := o.c
	stop, result := o.finishing()
	if !stop && !deliberate(d.Err) {
		o.attempt++ // a failure; Client.Close, ctx's end and Conn.Close are none
	}
	d.Attempt = o.attempt
	c.stats.disconnected(d)
	if stop {
		d.Final, d.Suggested = true, Stop()
		o.onDisconnect(d)
		o.result = result
		o.post(input{ev: evStop, err: d.Err})
		return
	}
	if errors.Is(d.Err, ErrCertDropped) {
		o.certDrops++
	} else {
		o.certDrops = 0
	}
	d.Suggested = suggest(d.Err, o.bo, c.clk.Now(), o.certDrops)
	dec := o.onDisconnect(d)
	if dec.act == actFollow {
		dec = d.Suggested
	}
	if dec.IsStop() {
		c.logger().Info("wsclient: disconnected; stopping", "err", d.Err,
			"attempt", d.Attempt, "uptime", d.Uptime)
		o.result = runResult(d.Err)
		o.post(input{ev: evStop, err: d.Err})
		return
	}
	if err := o.apply(dec); err != nil {
		o.result = err
		o.post(input{ev: evStop, err: err})
		return
	}
	delay := dec.delay
	if dec.act == actReconnect {
		delay = d.Suggested.delay
		if d.Suggested.IsStop() {
			delay = o.bo.next()
		}
	}
	c.logger().Info("wsclient: disconnected; reconnecting", "err", d.Err,
		"attempt", d.Attempt, "uptime", d.Uptime, "delay", delay)
	o.post(input{ev: evReconnect, err: d.Err, delay: delay})
}

// onDisconnect calls OnDisconnect. A failing OnDisconnect follows the suggestion.
func (o *owner) onDisconnect(d Disconnect) Decision {
	var dec Decision
	err := o.c.callback("OnDisconnect", func(h Handler) error { dec = h.OnDisconnect(d); return nil })
	if err != nil {
		o.c.logger().Error("wsclient: OnDisconnect failed; following the suggested decision", "err", err)
		return Decision{}
	}
	return dec
}

// runResult is what Run returns after a Stop decision for cause.
func runResult(cause error) error {
	var ce *CloseError
	if errors.As(cause, &ce) && ce.Local && ce.Err == nil {
		return nil // the handler's own Conn.Close
	}
	return cause
}

// apply takes a decision's new URL and headers for the following attempts.
func (o *owner) apply(dec Decision) error {
	if dec.url != "" {
		u, err := parseURL(dec.url)
		if err != nil {
			return err
		}
		o.url = u
		o.c.setLogURL(u)
		o.certDrops = 0 // another server: its drops are counted afresh
	}
	if dec.header != nil {
		if err := checkHeader(dec.header); err != nil {
			return err
		}
		o.header = dec.header
	}
	return nil
}

func (o *owner) armRetry(in input) {
	o.retryTimer = o.c.clk.NewTimer(in.delay)
}

// finish ends the loop: nothing is left running.
func (o *owner) finish(in input) {
	if o.retryTimer != nil {
		o.retryTimer.Stop()
		o.retryTimer = nil
	}
	if in.ev == evCtxDone {
		o.result = o.ctx.Err()
	}
}

func (o *owner) infosDetached(input) {
	if o.detached == nil { // made on first use: most clients never need it
		o.detached = detachedConn(o.c)
	}
	if err := o.c.handleInfos(o.detached); err != nil {
		o.c.logger().Warn("wsclient: HandleInfo failed while not connected", "err", err)
	}
}

func (o *owner) infosOpen(input) {
	if err := o.c.handleInfos(o.conn); err != nil {
		o.conn.fail(CloseInternalError, "", err)
	}
}

func (o *owner) keepaliveTick(input) { o.ka.tick() }

// closeStarted sends Client.Close's close frame (unless one went out already)
// and bounds the wait for the server's answer by CloseTimeout.
func (o *owner) closeStarted(in input) {
	c := o.c
	if in.ev == evClose {
		c.mu.Lock()
		code, why := c.closeCode, c.closeWhy
		c.mu.Unlock()
		o.conn.startClose(code, why)
	}
	if o.closeTimer == nil {
		o.closeTimer = c.clk.NewTimer(c.opts.CloseTimeout)
	}
}

func (o *owner) closeTimedOut(input) {
	o.c.logger().Warn("wsclient: no close frame from the server within CloseTimeout; dropping the connection",
		"timeout", o.c.opts.CloseTimeout)
	o.conn.end(o.conn.localClose.Load(), 0)
}

// drop ends the connection at once: Close's ctx ran out.
func (o *owner) drop(input) {
	o.conn.end(ErrClosed, 0)
}

// goingAway ends the connection because Run's ctx ended: 1001, then the socket goes.
func (o *owner) goingAway(input) {
	o.conn.end(&CloseError{Local: true, Code: CloseGoingAway, Err: o.ctx.Err()}, CloseGoingAway)
}
