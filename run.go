package wsclient

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Run connects and keeps the connection alive until a Stop decision, Close or
// the end of ctx. It returns nil after a deliberate close (Client.Close, or the
// handler's Conn.Close followed by the suggested Stop), ctx.Err() when ctx ends,
// and otherwise the Disconnect.Err that led to Stop. Run may be called once.
// When Run returns, no goroutine of the client is left and every frame that
// waited in the outbox has had its Send fail with ErrClosed.
func (c *Client) Run(ctx context.Context) (err error) {
	if ctx == nil {
		return errors.New("wsclient: nil context")
	}
	if !c.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer close(c.runDone)
	err = c.loop(ctx)
	c.m.fire(evStop, c.gen, err)
	c.mu.Lock()
	c.stopped = true
	close(c.infoGen) // wake Info callers waiting for room: they see stopped
	c.infoGen = make(chan struct{})
	c.mu.Unlock()
	c.failOutbox(ErrClosed)
	if t, ok := c.handler.(Terminator); ok {
		if terr := c.callback("Terminate", func(Handler) error { t.Terminate(err); return nil }); terr != nil {
			c.opts.Logger.Error("wsclient: Terminate failed", "err", terr)
		}
	}
	return err
}

// loop is the owner goroutine's life: connect, serve, decide, wait, again.
func (c *Client) loop(ctx context.Context) error {
	select {
	case <-c.closing:
		return nil
	default:
	}
	c.m.fire(evRun, 0, nil)
	bo := c.newBackoff()
	attempt := 0
	for {
		c.gen++
		conn, err := c.connect(ctx)
		d := Disconnect{Err: err}
		if conn != nil {
			c.m.fire(evConnected, c.gen, nil)
			d.Err = c.serve(ctx, conn)
			d.Connected = true
			d.Uptime = time.Since(conn.opened)
			if d.Uptime >= c.opts.StableAfter {
				bo.Reset()
				attempt = 0
			}
		}
		attempt++
		d.Attempt = attempt
		if stop, result := c.finishing(ctx); stop {
			d.Final, d.Suggested = true, Stop()
			c.disconnected(d)
			return result
		}
		if d.Connected {
			c.m.fire(evLost, c.gen, d.Err)
		} else {
			c.m.fire(evFailed, c.gen, d.Err)
		}
		d.Suggested = suggest(d.Err, bo)
		dec := c.disconnected(d)
		if dec.act == actFollow {
			dec = d.Suggested
		}
		c.opts.Logger.Info("wsclient: disconnected", "url", c.url.Redacted(), "err", d.Err,
			"attempt", d.Attempt, "uptime", d.Uptime, "decision", dec)
		if dec.IsStop() {
			return runResult(d.Err)
		}
		if err := c.apply(dec); err != nil {
			return err
		}
		delay := dec.delay
		if dec.act == actReconnect {
			delay = d.Suggested.delay
			if d.Suggested.IsStop() {
				delay = bo.NextBackOff()
			}
		}
		if stop, result := c.sleep(ctx, delay); stop {
			return result
		}
		c.m.fire(evRetry, c.gen, nil)
	}
}

// finishing reports whether the client must stop now (Close or ctx), and what
// Run returns then.
func (c *Client) finishing(ctx context.Context) (bool, error) {
	select {
	case <-c.closing:
		return true, nil
	default:
	}
	if err := ctx.Err(); err != nil {
		return true, err
	}
	return false, nil
}

// runResult is what Run returns after a Stop decision for cause.
func runResult(cause error) error {
	var ce *CloseError
	if errors.As(cause, &ce) && ce.Local && ce.Err == nil {
		return nil // the handler's own Conn.Close
	}
	return cause
}

// disconnected calls OnDisconnect. A failing OnDisconnect follows the suggestion.
func (c *Client) disconnected(d Disconnect) Decision {
	var dec Decision
	err := c.callback("OnDisconnect", func(h Handler) error { dec = h.OnDisconnect(d); return nil })
	if err != nil {
		c.opts.Logger.Error("wsclient: OnDisconnect failed; following the suggested decision", "err", err)
		return Decision{}
	}
	return dec
}

// apply takes a decision's new URL and headers for the following attempts.
func (c *Client) apply(dec Decision) error {
	if dec.url != "" {
		u, err := parseURL(dec.url)
		if err != nil {
			return err
		}
		c.url = u
	}
	if dec.header != nil {
		if err := checkHeader(dec.header); err != nil {
			return err
		}
		c.header = dec.header
	}
	return nil
}

