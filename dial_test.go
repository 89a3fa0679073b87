package wsclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/internal/tcpserver"
	"github.com/ff42ae21/wsclient/internal/testproxy"
	"github.com/ff42ae21/wsclient/wstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// connectProxy is an HTTP CONNECT proxy on 127.0.0.1 (internal/testproxy).
type connectProxy struct {
	*testproxy.Proxy
	user, pass string        // with user set: the Proxy-Authorization it demands; set before the first connection
	ln         proxyListener // ln.Addr() is the proxy's address
	seen       <-chan string // the CONNECT targets, in order (Proxy.Seen)
}

// proxyListener stands for the proxy's listener: its address.
type proxyListener struct{ addr net.Addr }

func (l proxyListener) Addr() net.Addr { return l.addr }

// newConnectProxy starts a CONNECT proxy that resolves the host:port names in
// hosts itself; it is closed at the end of the test.
func newConnectProxy(t *testing.T, hosts map[string]string) *connectProxy {
	t.Helper()
	p := &connectProxy{}
	p.Proxy = startProxy(t, testproxy.Connect, testproxy.Options{
		Hosts:       hosts,
		Credentials: func() (string, string) { return p.user, p.pass },
	})
	addr, err := net.ResolveTCPAddr("tcp", p.Addr())
	require.NoError(t, err)
	p.ln, p.seen = proxyListener{addr}, p.Seen()
	return p
}

// url is the proxy's URL, with credentials when given.
func (p *connectProxy) url(user, pass string) *url.URL { return p.URL(user, pass) }

func TestProxyHTTPConnectWS(t *testing.T) {
	srv := wstest.Start(t, &wstest.Options{Echo: true})
	px := newConnectProxy(t, map[string]string{"echo.test:80": srv.Addr()})
	rec := newRecorder()
	remote := make(chan net.Addr, 1)
	rec.onConnect = func(c *Conn) error { remote <- c.RemoteAddr(); return nil }
	o := testOptions()
	o.Proxy = http.ProxyURL(px.url("", ""))
	// echo.test does not resolve here: only the proxy knows it.
	c := mustNew(t, "ws://echo.test/feed", rec, o)
	startClient(t, c)
	rec.next(t, "connect")
	assert.Equal(t, "echo.test:80", <-px.Seen())
	assert.Equal(t, px.Addr(), (<-remote).String(), "the socket goes to the proxy")
	require.NoError(t, c.Send(ctxTimeout(t, 5*time.Second), TextFrame("through the proxy")))
	assert.Equal(t, "through the proxy", string(rec.next(t, "frame").frame.Data))
}

// The target is localhost, the name (besides 127.0.0.1) of wstest's
// certificate; only the proxy resolves it (Hosts), the client sends it to the
// proxy in CONNECT and as its TLS server name.
func TestProxyHTTPConnectWSSVerifiesTheTarget(t *testing.T) {
	srv := wstest.Start(t, &wstest.Options{TLS: true, Echo: true})
	px := newConnectProxy(t, map[string]string{"localhost:443": srv.Addr()})
	px.user, px.pass = "alice", "s3cret"

	rec := newRecorder()
	o := testOptions()
	o.TLSConfig = &tls.Config{RootCAs: srv.CertPool()}
	o.Proxy = http.ProxyURL(px.url("alice", "s3cret"))
	c := mustNew(t, "wss://localhost/", rec, o)
	startClient(t, c)
	rec.next(t, "connect")
	assert.Equal(t, "localhost:443", <-px.Seen())
	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	req := reqs[0]
	require.NotNil(t, req.TLS)
	assert.Equal(t, "localhost", req.TLS.ServerName, "TLS runs end to end with the target, through the tunnel")
	require.NoError(t, c.Send(ctxTimeout(t, 5*time.Second), BinaryFrame([]byte{1, 2, 3})))
	assert.Equal(t, []byte{1, 2, 3}, rec.next(t, "frame").frame.Data)
}

