package wsclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gorilla/websocket"
)

// readBufferSize is gorilla's read buffer, which every connection holds for its
// whole life (gorilla has no pool for reads): sized for an idle connection, a
// quarter of gorilla's default. Small messages still arrive many to a read (15
// of 64 bytes), and a larger message is read past the buffer, straight into the
// reader's own; a busy connection reads ahead in larger pieces (readAhead).
const readBufferSize = 1024

// writeBufferPool lends gorilla a write buffer only while a message is written,
// so an idle connection holds none. Since it is lent, it can be large: a
// message of up to writeBufferSize goes out as one frame in one write (gorilla's
// default, 4 KiB, cuts a 16 KiB message into four frames and four writes).
var writeBufferPool = &sync.Pool{}

const writeBufferSize = 16 << 10

// dialAttempt remembers the socket of one attempt so that Close can cut it short:
// gorilla's DialContext does not stop a handshake read when ctx is cancelled.
type dialAttempt struct {
	mu      sync.Mutex
	conn    net.Conn
	aborted bool
	proxy   *url.URL  // the proxy this attempt goes through, nil for none
	watched *dialConn // conn as gorilla sees it
	readErr error     // the first error reading conn during the handshake

	certRequested atomic.Bool // the server asked for a client certificate
}

// dialContext is the Dialer's NetDialContext: the attempt's socket, with the
// wire watcher that lets the client judge the frames gorilla cannot (see
// wireConn; under gorilla's own TLS it only passes bytes through).
func (a *dialAttempt) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := a.dialRaw(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return watchWire(conn), nil
}

// dialTLSContext is the Dialer's NetDialTLSContext for wss without a proxy: the
// TLS handshake is done here, so that the wire watcher sits above TLS.
func (a *dialAttempt) dialTLSContext(cfg *tls.Config) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := a.dialRaw(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(conn, cfg.Clone())
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		return watchWire(tc), nil
	}
}

func (a *dialAttempt) dialRaw(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.aborted {
		conn.Close()
		return nil, ErrClosed
	}
	a.conn = conn
	a.watched = &dialConn{Conn: conn, att: a}
	// The wire watcher (conn.go) follows the server's frames for what gorilla
	// cannot check; it passes a proxy's answer and TLS records through.
	return a.watched, nil
}

// handshakeLimit bounds what the client reads from the server before the
// upgrade is done (a proxy's answer, the TLS handshake, the HTTP response), so
// that a broken or hostile server cannot make it buffer an endless header line
// until HandshakeTimeout. An upgrade response is a few hundred bytes; net/http's
// client allows 10 MiB of response headers.
const handshakeLimit = 1 << 20

// errHandshakeTooLarge: the server sent more than handshakeLimit bytes before
// the upgrade was done.
var errHandshakeTooLarge = fmt.Errorf("handshake response over %d bytes", handshakeLimit)

// dialConn is the socket of an attempt as gorilla sees it. Until the upgrade
// is done it counts the bytes read against handshakeLimit and notes the first
// read error: the HTTP parser may report a truncated header line as
// "malformed" and drop the EOF or timeout that cut it. After the upgrade it
// reads ahead while the connection is busy (see readAhead).
type dialConn struct {
	net.Conn
	att   *dialAttempt
	read  atomic.Int64
	open  atomic.Bool // the upgrade is done
	ahead readAhead   // after the upgrade
}

func (c *dialConn) Read(p []byte) (int, error) {
	if c.open.Load() {
		return c.ahead.read(c.Conn, p)
	}
	room := handshakeLimit - c.read.Load()
	if room <= 0 {
		c.att.noteReadErr(errHandshakeTooLarge)
		return 0, errHandshakeTooLarge
	}
	if int64(len(p)) > room {
		p = p[:room]
	}
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	if err != nil {
		c.att.noteReadErr(err)
	}
	return n, err
}

func (a *dialAttempt) noteReadErr(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.readErr == nil {
		a.readErr = err
	}
}

func (a *dialAttempt) firstReadErr() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.readErr
}

// upgraded lifts the handshake's limit from the attempt's socket.
func (a *dialAttempt) upgraded() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.watched != nil {
		a.watched.open.Store(true)
	}
}

// proxyFunc wraps Options.Proxy to remember the proxy chosen, for errors.
func (a *dialAttempt) proxyFunc(pick func(*http.Request) (*url.URL, error)) func(*http.Request) (*url.URL, error) {
	if pick == nil {
		return nil
	}
	return func(r *http.Request) (*url.URL, error) {
		u, err := pick(r)
		if err != nil {
			return nil, fmt.Errorf("Options.Proxy: %w", err)
		}
		a.mu.Lock()
		a.proxy = u
		a.mu.Unlock()
		return u, nil
	}
}

func (a *dialAttempt) proxyURL() *url.URL {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.proxy
}

func (a *dialAttempt) abort() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.aborted = true
	if a.conn != nil {
		a.conn.Close()
	}
}

// errBadSubprotocol: the server chose a subprotocol that was not offered.
var errBadSubprotocol = errors.New("server chose a subprotocol that was not offered")

