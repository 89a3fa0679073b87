package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestDialWS(t *testing.T) {
	t.Parallel()
	srv := newWSServer(t, wsServerOpts{subprotocols: []string{"v2"}})
	var dialed atomic.Int32
	cfg := &Config{
		URL:          srv.url("ws", "/feed"),
		Header:       http.Header{"X-Trace": {"abc"}},
		Subprotocols: []string{"v1", "v2"},
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialed.Add(1)
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	c, err := dialT(t, cfg)
	require.NoError(t, err)
	assert.EqualValues(t, 1, dialed.Load(), "cfg.NetDialContext makes the connection")
	assert.Equal(t, "v2", c.Subprotocol())
	assert.False(t, c.Compressed())
	resp := c.Response()
	require.NotNil(t, resp)
	assert.Equal(t, 101, resp.StatusCode)
	assert.Equal(t, http.NoBody, resp.Body)
	assert.Nil(t, resp.Request)

	req := srv.request(t)
	assert.Equal(t, "/feed", req.URL.Path)
	assert.Equal(t, srv.addr(), req.Host)
	assert.Equal(t, "abc", req.Header.Get("X-Trace"))
	assert.Equal(t, "13", req.Header.Get("Sec-WebSocket-Version"))
	assert.Equal(t, "v1, v2", req.Header.Get("Sec-WebSocket-Protocol"))
	assert.Empty(t, req.Header.Get("Sec-WebSocket-Extensions"), "no compression offered")
	key, err := decodeKey(req.Header.Get("Sec-WebSocket-Key"))
	require.NoError(t, err)
	assert.Len(t, key, 16)
	assert.NotNil(t, cfg.Header, "cfg untouched")
	assert.Len(t, cfg.Header, 1)
}

func TestDialHostHeaderOverrides(t *testing.T) {
	t.Parallel()
	srv := newWSServer(t, wsServerOpts{})
	_, err := dialT(t, &Config{URL: srv.url("ws", "/"), Header: http.Header{"Host": {"virtual.example"}}})
	require.NoError(t, err)
	assert.Equal(t, "virtual.example", srv.request(t).Host)
}

func TestDialCompressionWithGorilla(t *testing.T) {
	t.Parallel()
	srv := newWSServer(t, wsServerOpts{compression: true})
	c, err := dialT(t, &Config{URL: srv.url("ws", "/"), Compression: true})
	require.NoError(t, err)
	assert.True(t, c.Compressed())
	assert.Equal(t, deflateOffer, srv.request(t).Header.Get("Sec-WebSocket-Extensions"))

	c, err = dialT(t, &Config{URL: srv.url("ws", "/")})
	require.NoError(t, err)
	assert.False(t, c.Compressed(), "not offered: not on")
}

func TestDialRefusedKeepsStatusHeaderAndBody(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("b", 3000)
	srv := newRawServer(t, func(c net.Conn) {
		if _, _, err := readUpgrade(c); err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	})
	_, err := dialT(t, &Config{URL: &url.URL{Scheme: "ws", Host: srv.addr(), Path: "/"}})
	var he *HandshakeError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, 429, he.StatusCode)
	assert.Equal(t, "7", he.Header.Get("Retry-After"))
	assert.Equal(t, body[:1024], string(he.Body))
	assert.Equal(t, "wsclient: handshake failed: HTTP 429", err.Error())
}