func TestProxyRefusalIsReportedAndRetried(t *testing.T) {
	srv := wstest.Start(t, nil)
	px := newConnectProxy(t, nil)
	px.user, px.pass = "alice", "s3cret"
	rec := newRecorder()
	o := testOptions()
	o.Proxy = http.ProxyURL(px.url("alice", "wrong"))
	c := mustNew(t, srv.URL(), rec, o)
	startClient(t, c)
	for i := 1; i <= 2; i++ {
		d := rec.next(t, "disconnect").disc
		require.Error(t, d.Err)
		assert.Contains(t, d.Err.Error(), "Proxy Authentication Required")
		assert.Contains(t, d.Err.Error(), "via proxy http://"+px.Addr(), "the proxy is named")
		assert.NotContains(t, d.Err.Error(), "wrong", "its password is not")
		assert.NotContains(t, d.Err.Error(), "alice", "nor its user name")
		var pe *ProxyError
		if assert.ErrorAs(t, d.Err, &pe) {
			assert.Equal(t, http.StatusProxyAuthRequired, pe.StatusCode)
		}
		assert.False(t, d.Suggested.IsStop())
		assert.Equal(t, i, d.Attempt)
	}
	assert.Zero(t, srv.Stats().Requests)
}

func TestProxyDefaultIsFromEnvironment(t *testing.T) {
	c := mustNew(t, "wss://example.com/", BaseHandler{}, nil)
	assert.Equal(t, reflect.ValueOf(http.ProxyFromEnvironment).Pointer(), reflect.ValueOf(c.opts.Proxy).Pointer())
}

// The server accepts only v2, the client's second offer: the client reports
// the server's choice, not its own first offer.
func TestSubprotocolOfferedAndChosen(t *testing.T) {
	srv := wstest.Start(t, &wstest.Options{Subprotocols: []string{"v2"}})
	rec := newRecorder()
	chosen := make(chan string, 1)
	rec.onConnect = func(c *Conn) error { chosen <- c.Subprotocol(); return nil }
	o := testOptions()
	o.Subprotocols = []string{"v1", "v2"}
	c := mustNew(t, srv.URL(), rec, o)
	startClient(t, c)
	rec.next(t, "connect")
	assert.Equal(t, "v2", <-chosen)
	assert.Equal(t, "v1, v2", firstRequest(t, srv).Header.Get("Sec-Websocket-Protocol"))
}

func TestSubprotocolNoneChosenIsFine(t *testing.T) {
	srv := wstest.Start(t, nil)
	rec := newRecorder()
	chosen := make(chan string, 1)
	rec.onConnect = func(c *Conn) error { chosen <- c.Subprotocol(); return nil }
	o := testOptions()
	o.Subprotocols = []string{"v1"}
	c := mustNew(t, srv.URL(), rec, o)
	startClient(t, c)
	rec.next(t, "connect")
	assert.Equal(t, "", <-chosen)
}

// headerServer starts a wstest server whose every 101 carries h (replacing
// the negotiated Sec-WebSocket-Protocol and Sec-WebSocket-Extensions).
func headerServer(t *testing.T, h http.Header) *wstest.Server {
	t.Helper()
	return wstest.Start(t, &wstest.Options{Check: func(*http.Request) *wstest.Response {
		return &wstest.Response{Header: h}
	}})
}

// firstRequest is the first handshake request srv read.
func firstRequest(t *testing.T, srv *wstest.Server) *http.Request {
	t.Helper()
	reqs := srv.Requests()
	require.NotEmpty(t, reqs, "no handshake request")
	return reqs[0]
}

func TestSubprotocolNotOfferedFailsHandshake(t *testing.T) {
	for _, tc := range []struct {
		name    string
		offered []string
	}{{"other offered", []string{"v1"}}, {"none offered", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := headerServer(t, http.Header{"Sec-Websocket-Protocol": {"evil"}})
			rec := newRecorder()
			o := testOptions()
			o.Subprotocols = tc.offered
			c := mustNew(t, srv.URL(), rec, o)
			err := c.Run(ctxTimeout(t, 5*time.Second))
			var he *HandshakeError
			require.ErrorAs(t, err, &he)
			assert.Equal(t, http.StatusSwitchingProtocols, he.StatusCode)
			assert.ErrorIs(t, err, ErrBadSubprotocol)
			assert.Contains(t, err.Error(), `"evil"`)
			d := rec.next(t, "disconnect").disc
			assert.True(t, d.Suggested.IsStop())
			assert.False(t, d.Connected)
			assert.Equal(t, 1, srv.Stats().Requests)
		})
	}
}

func TestExtensionNotOfferedFailsHandshake(t *testing.T) {
	for _, tc := range []struct {
		name        string
		compression bool
		ext         string
	}{
		{"deflate not offered", false, "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{"unknown extension", true, "x-webkit-deflate-frame"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := headerServer(t, http.Header{"Sec-Websocket-Extensions": {tc.ext}})
			rec := newRecorder()
			rec.decide = func(Disconnect) Decision { return Stop() }
			o := testOptions()
			o.Compression = tc.compression
			c := mustNew(t, srv.URL(), rec, o)
			err := c.Run(ctxTimeout(t, 5*time.Second))
			var he *HandshakeError
			require.ErrorAs(t, err, &he)
			assert.ErrorIs(t, err, ErrBadExtension)
			assert.False(t, rec.next(t, "disconnect").disc.Connected)
		})
	}
}

