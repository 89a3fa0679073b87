package transport

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Config is what Dial needs. The caller builds it afresh for every attempt;
// Dial never modifies it or anything it points to.
type Config struct {
	// URL is a ws:// or wss:// URL, already validated by the caller.
	URL *url.URL
	// Header is sent with the upgrade request (no handshake-owned names).
	Header http.Header
	// Subprotocols offered; a server choosing another fails the handshake.
	Subprotocols []string
	// TLS is the config for wss, complete (roots, ServerName, MinVersion,
	// NextProtos): Dial clones it and uses it as it is. Nil for ws.
	TLS *tls.Config
	// Proxy picks the proxy for the request (nil or a nil URL: direct). An
	// http:// or https:// proxy URL is used with CONNECT, socks5:// (or
	// socks5h://) with SOCKS5; user:password in the proxy URL are sent as
	// Proxy-Authorization (Basic) or SOCKS5 username/password. It is called
	// once per attempt, with the real URL (scheme https for wss).
	Proxy func(*http.Request) (*url.URL, error)
	// NetDialContext makes the TCP connection (to the proxy when there is
	// one). Nil: a net.Dialer.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Compression offers permessage-deflate, without context takeover.
	Compression bool
	// HandshakeTimeout bounds TCP, proxy, TLS and upgrade together (0: only ctx).
	HandshakeTimeout time.Duration
	// ReadLimit is the largest message accepted, counted as delivered (after
	// inflating); a larger one fails the connection with 1009. 0: no limit.
	ReadLimit int64
	// WriteTimeout bounds each socket write (0: none). A write that times out
	// fails the connection.
	WriteTimeout time.Duration
}