// dial makes one handshake: TCP (through the proxy, if any: HTTP CONNECT, or
// SOCKS5 for a socks5:// proxy URL), TLS, upgrade, all bounded by
// HandshakeTimeout. HeaderFunc runs before and is bounded by ctx only.
// The TLS config is built afresh for every attempt (TLSFiles are read again),
// and gorilla clones it once more: the caller's config is never modified.
func (c *Client) dial(ctx context.Context, att *dialAttempt) (*websocket.Conn, *http.Response, error) {
	header := c.header.Clone()
	if header == nil {
		header = http.Header{}
	}
	if c.opts.HeaderFunc != nil {
		extra, err := c.opts.HeaderFunc(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("wsclient: HeaderFunc: %w", err)
		}
		if err := checkHeader(extra); err != nil {
			return nil, nil, err
		}
		for k, v := range extra {
			header[k] = v
		}
	}
	tlsConf, err := c.tlsConfig(att)
	if err != nil {
		return nil, nil, err
	}
	d := websocket.Dialer{
		NetDialContext:    att.dialContext,
		Proxy:             att.proxyFunc(c.opts.Proxy),
		TLSClientConfig:   tlsConf,
		HandshakeTimeout:  c.opts.HandshakeTimeout,
		Subprotocols:      c.opts.Subprotocols,
		EnableCompression: c.opts.Compression,
		WriteBufferPool:   writeBufferPool,
		WriteBufferSize:   writeBufferSize,
		ReadBufferSize:    readBufferSize,
	}
	if c.url.Scheme == "wss" && d.Proxy != nil {
		// gorilla would do TLS to a proxy with NetDialTLSContext: only without one.
		if p, err := d.Proxy(&http.Request{URL: &url.URL{Scheme: "https", Host: c.url.Host}}); err == nil && p == nil {
			d.NetDialTLSContext = att.dialTLSContext(tlsConf)
		}
	}
	ws, resp, err := d.DialContext(ctx, c.url.String(), header)
	if err != nil {
		return nil, nil, c.dialError(ctx, err, resp, att)
	}
	att.upgraded()
	if p := ws.Subprotocol(); p != "" && !slices.Contains(c.opts.Subprotocols, p) {
		ws.NetConn().Close()
		return nil, nil, &HandshakeError{StatusCode: resp.StatusCode, Header: resp.Header,
			Err: fmt.Errorf("%w: %q", errBadSubprotocol, p)}
	}
	if ext := unofferedExtension(resp.Header, c.opts.Compression); ext != "" {
		ws.NetConn().Close()
		return nil, nil, &HandshakeError{StatusCode: resp.StatusCode, Header: resp.Header,
			Err: fmt.Errorf("%w: %q", errBadExtension, ext)}
	}
	// Conn.Response promises the status and headers, not the request behind
	// them: its URL, headers and spent contexts would live as long as the
	// connection.
	resp.Request = nil
	return ws, resp, nil
}

// errBadExtension: the server accepted an extension that was not offered.
var errBadExtension = errors.New("server chose an extension that was not offered")

// unofferedExtension returns the first extension of the handshake response that
// was not offered, or "" (RFC 6455 4.1: the client must then fail the
// connection). Only permessage-deflate is ever offered, with Compression;
// gorilla itself ignores unknown extensions and turns on decompression for a
// permessage-deflate it did not offer.
func unofferedExtension(h http.Header, compression bool) string {
	for _, v := range h.Values("Sec-Websocket-Extensions") {
		for _, ext := range strings.Split(v, ",") {
			name, _, _ := strings.Cut(ext, ";")
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			if !compression || !strings.EqualFold(name, "permessage-deflate") {
				return name
			}
		}
	}
	return ""
}

// dialError turns gorilla's dial error into one that says what went wrong.
func (c *Client) dialError(ctx context.Context, err error, resp *http.Response, att *dialAttempt) error {
	if errors.Is(err, websocket.ErrBadHandshake) && resp != nil {
		he := &HandshakeError{StatusCode: resp.StatusCode, Header: resp.Header}
		if resp.Body != nil {
			he.Body, _ = io.ReadAll(io.LimitReader(resp.Body, 1024))
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			he.Err = errors.New("invalid upgrade response (Upgrade, Connection or Sec-WebSocket-Accept)")
		}
		return he
	}
	if tlsErr := asTLSError(err, att.certRequested.Load()); tlsErr != nil {
		return tlsErr
	}
	target := c.url.Redacted()
	if proxy := att.proxyURL(); proxy != nil {
		target += " via proxy " + proxy.Redacted()
	}
	readErr := att.firstReadErr()
	if errors.Is(readErr, errHandshakeTooLarge) {
		return fmt.Errorf("wsclient: dial %s: %w", target, errHandshakeTooLarge)
	}
	if ctx.Err() == nil {
		if isTimeout(err) || isTimeout(readErr) {
			return fmt.Errorf("wsclient: handshake with %s timed out after %v: %w", target, c.opts.HandshakeTimeout, err)
		}
	}
	if errors.Is(readErr, io.EOF) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		// The parser saw a truncated line, not the hang-up that truncated it.
		return fmt.Errorf("wsclient: dial %s: the server closed the connection during the handshake (EOF): %w", target, err)
	}
	return fmt.Errorf("wsclient: dial %s: %w", target, err)
}

// isTimeout reports whether err is a deadline that ran out.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// reservedHeaders are set by the handshake itself; gorilla refuses them.
var reservedHeaders = []string{"Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Extensions", "Sec-Websocket-Protocol"}

// checkHeader rejects headers the handshake owns.
func checkHeader(h http.Header) error {
	for _, k := range reservedHeaders {
		if _, ok := h[k]; ok {
			return fmt.Errorf("wsclient: header %s is set by the handshake (use Options.Subprotocols or Compression)", k)
		}
	}
	return nil
}
