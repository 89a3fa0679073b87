package wsclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"

	"github.com/gorilla/websocket"
)

// writeBufferPool lends gorilla a write buffer only while a message is written,
// so an idle connection holds none.
var writeBufferPool = &sync.Pool{}

// dialAttempt remembers the socket of one attempt so that Close can cut it short:
// gorilla's DialContext does not stop a handshake read when ctx is cancelled.
type dialAttempt struct {
	mu      sync.Mutex
	conn    net.Conn
	aborted bool
}

func (a *dialAttempt) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
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
	return conn, nil
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

// dial makes one handshake: TCP (through the proxy, if any), TLS, upgrade.
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
	tlsConf, err := c.tlsConfig()
	if err != nil {
		return nil, nil, err
	}
	d := websocket.Dialer{
		NetDialContext:    att.dialContext,
		Proxy:             c.opts.Proxy,
		TLSClientConfig:   tlsConf,
		HandshakeTimeout:  c.opts.HandshakeTimeout,
		Subprotocols:      c.opts.Subprotocols,
		EnableCompression: c.opts.Compression,
		WriteBufferPool:   writeBufferPool,
	}
	ws, resp, err := d.DialContext(ctx, c.url.String(), header)
	if err != nil {
		return nil, nil, c.dialError(ctx, err, resp)
	}
	if p := ws.Subprotocol(); p != "" && !slices.Contains(c.opts.Subprotocols, p) {
		ws.NetConn().Close()
		return nil, nil, &HandshakeError{StatusCode: resp.StatusCode, Header: resp.Header,
			Err: fmt.Errorf("%w: %q", errBadSubprotocol, p)}
	}
	return ws, resp, nil
}

// dialError turns gorilla's dial error into one that says what went wrong.
func (c *Client) dialError(ctx context.Context, err error, resp *http.Response) error {
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
	if tlsErr := asTLSError(err); tlsErr != nil {
		return tlsErr
	}
	if ctx.Err() == nil {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			return fmt.Errorf("wsclient: handshake with %s timed out after %v: %w", c.url.Redacted(), c.opts.HandshakeTimeout, err)
		}
	}
	return fmt.Errorf("wsclient: dial %s: %w", c.url.Redacted(), err)
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
