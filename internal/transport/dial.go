package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// readBufferSize is the size of the connection's one read buffer.
const readBufferSize = 4096

// handshakeLimit bounds what is read from the network before the upgrade is
// done (a proxy's answer, the TLS handshake, the HTTP response), so that a
// broken or hostile server cannot make the client buffer an endless header
// line until HandshakeTimeout. An upgrade response is a few hundred bytes.
const handshakeLimit = 1 << 20

// errHandshakeTimeout is the cause of the attempt's context when
// HandshakeTimeout ran out.
var errHandshakeTimeout = errors.New("handshake timeout")

// Dial makes one attempt: TCP (cfg.NetDialContext or a net.Dialer) to the host
// or the proxy, the proxy tunnel (HTTP CONNECT, or SOCKS5), TLS for wss (over
// the tunnel: the same code on every path), the upgrade; all bounded by
// cfg.HandshakeTimeout and ctx. Cancelling ctx cuts it short at any point: the
// socket is closed; no goroutine is left behind.
//
// Errors: a *HandshakeError (an answer other than a valid 101), a *TLSError
// (a certificate refused by either side), or an error naming the URL (and the
// proxy) that wraps the cause: a *ProxyError, ErrHandshakeTooLarge, ctx.Err()
// when ctx ended, a timeout when HandshakeTimeout ran out. No error holds a
// query value, userinfo or header value.
func Dial(ctx context.Context, cfg *Config) (*Conn, error) {
	d := &dialer{cfg: cfg, target: Redact(cfg.URL)}
	c, err := d.dial(ctx)
	if err != nil {
		return nil, d.error(ctx, err)
	}
	return c, nil
}

// phase is where a dial failed, for the error.
type phase int

const (
	phaseSetup phase = iota
	phaseProxyFunc
	phaseTCP
	phaseProxy
	phaseTLS
	phaseWrite
	phaseAwait // waiting for the first byte of the upgrade response
	phaseResponse
)

type dialer struct {
	cfg    *Config
	target string // the URL, redacted, and the proxy when there is one
	hctx   context.Context
	phase  phase
	lim    *limitConn
	// resp is what the HTTP parser reads (TLS or a tunnel over lim, or lim
	// itself): its first error, since a TLS close_notify ends the stream
	// with EOF above the socket, which itself never reports one.
	resp *errRecorder

	certRequested atomic.Bool // the server asked for a client certificate
}

func (d *dialer) dial(ctx context.Context) (*Conn, error) {
	cfg := d.cfg
	hctx := ctx
	if cfg.HandshakeTimeout > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeoutCause(ctx, cfg.HandshakeTimeout, errHandshakeTimeout)
		defer cancel()
	}
	d.hctx = hctx

	u := cfg.URL
	if u == nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Hostname() == "" {
		return nil, errors.New("the URL must be ws:// or wss:// with a host")
	}
	secure := u.Scheme == "wss"
	port := u.Port()
	if port == "" {
		port = "80"
		if secure {
			port = "443"
		}
	}
	target := net.JoinHostPort(u.Hostname(), port)

	var proxy *url.URL
	if cfg.Proxy != nil {
		d.phase = phaseProxyFunc
		ru := *u
		ru.User = nil
		ru.Scheme = "http"
		if secure {
			ru.Scheme = "https"
		}
		p, err := cfg.Proxy(&http.Request{Method: http.MethodGet, URL: &ru, Host: u.Host, Header: cfg.Header.Clone()})
		if err != nil {
			return nil, fmt.Errorf("Options.Proxy: %w", err)
		}
		if p != nil {
			proxy = p
			d.target += " via proxy " + Redact(p)
		}
	}
	addr := target
	if proxy != nil {
		var err error
		if addr, err = proxyAddr(proxy); err != nil {
			return nil, err
		}
	}

	d.phase = phaseTCP
	netDial := cfg.NetDialContext
	if netDial == nil {
		netDial = (&net.Dialer{}).DialContext
	}
	raw, err := netDial(hctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// From here on, ctx ending closes the socket, whatever is waiting on it.
	// HandshakeTimeout is the socket's deadline (so that a read or write it
	// cuts short reports a timeout, not a closed socket), and bounds the TLS
	// handshakes through hctx.
	var closeOnce sync.Once
	closeRaw := func() { closeOnce.Do(func() { raw.Close() }) }
	stop := context.AfterFunc(ctx, closeRaw)
	ok := false
	defer func() {
		if !ok {
			stop()
			closeRaw()
		}
	}()
	if dl, has := hctx.Deadline(); has {
		raw.SetDeadline(dl)
	}
	d.lim = &limitConn{Conn: raw, room: handshakeLimit}
	var conn net.Conn = d.lim

	if proxy != nil {
		d.phase = phaseProxy
		if conn, err = tunnel(hctx, conn, proxy, target); err != nil {
			return nil, err
		}
	}
	var state *tls.ConnectionState
	if secure {
		d.phase = phaseTLS
		tc, err := tlsHandshake(hctx, conn, clientTLSConfig(cfg.TLS, u.Hostname(), &d.certRequested))
		if err != nil {
			return nil, err
		}
		cs := tc.ConnectionState()
		state = &cs
		conn = tc
	}

	d.phase = phaseWrite
	key := newChallengeKey()
	req := upgradeRequest(cfg, key)
	if err := req.Write(conn); err != nil {
		return nil, err
	}
	d.phase = phaseAwait
	d.resp = &errRecorder{r: conn}
	br := bufio.NewReaderSize(d.resp, readBufferSize)
	if _, err := br.Peek(1); err != nil {
		return nil, err
	}
	d.phase = phaseResponse
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, err
	}
	if state != nil {
		resp.TLS = state
	}
	res, err := checkResponse(resp, cfg, key)
	if err != nil {
		return nil, err
	}
	if hctx.Err() != nil {
		return nil, hctx.Err()
	}
	raw.SetDeadline(time.Time{})
	d.lim.open.Store(true)
	if !stop() {
		// ctx ended just now: the socket is closed or closing.
		return nil, ctx.Err()
	}
	ok = true
	// Writes and reads go to the socket (or the TLS or tunnel over it),
	// past the lifted limit.
	nc := conn
	if conn == net.Conn(d.lim) {
		nc = raw
	}
	return NewConn(nc, br, ConnOptions{
		Compression:  res.compression,
		ReadLimit:    cfg.ReadLimit,
		WriteTimeout: cfg.WriteTimeout,
		Subprotocol:  res.subprotocol,
		Response:     responseForConn(resp),
		ReadSource:   nc, // after the bytes br holds: br's buffer is not kept
	}), nil
}