func TestDialBad101(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		answer  func(*http.Request) string
		offer   []string
		want    error
		wantMsg string
	}{
		{"no accept", func(*http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
		}, nil, ErrBadAccept, "Sec-WebSocket-Accept"},
		{"wrong accept", func(*http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
				acceptKey("dGhlIHNhbXBsZSBub25jZQ==") + "\r\n\r\n"
		}, nil, ErrBadAccept, "does not match"},
		{"no upgrade", func(r *http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
				acceptKey(r.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n"
		}, nil, ErrBadAccept, "Upgrade"},
		{"no connection", func(r *http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " +
				acceptKey(r.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n"
		}, nil, ErrBadAccept, "Connection"},
		{"subprotocol not offered", func(r *http.Request) string {
			return accept101(r, "Sec-WebSocket-Protocol: chat")
		}, []string{"v1"}, ErrBadSubprotocol, `"chat"`},
		{"subprotocol without an offer", func(r *http.Request) string {
			return accept101(r, "Sec-WebSocket-Protocol: chat")
		}, nil, ErrBadSubprotocol, `"chat"`},
		{"extension not offered", func(r *http.Request) string {
			return accept101(r, "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover")
		}, nil, ErrBadExtension, `"permessage-deflate"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRawServer(t, func(c net.Conn) {
				req, _, err := readUpgrade(c)
				if err != nil {
					return
				}
				io.WriteString(c, tc.answer(req))
				io.Copy(io.Discard, c)
			})
			_, err := dialT(t, &Config{URL: &url.URL{Scheme: "ws", Host: srv.addr(), Path: "/"}, Subprotocols: tc.offer})
			var he *HandshakeError
			require.ErrorAs(t, err, &he)
			assert.Equal(t, 101, he.StatusCode)
			assert.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), "wsclient: handshake failed: HTTP 101: ")
			assert.Contains(t, err.Error(), tc.wantMsg)
		})
	}
}

func TestDialCompressionRefusal(t *testing.T) {
	t.Parallel()
	srv := newRawServer(t, func(c net.Conn) {
		req, _, err := readUpgrade(c)
		if err != nil {
			return
		}
		io.WriteString(c, accept101(req, "Sec-WebSocket-Extensions: permessage-deflate"))
		io.Copy(io.Discard, c)
	})
	_, err := dialT(t, &Config{URL: &url.URL{Scheme: "ws", Host: srv.addr()}, Compression: true})
	var he *HandshakeError
	require.ErrorAs(t, err, &he)
	assert.ErrorIs(t, err, ErrCompression)
	assert.Contains(t, err.Error(), "server_no_context_takeover")
}

func TestDialHandshakeTooLarge(t *testing.T) {
	t.Parallel()
	endless := func(c net.Conn, head string) {
		io.WriteString(c, head)
		chunk := []byte(strings.Repeat("x", 32<<10))
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}
	t.Run("upgrade response", func(t *testing.T) {
		srv := newRawServer(t, func(c net.Conn) {
			if _, _, err := readUpgrade(c); err != nil {
				return
			}
			endless(c, "HTTP/1.1 101 Switching Protocols\r\nX-Endless: ")
		})
		_, err := dialT(t, &Config{URL: &url.URL{Scheme: "ws", Host: srv.addr()}})
		assert.ErrorIs(t, err, ErrHandshakeTooLarge)
		assert.Contains(t, err.Error(), "wsclient: dial ws://"+srv.addr()+": handshake response over 1 MiB")
	})
	t.Run("proxy answer", func(t *testing.T) {
		px := newRawServer(t, func(c net.Conn) {
			if _, _, err := readUpgrade(c); err != nil { // the CONNECT
				return
			}
			endless(c, "HTTP/1.1 200 OK\r\nX-Endless: ")
		})
		_, err := dialT(t, &Config{URL: &url.URL{Scheme: "ws", Host: "echo.test"},
			Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: px.addr()})})
		assert.ErrorIs(t, err, ErrHandshakeTooLarge)
	})
	t.Run("just under the limit passes", func(t *testing.T) {
		// The whole answer (101 plus filler headers) is just under 1 MiB.
		srv := newRawServer(t, func(c net.Conn) {
			req, _, err := readUpgrade(c)
			if err != nil {
				return
			}
			ok := accept101(req)
			var b strings.Builder
			b.WriteString(strings.TrimSuffix(ok, "\r\n"))
			line := "X-Fill: " + strings.Repeat("f", 1000) + "\r\n"
			for b.Len()+len(line)+2 < handshakeLimit-2000 {
				b.WriteString(line)
			}
			b.WriteString("\r\n")
			io.WriteString(c, b.String())
			io.Copy(io.Discard, c)
		})
		_, err := dialT(t, &Config{URL: &url.URL{Scheme: "ws", Host: srv.addr()}})
		assert.NoError(t, err)
	})
}

func TestDialTimeout(t *testing.T) {
	t.Parallel()
	got := make(chan struct{}, 1)
	srv := newRawServer(t, func(c net.Conn) {
		readUpgrade(c)
		got <- struct{}{}
		io.Copy(io.Discard, c) // never answers
	})
	start := time.Now()
	_, err := dialT(t, &Config{URL: &url.URL{Scheme: "ws", Host: srv.addr(), Path: "/x"}, HandshakeTimeout: 200 * time.Millisecond})
	require.Error(t, err)
	assert.Less(t, time.Since(start), 3*time.Second)
	assert.Contains(t, err.Error(), "wsclient: handshake with ws://"+srv.addr()+"/x timed out after 200ms: ")
	assert.True(t, isTimeout(err), "a timeout: %v", err)
	<-got
}

func TestDialEOF(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, partial string }{
		{"nothing", ""},
		{"mid header", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRawServer(t, func(c net.Conn) {
				if _, _, err := readUpgrade(c); err == nil {
					io.WriteString(c, tc.partial)
				}
			})
			_, err := dialT(t, &Config{URL: &url.URL{Scheme: "ws", Host: srv.addr()}})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "wsclient: dial ws://"+srv.addr()+": the server closed the connection during the handshake (EOF)")
		})
	}
}

func TestDialConnectRefused(t *testing.T) {
	// Not parallel: another test could listen on the port it closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	_, err = dialT(t, &Config{URL: &url.URL{Scheme: "ws", Host: addr}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "wsclient: dial ws://"+addr+": ")
	assert.Contains(t, err.Error(), "refused")
}

// TestDialCancel: cancelling ctx cuts a stalled handshake short at every
// stage and leaves no goroutine behind.
func TestDialCancel(t *testing.T) {
	// Not parallel: goleak.VerifyNone sees every goroutine of the process.
	ca := newDTCA(t, "cancel CA")
	stalled := make(chan struct{}, 4)
	stall := func(c net.Conn) {
		stalled <- struct{}{}
		io.Copy(io.Discard, c)
	}
	upgradeStall := newRawServer(t, func(c net.Conn) {
		if _, _, err := readUpgrade(c); err == nil {
			stall(c)
		}
	})
	tcpStall := newRawServer(t, stall) // accepts TCP, never speaks TLS or HTTP
	for _, tc := range []struct {
		name string
		cfg  *Config
	}{
		{"waiting for the upgrade response", &Config{URL: &url.URL{Scheme: "ws", Host: upgradeStall.addr()}}},
		{"in the TLS handshake", &Config{URL: &url.URL{Scheme: "wss", Host: tcpStall.addr()}, TLS: &tls.Config{RootCAs: ca.pool}}},
		{"waiting for the proxy", &Config{URL: &url.URL{Scheme: "ws", Host: "echo.test"},
			Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: tcpStall.addr()})}},
		{"waiting for the SOCKS5 proxy", &Config{URL: &url.URL{Scheme: "ws", Host: "echo.test"},
			Proxy: http.ProxyURL(&url.URL{Scheme: "socks5", Host: tcpStall.addr()})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() {
				c, err := Dial(ctx, tc.cfg)
				if c != nil {
					c.Abort()
				}
				errc <- err
			}()
			<-stalled
			cancel()
			select {
			case err := <-errc:
				assert.ErrorIs(t, err, context.Canceled)
				assert.True(t, strings.HasPrefix(err.Error(), "wsclient: dial "), err.Error())
			case <-time.After(5 * time.Second):
				t.Fatal("Dial did not return after cancel")
			}
		})
	}
}

func TestDialProxyFunc(t *testing.T) {
	t.Parallel()
	srv := newWSServer(t, wsServerOpts{})
	var calls []*http.Request
	cfg := &Config{
		URL:    &url.URL{Scheme: "ws", Host: srv.addr(), Path: "/p", RawQuery: "a=1"},
		Header: http.Header{"X-A": {"1"}},
		Proxy: func(r *http.Request) (*url.URL, error) {
			calls = append(calls, r)
			return nil, nil // direct
		},
	}
	_, err := dialT(t, cfg)
	require.NoError(t, err)
	require.Len(t, calls, 1, "called exactly once")
	assert.Equal(t, "http", calls[0].URL.Scheme)
	assert.Equal(t, srv.addr(), calls[0].Host)
	assert.Equal(t, "/p", calls[0].URL.Path)
	assert.Equal(t, "1", calls[0].Header.Get("X-A"))
	assert.Equal(t, "ws", cfg.URL.Scheme, "cfg.URL untouched")

	calls = nil
	cfg.URL = &url.URL{Scheme: "wss", Host: "h.example"}
	cfg.Proxy = func(r *http.Request) (*url.URL, error) {
		calls = append(calls, r)
		return nil, errors.New("no proxy today")
	}
	_, err = dialT(t, cfg)
	require.Len(t, calls, 1)
	assert.Equal(t, "https", calls[0].URL.Scheme)
	assert.EqualError(t, err, "wsclient: dial wss://h.example: Options.Proxy: no proxy today")
}

// TestDialRedaction: no query value, userinfo or header value in any error.
func TestDialRedaction(t *testing.T) {
	t.Parallel()
	secrets := []string{"SECRET", "hunter2", "proxypass", "HDRVALUE", "LOCSECRET", "locpw"}
	check := func(t *testing.T, err error) {
		t.Helper()
		require.Error(t, err)
		for _, s := range secrets {
			assert.NotContains(t, err.Error(), s)
		}
	}
	redirect := newRawServer(t, func(c net.Conn) {
		if _, _, err := readUpgrade(c); err == nil {
			io.WriteString(c, "HTTP/1.1 302 Found\r\nLocation: wss://bob:locpw@other.example/x?sig=LOCSECRET\r\nContent-Length: 0\r\n\r\n")
		}
	})
	silent := newRawServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	eof := newRawServer(t, func(c net.Conn) { readUpgrade(c) })
	px := newConnectProxy(t, nil, "alice", "right", nil)
	hdr := http.Header{"Authorization": {"Bearer HDRVALUE"}}
	u := func(addr string) *url.URL {
		return &url.URL{Scheme: "ws", Host: addr, Path: "/feed", RawQuery: "token=SECRET&x", User: url.UserPassword("user", "hunter2")}
	}

	t.Run("redirect", func(t *testing.T) {
		_, err := dialT(t, &Config{URL: u(redirect.addr()), Header: hdr})
		check(t, err)
		assert.Contains(t, err.Error(), "HTTP 302 to wss://other.example/x?sig=REDACTED")
	})
	t.Run("timeout", func(t *testing.T) {
		_, err := dialT(t, &Config{URL: u(silent.addr()), Header: hdr, HandshakeTimeout: 100 * time.Millisecond})
		check(t, err)
		assert.Contains(t, err.Error(), "ws://"+silent.addr()+"/feed?token=REDACTED&REDACTED timed out")
	})
	t.Run("eof", func(t *testing.T) {
		_, err := dialT(t, &Config{URL: u(eof.addr()), Header: hdr})
		check(t, err)
	})
	t.Run("proxy refusal", func(t *testing.T) {
		_, err := dialT(t, &Config{URL: u("echo.test"), Header: hdr, Proxy: http.ProxyURL(px.url("http", "alice", "proxypass"))})
		check(t, err)
		assert.Contains(t, err.Error(), "via proxy http://"+px.addr()+": proxy refused CONNECT: 407 Proxy Authentication Required")
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := Dial(ctx, &Config{URL: u(silent.addr()), Header: hdr})
		check(t, err)
		assert.ErrorIs(t, err, context.Canceled)
	})
}

// echo sends msg through c and expects it back (the gorilla server echoes).
func echo(t *testing.T, c *Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.WriteMessage(ctx, OpText, []byte(msg)))
	m, err := c.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, OpText, m.Op)
	assert.Equal(t, msg, string(m.Data))
}

// TestDialEchoOnEveryPath: the Conn Dial returns works, on every path (the
// same TLS and codec code over whatever the tunnel is).
func TestDialEchoOnEveryPath(t *testing.T) {
	// Not parallel: it sets proxyRootCAs.
	ws, wss, ca, hosts := proxiedTargets(t)
	pca := newDTCA(t, "proxy CA")
	saved := proxyRootCAs
	proxyRootCAs = pca.pool
	t.Cleanup(func() { proxyRootCAs = saved })
	httpPx := newConnectProxy(t, hosts, "a", "b", nil)
	httpsPx := newConnectProxy(t, hosts, "", "", &tls.Config{Certificates: []tls.Certificate{pca.issue(t, "p", false, "127.0.0.1")}})
	socksPx := newSOCKS5Proxy(t, hosts, "c", "d")
	roots := &tls.Config{RootCAs: ca.pool, ServerName: "echo.test"}
	for _, tc := range []struct {
		name  string
		cfg   *Config
		proxy *url.URL
	}{
		{"ws direct", &Config{URL: ws.url("ws", "/")}, nil},
		{"wss direct", &Config{URL: wss.url("wss", "/"), TLS: roots}, nil},
		{"ws via CONNECT", &Config{URL: &url.URL{Scheme: "ws", Host: "echo.test"}}, httpPx.url("http", "a", "b")},
		{"wss via CONNECT", &Config{URL: &url.URL{Scheme: "wss", Host: "echo.test"}, TLS: roots}, httpPx.url("http", "a", "b")},
		{"ws via https CONNECT", &Config{URL: &url.URL{Scheme: "ws", Host: "echo.test"}}, httpsPx.url("https", "", "")},
		{"wss via https CONNECT", &Config{URL: &url.URL{Scheme: "wss", Host: "echo.test"}, TLS: roots}, httpsPx.url("https", "", "")},
		{"ws via SOCKS5", &Config{URL: &url.URL{Scheme: "ws", Host: "echo.test"}}, socksPx.url("socks5", "c", "d")},
		{"wss via SOCKS5", &Config{URL: &url.URL{Scheme: "wss", Host: "echo.test"}, TLS: roots}, socksPx.url("socks5h", "c", "d")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.proxy != nil {
				tc.cfg.Proxy = http.ProxyURL(tc.proxy)
			}
			c, err := dialT(t, tc.cfg)
			require.NoError(t, err)
			echo(t, c, "hello "+tc.name)
			echo(t, c, strings.Repeat("x", 100_000)) // well past the 4 KiB read buffer
		})
	}
}

// TestDialKeepsBytesAfterThe101: frames sent in the same segment as the 101
// are in br and reach ReadMessage.
func TestDialKeepsBytesAfterThe101(t *testing.T) {
	t.Parallel()
	srv := newRawServer(t, func(c net.Conn) {
		req, _, err := readUpgrade(c)
		if err != nil {
			return
		}
		io.WriteString(c, accept101(req)+"\x81\x05early\x82\x01\x07")
		io.Copy(io.Discard, c)
	})
	c, err := dialT(t, &Config{URL: &url.URL{Scheme: "ws", Host: srv.addr()}})
	require.NoError(t, err)
	m, err := c.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, Message{Op: OpText, Data: []byte("early")}, m)
	m, err = c.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, Message{Op: OpBinary, Data: []byte{7}}, m)
}

// TestDialNoLimitAfterTheUpgrade: the 1 MiB handshake limit ends with the
// upgrade (2 MiB of messages follow on the same socket).
func TestDialNoLimitAfterTheUpgrade(t *testing.T) {
	t.Parallel()
	srv := newWSServer(t, wsServerOpts{})
	c, err := dialT(t, &Config{URL: srv.url("ws", "/")})
	require.NoError(t, err)
	for range 4 {
		echo(t, c, strings.Repeat("y", 600<<10))
	}
}
