package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ff42ae21/wsclient"
)

// Exit codes (documented in usage).
const (
	exitOK      = 0   // a clean end
	exitStopped = 1   // the policy (or --no-reconnect) stopped the client
	exitUsage   = 2   // bad usage: unknown flag, bad URL, unreadable file
	exitForced  = 130 // a second Ctrl-C: exited at once, close handshake cut short
)

const usageText = `wsc: a reconnecting command-line WebSocket client

Usage:
  wsc [flags] URL
  wsc [flags] -c URL

Each line of stdin is sent as a message (text; binary with -b). Each message
received is printed on stdout (text as it is; binary as hex, or base64 with
--base64). Connects, disconnects and their causes go to stderr. Keepalive pings
are on; after a lost connection wsc reconnects with backoff and jitter, unless
the cause cannot heal (401, certificate errors, close 1008...). stdin is read
once the first connection is open.

Connection:
  -c, --connect URL         the ws:// or wss:// URL (or give it as the argument)
  -H, --header 'K: V'       handshake header (repeatable)
  -s, --subprotocol P       offer subprotocol P (repeatable)
  -o, --origin O            Origin header
      --auth user:pass      HTTP basic authentication
      --proxy URL           proxy (http, https, socks5, socks5h); default from
                            HTTPS_PROXY/HTTP_PROXY/NO_PROXY
TLS:
      --ca FILE             CA bundle (PEM) that verifies the server, instead of
                            the system roots
      --cert FILE           client certificate (PEM) for mutual TLS, with --key
      --key FILE            its private key (PEM)
  -k, --insecure            do NOT verify the server's certificate (tests only)
Keepalive and reconnect:
      --ping-interval D     keepalive ping interval (default 20s; 0 turns it off)
      --pong-timeout D      no frame within D of a ping: dead peer (default 10s)
  -P, --show-ping-pong      print pings and pongs received, with the round trip
      --no-reconnect        stop at the first lost connection or failed attempt
      --max-backoff D       longest wait between attempts (default 30s;
                            a server's Retry-After may ask for longer)
      --close-timeout D     wait for the server's close answer (default 5s)
Messages:
  -x, --execute MSG         send MSG after every connect, before the lines of
                            stdin (repeatable: re-subscribe after a reconnect)
  -w, --wait D              with -x: exit D after the last message received
                            (stdin's end then does not close)
  -b, --binary              send stdin lines as binary messages
      --base64              print binary messages as base64 instead of hex
      --outbox N            up to N lines typed while disconnected wait and go
                            after the reconnect (default 0: reported on stderr
                            as not sent)
      --slash               stdin commands: /ping [payload], /close [code
                            [reason]], /stats; //text sends /text
      --json                stdout: one JSON object per line, "event" is
                            message, connect, disconnect, ping, pong or stats
      --debug               log the client library's state changes on stderr
  -h, --help                this help

Durations are Go durations: 500ms, 2s, 1m30s. Each flag has one name per
argument (-k -P, not -kP); flags may follow the URL.

Exit codes:
  0    a clean end: stdin's end followed by the close handshake, /close, -w's
       wait over, Ctrl-C (close 1000, waiting up to --close-timeout), or the
       server's close 1000 with --no-reconnect
  1    stopped by the reconnect policy (401, 403, certificate error, close
       1002/1003/1007-1010...) or by --no-reconnect; the cause is on stderr
  2    bad usage: unknown flag, bad URL, bad value, unreadable file
  130  a second Ctrl-C: exited at once
`

// config is the parsed command line.
type config struct {
	url                         string
	headers, subprotocols, exec []string
	origin, auth, proxy         string
	ca, cert, key               string
	insecure                    bool
	pingInterval, pongTimeout   time.Duration
	maxBackoff, closeTimeout    time.Duration
	wait                        time.Duration
	showPingPong, noReconnect   bool
	binary, base64, slash, json bool
	debug                       bool
	outbox                      int
}

// strList is a repeatable string flag.
type strList []string

func (s *strList) String() string     { return strings.Join(*s, ", ") }
func (s *strList) Set(v string) error { *s = append(*s, v); return nil }

