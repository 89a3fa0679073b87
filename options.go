package wsclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Options configures a Client. The zero value (or nil) means the defaults given
// on each field. New validates the options and copies them; the caller's value is
// never modified.
type Options struct {
	// Header is sent with every handshake.
	Header http.Header
	// HeaderFunc, when set, is called before every attempt; the headers it returns
	// are added over Header (a fresh token per attempt). An error fails the attempt.
	HeaderFunc func(ctx context.Context) (http.Header, error)
	// Subprotocols offered in the handshake. A server that picks one not offered
	// fails the handshake.
	Subprotocols []string

	// TLSConfig for wss. It is cloned; by default certificates and host names are
	// verified against the system roots, TLS 1.2 at least.
	TLSConfig *tls.Config
	// TLSFiles, when set, names PEM files (a CA bundle; a client certificate and
	// key for mutual TLS) read at every attempt over TLSConfig, so that files
	// rotated on disk are used by the next attempt. See TLSFiles.
	TLSFiles *TLSFiles
	// InsecureSkipVerifyTLS turns off certificate and host name verification.
	// For tests only; every connect logs a warning. A TLSConfig with
	// InsecureSkipVerify set is refused by New unless this is set too.
	InsecureSkipVerifyTLS bool
	// Proxy picks the HTTP proxy for a URL. Default http.ProxyFromEnvironment;
	// use NoProxy to dial directly.
	Proxy func(*http.Request) (*url.URL, error)
	// Compression negotiates permessage-deflate (no context takeover). Default off.
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
	// OnStateChange, when set, is called on every state change, on the client's
	// own goroutine: keep it short and do not call the client's blocking methods.
	OnStateChange func(StateChange)
}

// Backoff shapes the exponential backoff with jitter between attempts. It never
// gives up by itself: only the handler's Decision, Close or ctx stop the client.
type Backoff struct {
	// Initial delay. Default 500ms.
	Initial time.Duration
	// Max delay. Default 30s.
	Max time.Duration
	// Multiplier per attempt. Default 1.5; must be >= 1.
	Multiplier float64
	// Jitter spreads each delay over [d*(1-Jitter), d*(1+Jitter)]. Default 1,
	// the whole [0, 2d]: clients that lost their server together (a restart)
	// come back spread over twice the time that 0.5 gives, half as many in any
	// 100 ms. Between 0 and 1; a negative value for no jitter.
	Jitter float64
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
		return nil, fmt.Errorf("wsclient: bad URL: %w", err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return nil, fmt.Errorf("wsclient: bad URL %q: scheme must be ws or wss", raw)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("wsclient: bad URL %q: no host", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("wsclient: bad URL %q: credentials in a WebSocket URL are not allowed; use Options.Header", u.Redacted())
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("wsclient: bad URL %q: a WebSocket URL has no fragment", raw)
	}
	return u, nil
}