// error turns a failed attempt's err into the error Dial returns.
func (d *dialer) error(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("wsclient: dial %s: %w", d.target, ctxErr)
	}
	if d.lim != nil && d.lim.exceeded.Load() {
		return fmt.Errorf("wsclient: dial %s: %w", d.target, ErrHandshakeTooLarge)
	}
	var he *HandshakeError
	if errors.As(err, &he) {
		return he
	}
	dropped := d.phase == phaseTLS || d.phase == phaseWrite || d.phase == phaseAwait
	if d.phase >= phaseTLS {
		if te := asTLSError(err, d.certRequested.Load(), dropped); te != nil {
			return te
		}
	}
	var readErr error
	if d.lim != nil {
		readErr = d.lim.firstErr()
	}
	if d.hctx != nil && errors.Is(context.Cause(d.hctx), errHandshakeTimeout) || d.cfg.HandshakeTimeout > 0 && (isTimeout(err) || isTimeout(readErr)) {
		return fmt.Errorf("wsclient: handshake with %s timed out after %v: %w", d.target, d.cfg.HandshakeTimeout, err)
	}
	var respErr error
	if d.resp != nil {
		respErr = d.resp.err
	}
	if errors.Is(readErr, io.EOF) || errors.Is(respErr, io.EOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("wsclient: dial %s: the server closed the connection during the handshake (EOF): %w", d.target, err)
	}
	return fmt.Errorf("wsclient: dial %s: %w", d.target, err)
}

// isTimeout reports whether err is a deadline that ran out.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// limitConn is the socket of an attempt. Until the upgrade is done (open) it
// counts the bytes read against handshakeLimit and notes the first read error
// (the HTTP parser may report a truncated line as malformed and drop the EOF
// that cut it). After the upgrade it only passes reads through.
type limitConn struct {
	net.Conn
	open     atomic.Bool
	room     int64 // read by the dialing goroutine only, until open
	exceeded atomic.Bool
	mu       sync.Mutex
	err      error
}

func (c *limitConn) Read(p []byte) (int, error) {
	if c.open.Load() {
		return c.Conn.Read(p)
	}
	if c.room <= 0 {
		c.exceeded.Store(true)
		return 0, ErrHandshakeTooLarge
	}
	if int64(len(p)) > c.room {
		p = p[:c.room]
	}
	n, err := c.Conn.Read(p)
	c.room -= int64(n)
	if err != nil {
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *limitConn) firstErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// errRecorder notes the first error of the reader under the handshake's
// bufio.Reader. Only the dialing goroutine reads it and err.
type errRecorder struct {
	r   io.Reader
	err error
}

func (e *errRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}
