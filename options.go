package wsclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ff42ae21/wsclient/internal/transport"
)

// Options configures a Client. The zero value (or nil) means the defaults given
// on each field. New validates the options and copies them; the caller's value is
// never modified.
type Options struct {
	// Header is sent with every handshake.
	Header http.Header
	// HeaderFunc, when set, is called before every attempt; the headers it returns
	// are added over Header (a fresh token per attempt). An error fails the
	// attempt. It runs on the goroutine that called Run, under the handler lock
	// like every callback (it never overlaps a Handler method); its ctx ends
	// when Close is called or Run's ctx ends.
	HeaderFunc func(ctx context.Context) (http.Header, error)
	// Subprotocols offered in the handshake. A server that picks one not offered
	// fails the handshake.
	Subprotocols []string

	// TLSConfig for wss. It is cloned; by default certificates and host names are
	// verified against the system roots, TLS 1.2 at least. Its own callbacks
	// (VerifyPeerCertificate, GetClientCertificate, ...) run inside the TLS
	// handshake, on the attempt's dial goroutine: they may overlap HandleInfo
	// and OnStateChange, never another attempt's.
	TLSConfig *tls.Config
	// TLSFiles, when set, names PEM files (a CA bundle; a client certificate and
	// key for mutual TLS) read at every attempt over TLSConfig, so that files
	// rotated on disk are used by the next attempt. See TLSFiles.
	TLSFiles *TLSFiles
	// InsecureSkipVerifyTLS turns off certificate and host name verification.
	// For tests only; every connect logs a warning. A TLSConfig with
	// InsecureSkipVerify set is refused by New unless this is set too.
	InsecureSkipVerifyTLS bool
	// Proxy picks the proxy for an attempt, once per attempt: http:// or
	// https:// (HTTP CONNECT), socks5:// or socks5h:// (SOCKS5); credentials in
	// the proxy URL are sent to the proxy (Proxy-Authorization, or SOCKS5
	// username/password). The request it gets has the attempt's URL with the
	// scheme http (ws) or https (wss). Default http.ProxyFromEnvironment; use
	// NoProxy to dial directly. It runs like HeaderFunc: on the goroutine that
	// called Run, under the handler lock.
	Proxy func(*http.Request) (*url.URL, error)
	// NetDialContext, when set, makes the TCP connection (to the proxy when one
	// is used): a source address, a unix socket in tests. The proxy, TLS and
	// the handshake still run on top of it. It runs on the attempt's dial
	// goroutine, so that Close can cut it short: it may overlap HandleInfo and
	// OnStateChange (never OnConnect, OnDisconnect or another attempt). Default:
	// a net.Dialer.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// DialLimiter, when set, is waited on before every attempt, reconnects
	// included: share one among many clients to spread their dials (after an
	// outage every client redials at once, and servers count dials against
	// per-IP or per-account limits). *rate.Limiter of golang.org/x/time/rate
	// satisfies it. Close and Run's ctx cut the wait short; another error
	// fails the attempt (and the policy retries it with backoff). Wait runs on
	// the attempt's dial goroutine, outside the handler lock (it may overlap
	// HandleInfo and OnStateChange, and other clients' Waits: it must be
	// goroutine-safe, as a shared limiter is).
	DialLimiter DialLimiter
	// Compression negotiates permessage-deflate without context takeover. A
	// server's answer that this client cannot decode (context takeover on the
	// server's side) fails the handshake with ErrCompression, and the policy
	// stops: it would fail the same way every time. Default off.
	Compression bool

	// HandshakeTimeout bounds dial, TLS and upgrade together. Default 10s.
	HandshakeTimeout time.Duration
	// PingInterval between keepalive pings. Default 20s; negative disables keepalive.
	PingInterval time.Duration
	// PongTimeout: a connection that sends no frame at all within PongTimeout
	// after a ping is dead. Default 10s.
	PongTimeout time.Duration
	// WriteTimeout bounds each socket write. A write that times out fails the
	// connection. Default 10s.
	WriteTimeout time.Duration
	// CloseTimeout bounds the wait for the server's close frame. Default 5s.
	CloseTimeout time.Duration
	// ReadLimit is the largest message accepted; a larger one fails the
	// connection with 1009. Default 16 MiB.
	ReadLimit int64

	// Backoff shapes the delays between attempts.
	Backoff Backoff
	// StableAfter is how long a connection must stay open before the backoff and
	// the attempt count reset. Default 10s.
	StableAfter time.Duration

	// OutboxSize is how many frames Send may queue while not connected, to be
	// written after the next OnConnect. Default 0: Send fails with ErrNotConnected.
	OutboxSize int
	// InfoQueueSize bounds the messages posted with Info and not yet handled.
	// Default 256; Info waits (bounded by its ctx) while the queue is full.
	InfoQueueSize int

	// Logger receives state changes (Debug), disconnects (Info) and warnings.
	// Default slog.Default().
	Logger *slog.Logger
	// OnStateChange, when set, is called on every state change, on the
	// goroutine that called Run, under the handler lock like every callback:
	// it never overlaps a Handler method. Keep it short.
	OnStateChange func(StateChange)
}