// sleep waits out a backoff delay while serving HandleInfo. It reports whether
// the client must stop (Close or ctx) and what Run returns then.
func (c *Client) sleep(ctx context.Context, d time.Duration) (bool, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return false, nil
		case <-c.infoWake:
			c.infosWhileDown()
		case <-c.closing:
			return true, nil
		case <-ctx.Done():
			return true, ctx.Err()
		}
	}
}

// infosWhileDown delivers Info messages while no connection is open. There is no
// connection for a callback error to fail, so it is logged.
func (c *Client) infosWhileDown() {
	if c.detached == nil { // made on first use: most clients never need it
		c.detached = detachedConn(c)
	}
	if err := c.handleInfos(c.detached); err != nil {
		c.opts.Logger.Warn("wsclient: HandleInfo failed while not connected", "err", err)
	}
}

// connect makes one attempt. The dial runs on a goroutine of its own so that the
// owner keeps serving Info and Close; Close or ctx cut it short by closing its socket.
func (c *Client) connect(ctx context.Context) (*Conn, error) {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	att := &dialAttempt{}
	res := make(chan dialResult, 1)
	gen := c.gen
	go func() {
		ws, resp, err := c.dial(actx, att)
		if err != nil {
			res <- dialResult{err: err}
			return
		}
		res <- dialResult{conn: newConn(c, gen, ws, resp)}
	}()
	for {
		select {
		case r := <-res:
			return r.conn, r.err
		case <-c.infoWake:
			c.infosWhileDown()
		case <-c.closing:
			return nil, c.cutDial(cancel, att, res, ErrClosed)
		case <-ctx.Done():
			return nil, c.cutDial(cancel, att, res, ctx.Err())
		}
	}
}

type dialResult struct {
	conn *Conn
	err  error
}

// cutDial stops a dial in progress and waits for its goroutine.
func (c *Client) cutDial(cancel context.CancelFunc, att *dialAttempt, res <-chan dialResult, why error) error {
	cancel()
	att.abort()
	if r := <-res; r.conn != nil {
		r.conn.ws.NetConn().Close()
	}
	return why
}

// serve runs one open connection until its reader has returned.
func (c *Client) serve(ctx context.Context, conn *Conn) error {
	c.mu.Lock()
	c.cur = conn
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.cur = nil
		c.live.Store(nil)
		c.mu.Unlock()
	}()
	if c.opts.InsecureSkipVerifyTLS {
		if c.url.Scheme == "wss" {
			c.opts.Logger.Warn("wsclient: connected WITHOUT verifying the server's TLS certificate", "url", c.url.Redacted())
		}
	}
	if err := c.callback("OnConnect", func(h Handler) error { return h.OnConnect(conn) }); err != nil {
		conn.fail(CloseInternalError, "", err)
	} else {
		c.flushOutbox(conn)
	}
	go conn.readLoop()

	ka := startKeepalive(conn, c.opts.PingInterval, c.opts.PongTimeout)
	defer ka.stop()
	var closeTimer *time.Timer // made when the close handshake starts
	defer func() {
		if closeTimer != nil {
			closeTimer.Stop()
		}
	}()
	var closeTimeout <-chan time.Time
	closing, closeStart, ctxDone, abort := c.closing, conn.closeStart, ctx.Done(), c.abort
	for {
		select {
		case <-conn.readerDone:
			return conn.endErr
		case <-c.infoWake:
			if err := c.handleInfos(conn); err != nil {
				conn.fail(CloseInternalError, "", err)
			}
		case <-closing:
			closing = nil
			c.mu.Lock()
			code, why := c.closeCode, c.closeWhy
			c.mu.Unlock()
			conn.startClose(code, why)
		case <-closeStart:
			closeStart = nil
			c.m.fire(evClosing, conn.gen, conn.localClose.Load())
			closeTimer = time.NewTimer(c.opts.CloseTimeout)
			closeTimeout = closeTimer.C
		case <-closeTimeout:
			c.opts.Logger.Warn("wsclient: no close frame from the server within CloseTimeout; dropping the connection",
				"timeout", c.opts.CloseTimeout)
			conn.end(conn.localClose.Load(), 0)
		case <-abort:
			abort = nil
			conn.end(ErrClosed, 0)
		case <-ctxDone:
			ctxDone = nil
			conn.end(&CloseError{Local: true, Code: CloseGoingAway, Err: ctx.Err()}, CloseGoingAway)
		case <-ka.C():
			ka.tick()
		}
	}
}

// newBackoff builds the owner's backoff. It never gives up by itself.
func (c *Client) newBackoff() *backoff.ExponentialBackOff {
	b := c.opts.Backoff
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     b.Initial,
		RandomizationFactor: b.Jitter,
		Multiplier:          b.Multiplier,
		MaxInterval:         b.Max,
		MaxElapsedTime:      0,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	bo.Reset()
	return bo
}