// usageError is bad usage: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// parseArgs parses the command line. It returns flag.ErrHelp for -h.
func parseArgs(args []string) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("wsc", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	str := func(p *string, names ...string) {
		for _, n := range names {
			fs.StringVar(p, n, "", "")
		}
	}
	list := func(p *strList, names ...string) {
		for _, n := range names {
			fs.Var(p, n, "")
		}
	}
	boolean := func(p *bool, names ...string) {
		for _, n := range names {
			fs.BoolVar(p, n, false, "")
		}
	}
	dur := func(p *time.Duration, def time.Duration, name string) { fs.DurationVar(p, name, def, "") }

	var headers, subprotocols, exec strList
	var connect string
	str(&connect, "c", "connect")
	list(&headers, "H", "header")
	list(&subprotocols, "s", "subprotocol")
	str(&cfg.origin, "o", "origin")
	str(&cfg.auth, "auth")
	str(&cfg.proxy, "proxy")
	str(&cfg.ca, "ca")
	str(&cfg.cert, "cert")
	str(&cfg.key, "key")
	boolean(&cfg.insecure, "k", "insecure")
	dur(&cfg.pingInterval, 20*time.Second, "ping-interval")
	dur(&cfg.pongTimeout, 10*time.Second, "pong-timeout")
	boolean(&cfg.showPingPong, "P", "show-ping-pong")
	boolean(&cfg.noReconnect, "no-reconnect")
	dur(&cfg.maxBackoff, 30*time.Second, "max-backoff")
	dur(&cfg.closeTimeout, 5*time.Second, "close-timeout")
	list(&exec, "x", "execute")
	for _, n := range []string{"w", "wait"} {
		fs.DurationVar(&cfg.wait, n, 0, "")
	}
	boolean(&cfg.binary, "b", "binary")
	boolean(&cfg.base64, "base64")
	fs.IntVar(&cfg.outbox, "outbox", 0, "")
	boolean(&cfg.slash, "slash")
	boolean(&cfg.json, "json")
	boolean(&cfg.debug, "debug")

	// Flags may come before and after the URL: parse, take one positional
	// argument, parse the rest. After "--" everything is positional.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%s", strings.Replace(err.Error(), "flag provided but not defined", "unknown flag", 1))
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	cfg.headers, cfg.subprotocols, cfg.exec = headers, subprotocols, exec

	switch {
	case connect != "" && len(pos) > 0:
		return nil, usagef("give the URL once: -c %s or %s", connect, pos[0])
	case connect != "":
		cfg.url = connect
	case len(pos) == 1:
		cfg.url = pos[0]
	case len(pos) == 0:
		return nil, usagef("no URL given")
	default:
		return nil, usagef("one URL only, got %d arguments: %s", len(pos), strings.Join(pos, " "))
	}
	if cfg.wait < 0 || cfg.pongTimeout <= 0 || cfg.maxBackoff <= 0 || cfg.closeTimeout <= 0 || cfg.pingInterval < 0 {
		return nil, usagef("durations must be positive (--ping-interval may be 0 to turn keepalive off)")
	}
	if cfg.wait > 0 && len(cfg.exec) == 0 {
		return nil, usagef("-w/--wait needs -x/--execute")
	}
	if cfg.outbox < 0 {
		return nil, usagef("--outbox must be 0 or more")
	}
	if (cfg.cert == "") != (cfg.key == "") {
		return nil, usagef("--cert and --key go together")
	}
	if cfg.auth != "" && !strings.Contains(cfg.auth, ":") {
		return nil, usagef("--auth takes user:pass")
	}
	return cfg, nil
}

// options turns cfg into the client's options; its errors are bad usage.
// It reads the TLS files once, so that an unreadable file is reported now.
func (cfg *config) options() (*wsclient.Options, error) {
	o := &wsclient.Options{
		Header:                http.Header{},
		Subprotocols:          cfg.subprotocols,
		InsecureSkipVerifyTLS: cfg.insecure,
		PingInterval:          cfg.pingInterval,
		PongTimeout:           cfg.pongTimeout,
		CloseTimeout:          cfg.closeTimeout,
		OutboxSize:            cfg.outbox,
		Backoff:               wsclient.Backoff{Max: cfg.maxBackoff},
	}
	if cfg.pingInterval == 0 {
		o.PingInterval = -1 // off
	}
	if cfg.maxBackoff < 500*time.Millisecond {
		o.Backoff.Initial = cfg.maxBackoff
	}
	for _, h := range cfg.headers {
		k, v, ok := strings.Cut(h, ":")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, usagef("bad header %q: use -H 'Name: value'", h)
		}
		o.Header.Add(textproto.CanonicalMIMEHeaderKey(k), strings.TrimSpace(v))
	}
	if cfg.origin != "" {
		o.Header.Set("Origin", cfg.origin)
	}
	// Credentials in the URL (ws://user:pass@host) mean --auth.
	if u, err := url.Parse(cfg.url); err == nil && u.User != nil {
		if cfg.auth == "" {
			pass, _ := u.User.Password()
			cfg.auth = u.User.Username() + ":" + pass
		}
		u.User = nil
		cfg.url = u.String()
	}
	if cfg.auth != "" {
		o.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cfg.auth)))
	}
	if cfg.proxy != "" {
		pu, err := url.Parse(cfg.proxy)
		if err != nil || pu.Host == "" {
			return nil, usagef("bad --proxy URL %q", cfg.proxy)
		}
		switch pu.Scheme {
		case "http", "https", "socks5", "socks5h":
		default:
			return nil, usagef("bad --proxy URL: scheme %q (http, https, socks5, socks5h)", pu.Scheme)
		}
		o.Proxy = http.ProxyURL(pu)
	}
	if cfg.ca != "" || cfg.cert != "" {
		files := &wsclient.TLSFiles{CAFile: cfg.ca, CertFile: cfg.cert, KeyFile: cfg.key}
		if _, err := files.Config(nil); err != nil {
			return nil, usagef("%s", strings.TrimPrefix(err.Error(), "wsclient: "))
		}
		o.TLSFiles = files
	}
	return o, nil
}

// parseClose parses "/close [code [reason]]"'s arguments.
func parseClose(args string) (int, string, error) {
	args = strings.TrimSpace(args)
	if args == "" {
		return wsclient.CloseNormal, "", nil
	}
	codeStr, reason, _ := strings.Cut(args, " ")
	code, err := strconv.Atoi(codeStr)
	if err != nil || !sendableCode(code) {
		return 0, "", fmt.Errorf("close code %q may not be sent (1000, 1001, 1002, 1003, 1007-1014, 3000-4999)", codeStr)
	}
	if len(reason) > 123 {
		return 0, "", errors.New("close reason is over 123 bytes")
	}
	return code, reason, nil
}

func sendableCode(c int) bool {
	switch {
	case c >= 3000 && c <= 4999:
		return true
	case c >= 1000 && c <= 1003, c >= 1007 && c <= 1014:
		return true
	}
	return false
}