// Backoff shapes the exponential backoff with jitter between attempts. It never
// gives up by itself: only the handler's Decision, Close or ctx stop the client.
type Backoff struct {
	// Initial delay. Default 500ms.
	Initial time.Duration
	// Max is the largest delay ever waited, jitter included. Default 30s.
	Max time.Duration
	// Multiplier per attempt. Default 1.5; must be >= 1.
	Multiplier float64
	// Jitter spreads each delay d (Initial, times Multiplier per attempt, at
	// most Max) uniformly over [d*(1-Jitter), min(d*(1+Jitter), Max)]. Default
	// 1, the whole [0, 2d] below Max: clients that lost their server together
	// (a restart) come back spread out. Between 0 and 1; a negative value for
	// no jitter.
	Jitter float64
}

// DialLimiter paces connection attempts: Wait returns once an attempt may
// start, or an error (ctx's when it ends first).
type DialLimiter interface {
	Wait(ctx context.Context) error
}

// NoProxy is an Options.Proxy that dials directly.
func NoProxy(*http.Request) (*url.URL, error) { return nil, nil }

// withDefaults validates o and returns a filled-in copy.
func (o *Options) withDefaults() (Options, error) {
	var c Options
	if o != nil {
		c = *o
	}
	c.Header = c.Header.Clone()
	c.Subprotocols = append([]string(nil), c.Subprotocols...)
	if c.TLSConfig != nil {
		c.TLSConfig = c.TLSConfig.Clone()
	}
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"HandshakeTimeout", &c.HandshakeTimeout, 10 * time.Second},
		{"PongTimeout", &c.PongTimeout, 10 * time.Second},
		{"WriteTimeout", &c.WriteTimeout, 10 * time.Second},
		{"CloseTimeout", &c.CloseTimeout, 5 * time.Second},
		{"StableAfter", &c.StableAfter, 10 * time.Second},
		{"Backoff.Initial", &c.Backoff.Initial, 500 * time.Millisecond},
		{"Backoff.Max", &c.Backoff.Max, 30 * time.Second},
	}
	var errs []error
	for _, d := range durations {
		switch {
		case *d.v < 0:
			errs = append(errs, fmt.Errorf("%s is negative (%v)", d.name, *d.v))
		case *d.v == 0:
			*d.v = d.def
		}
	}
	if c.PingInterval == 0 {
		c.PingInterval = 20 * time.Second
	}
	if c.Backoff.Max < c.Backoff.Initial {
		errs = append(errs, fmt.Errorf("Backoff.Max (%v) is below Backoff.Initial (%v)", c.Backoff.Max, c.Backoff.Initial))
	}
	switch {
	case c.Backoff.Multiplier == 0:
		c.Backoff.Multiplier = 1.5
	case c.Backoff.Multiplier < 1:
		errs = append(errs, fmt.Errorf("Backoff.Multiplier is below 1 (%v)", c.Backoff.Multiplier))
	}
	switch {
	case c.Backoff.Jitter == 0:
		c.Backoff.Jitter = 1
	case c.Backoff.Jitter < 0:
		c.Backoff.Jitter = 0
	case c.Backoff.Jitter > 1:
		errs = append(errs, fmt.Errorf("Backoff.Jitter is above 1 (%v)", c.Backoff.Jitter))
	}
	switch {
	case c.ReadLimit < 0:
		errs = append(errs, fmt.Errorf("ReadLimit is negative (%d)", c.ReadLimit))
	case c.ReadLimit == 0:
		c.ReadLimit = 16 << 20
	}
	if c.OutboxSize < 0 {
		errs = append(errs, fmt.Errorf("OutboxSize is negative (%d)", c.OutboxSize))
	}
	switch {
	case c.InfoQueueSize < 0:
		errs = append(errs, fmt.Errorf("InfoQueueSize is negative (%d)", c.InfoQueueSize))
	case c.InfoQueueSize == 0:
		c.InfoQueueSize = 256
	}
	for _, p := range c.Subprotocols {
		if p == "" || !isToken(p) {
			errs = append(errs, fmt.Errorf("subprotocol %q is not an HTTP token", p))
		}
	}
	if err := checkHeader(c.Header); err != nil {
		errs = append(errs, err)
	}
	if err := c.checkTLS(); err != nil {
		errs = append(errs, err)
	}
	if c.Proxy == nil {
		c.Proxy = http.ProxyFromEnvironment
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if err := errors.Join(errs...); err != nil {
		return Options{}, fmt.Errorf("wsclient: invalid options: %w", err)
	}
	return c, nil
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b <= ' ' || b >= 0x7f || isSeparator(b) {
			return false
		}
	}
	return true
}

func isSeparator(b byte) bool {
	switch b {
	case '(', ')', '<', '>', '@', ',', ';', ':', '\\', '"', '/', '[', ']', '?', '=', '{', '}':
		return true
	}
	return false
}

// parseURL checks a ws:// or wss:// URL.
func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole input, secrets included: say only what is wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("wsclient: bad URL: %w", err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return nil, fmt.Errorf("wsclient: bad URL %q: scheme must be ws or wss", transport.Redact(u))
	}
	if u.User != nil {
		return nil, fmt.Errorf("wsclient: bad URL %q: credentials in a WebSocket URL are not allowed; use Options.Header", transport.Redact(u))
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("wsclient: bad URL %q: no host", transport.Redact(u))
	}
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("wsclient: bad URL %q: port %q is not between 1 and 65535", transport.Redact(u), p)
		}
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("wsclient: bad URL %q: a WebSocket URL has no fragment", transport.Redact(u))
	}
	return u, nil
}

// reservedHeaders are set by the handshake itself.
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