func TestCompressionEcho(t *testing.T) {
	srv := wstest.Start(t, &wstest.Options{Compression: true, Echo: true})
	rec := newRecorder()
	ext := make(chan string, 1)
	rec.onConnect = func(c *Conn) error { ext <- c.Response().Header.Get("Sec-Websocket-Extensions"); return nil }
	o := testOptions()
	o.Compression = true
	var counted byteCount // the wire, at the client's socket
	o.NetDialContext = countingDial(&counted)
	c := mustNew(t, srv.URL(), rec, o)
	startClient(t, c)
	rec.next(t, "connect")
	assert.Contains(t, <-ext, "permessage-deflate")
	assert.Contains(t, firstRequest(t, srv).Header.Get("Sec-Websocket-Extensions"), "client_no_context_takeover")

	ctx := ctxTimeout(t, 5*time.Second)
	big := strings.Repeat("compress me, compress me well. ", 1<<15) // 1 MiB
	written0, read0 := counted.written.Load(), counted.read.Load()
	require.NoError(t, c.Send(ctx, TextFrame(big)))
	f := rec.next(t, "frame").frame
	assert.Equal(t, Text, f.Type)
	assert.Equal(t, big, string(f.Data))
	require.NoError(t, c.Send(ctx, BinaryFrame([]byte("small"))))
	assert.Equal(t, "small", string(rec.next(t, "frame").frame.Data))
	// 1 MiB each way went over the wire deflated.
	up, down := counted.written.Load()-written0, counted.read.Load()-read0
	t.Logf("1 MiB echoed with compression: %d bytes up, %d bytes down", up, down)
	assert.Less(t, up, int64(64<<10))
	assert.Less(t, down, int64(64<<10))
}

func TestCompressionOffByDefault(t *testing.T) {
	srv := wstest.Start(t, &wstest.Options{Compression: true})
	rec := newRecorder()
	ext := make(chan string, 1)
	rec.onConnect = func(c *Conn) error { ext <- c.Response().Header.Get("Sec-Websocket-Extensions"); return nil }
	c := mustNew(t, srv.URL(), rec, testOptions())
	startClient(t, c)
	rec.next(t, "connect")
	assert.Empty(t, <-ext)
	assert.Empty(t, firstRequest(t, srv).Header.Values("Sec-Websocket-Extensions"))
}

func TestResponseHeadersInOnConnect(t *testing.T) {
	srv := headerServer(t, http.Header{
		"Set-Cookie": {"session=abc123; Path=/; HttpOnly"},
		"X-Server":   {"test"},
	})
	rec := newRecorder()
	type seen struct {
		cookies []*http.Cookie
		server  string
		status  int
	}
	got := make(chan seen, 1)
	rec.onConnect = func(c *Conn) error {
		r := c.Response()
		got <- seen{r.Cookies(), r.Header.Get("X-Server"), r.StatusCode}
		return nil
	}
	c := mustNew(t, srv.URL(), rec, testOptions())
	startClient(t, c)
	rec.next(t, "connect")
	s := <-got
	assert.Equal(t, http.StatusSwitchingProtocols, s.status)
	assert.Equal(t, "test", s.server)
	require.Len(t, s.cookies, 1)
	assert.Equal(t, "session", s.cookies[0].Name)
	assert.Equal(t, "abc123", s.cookies[0].Value)
}

// countingDial is a NetDialContext that counts the bytes the client reads
// from and writes to its sockets in n.
func countingDial(n *byteCount) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: nc, n: n}, nil
	}
}

// TestHandshakeTimeoutBoundsEveryPhase: on every path (connPaths), a peer that
// says nothing in one phase of the handshake (the proxy's answer, the TLS
// handshake, the upgrade answer) makes each attempt end after HandshakeTimeout,
// as a timeout that is retried: <path>/<phase>. The quiet proxy is a
// silentListener; the server is wstest's, behind a blackhole (no TLS
// handshake) or stalling every upgrade request.
func TestHandshakeTimeoutBoundsEveryPhase(t *testing.T) {
	for _, p := range connPaths {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			type phase struct {
				name       string
				blackhole  bool // the server's network forwards nothing: no TLS handshake either
				quietProxy bool // the proxy is the one that says nothing
			}
			var phases []phase
			if p.proxy != nil {
				phases = append(phases, phase{name: "no proxy answer", quietProxy: true})
			}
			if p.tls {
				phases = append(phases, phase{name: "no TLS handshake", blackhole: true})
			}
			phases = append(phases, phase{name: "no upgrade answer"})
			for _, ph := range phases {
				t.Run(ph.name, func(t *testing.T) {
					srv := hsStart(t, p, wstest.Options{Check: func(*http.Request) *wstest.Response {
						return &wstest.Response{Stall: true}
					}})
					if ph.blackhole {
						srv.Network().SetBlackhole(true)
					}
					const timeout = 100 * time.Millisecond
					var mu sync.Mutex
					var starts []time.Time
					var took []time.Duration
					rec := newRecorder()
					o := testOptions()
					o.HandshakeTimeout = timeout
					target := srv.Addr()
					viaProxy := p.client(t, o, target)
					if p.tls {
						o.TLSConfig = srv.ClientTLSConfig()
					}
					if ph.quietProxy {
						quiet := tcpserver.Start(t, func(c net.Conn) { io.Copy(io.Discard, c) }) // accepts, never says a byte
						u := &url.URL{Scheme: "http", Host: quiet.Addr()}
						if *p.proxy == testproxy.SOCKS5 {
							u.Scheme = "socks5"
						}
						o.Proxy = http.ProxyURL(u)
						viaProxy = func(t testing.TB) {
							assert.Positive(t, quiet.Accepted(), "the client dialed the proxy")
						}
					}
					o.OnStateChange = func(sc StateChange) {
						mu.Lock()
						defer mu.Unlock()
						switch sc.To {
						case Connecting:
							starts = append(starts, time.Now())
						case Reconnecting:
							took = append(took, time.Since(starts[len(starts)-1]))
						}
					}
					c := mustNew(t, p.scheme()+"://"+target+"/", rec, o)
					startClient(t, c)
					for i := 1; i <= 3; i++ { // the third: the second's Reconnecting was reported
						d := rec.next(t, "disconnect").disc
						assert.Contains(t, d.Err.Error(), "timed out after 100ms")
						var tlsErr *TLSError
						assert.False(t, errors.As(d.Err, &tlsErr), "a timeout is not a certificate error")
						assert.False(t, d.Suggested.IsStop(), "a timeout is retried")
						assert.Equal(t, i, d.Attempt)
					}
					viaProxy(t)
					if ph.blackhole || ph.quietProxy {
						assert.Zero(t, srv.Stats().Requests, "no request reached the server")
					}
					mu.Lock()
					defer mu.Unlock()
					for _, d := range took[:2] {
						assert.GreaterOrEqual(t, d, timeout)
						assert.Less(t, d, timeout+time.Second, "HandshakeTimeout bounds the attempt")
					}
					t.Logf("attempts took %v (HandshakeTimeout %v)", took[:2], timeout)
				})
			}
		})
	}
}

func TestReservedHeadersRejected(t *testing.T) {
	for _, k := range []string{"Sec-Websocket-Protocol", "Sec-Websocket-Extensions", "Connection"} {
		_, err := New("ws://h/", BaseHandler{}, &Options{Header: http.Header{k: {"x"}}})
		assert.ErrorContains(t, err, k)
	}
	// A HeaderFunc returning one fails the attempt, not the process.
	rec := newRecorder()
	rec.decide = func(Disconnect) Decision { return Stop() }
	o := testOptions()
	o.HeaderFunc = func(context.Context) (http.Header, error) {
		return http.Header{"Sec-Websocket-Protocol": {"sneaky"}}, nil
	}
	c := mustNew(t, "ws://127.0.0.1:1/", rec, o)
	assert.ErrorContains(t, c.Run(ctxTimeout(t, 5*time.Second)), "Sec-Websocket-Protocol")
}

// echoThrough sends msg and waits for its echo.
func echoThrough(t *testing.T, c *Client, rec *recorder, f Frame) {
	t.Helper()
	require.NoError(t, c.Send(ctxTimeout(t, 5*time.Second), f))
	for {
		got := rec.next(t, "frame").frame
		if got.Type == f.Type && bytes.Equal(got.Data, f.Data) {
			return
		}
		if got.Type != Ping && got.Type != Pong {
			t.Fatalf("got %v %q, want the echo of %v", got.Type, got.Data, f.Type)
		}
	}
}
