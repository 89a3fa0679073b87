package transport

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func recv[T any](t *testing.T, ch chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("nothing received")
		var zero T
		return zero
	}
}

// proxiedTargets: a ws and a wss server known as echo.test only to the proxy.
func proxiedTargets(t *testing.T) (ws, wss *wsServer, ca *dtCA, hosts map[string]string) {
	ca = newDTCA(t, "target CA")
	ws = newWSServer(t, wsServerOpts{})
	wss = newWSServer(t, wsServerOpts{tls: &tls.Config{Certificates: []tls.Certificate{ca.issue(t, "echo.test", false, "echo.test")}}})
	return ws, wss, ca, map[string]string{"echo.test:80": ws.addr(), "echo.test:443": wss.addr()}
}

func TestProxyHTTPConnect(t *testing.T) {
	t.Parallel()
	ws, wss, ca, hosts := proxiedTargets(t)
	open := newConnectProxy(t, hosts, "", "", nil)
	auth := newConnectProxy(t, hosts, "alice", "s3cret", nil)
	for _, tc := range []struct {
		name  string
		proxy *url.URL
		px    *proxyServer
	}{
		{"no auth", open.url("http", "", ""), open},
		{"basic auth", auth.url("http", "alice", "s3cret"), auth},
	} {
		t.Run(tc.name+"/ws", func(t *testing.T) {
			c, err := dialT(t, &Config{URL: &url.URL{Scheme: "ws", Host: "echo.test", Path: "/a"}, Proxy: http.ProxyURL(tc.proxy)})
			require.NoError(t, err)
			assert.Equal(t, 101, c.Response().StatusCode)
			assert.Equal(t, "echo.test:80", recv(t, tc.px.seen))
			assert.Equal(t, "echo.test", ws.request(t).Host)
		})
		t.Run(tc.name+"/wss", func(t *testing.T) {
			c, err := dialT(t, &Config{URL: &url.URL{Scheme: "wss", Host: "echo.test", Path: "/a"},
				TLS: &tls.Config{RootCAs: ca.pool}, Proxy: http.ProxyURL(tc.proxy)})
			require.NoError(t, err)
			assert.NotNil(t, c.Response().TLS)
			assert.Equal(t, "echo.test:443", recv(t, tc.px.seen))
			req := wss.request(t)
			require.NotNil(t, req.TLS)
			assert.Equal(t, "echo.test", req.TLS.ServerName, "TLS runs end to end with the target, through the tunnel")
		})
	}
	for _, tc := range []struct {
		name string
		u    *url.URL
	}{
		{"no credentials", auth.url("http", "", "")},
		{"wrong password", auth.url("http", "alice", "wrong")},
	} {
		t.Run(tc.name+" is refused with 407", func(t *testing.T) {
			_, err := dialT(t, &Config{URL: &url.URL{Scheme: "ws", Host: "echo.test"}, Proxy: http.ProxyURL(tc.u)})
			var pe *ProxyError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, 407, pe.StatusCode)
			assert.True(t, pe.Auth)
			assert.Equal(t, `Basic realm="test"`, pe.Header.Get("Proxy-Authenticate"))
			assert.Equal(t, "wsclient: dial ws://echo.test via proxy http://"+auth.addr()+": proxy refused CONNECT: 407 Proxy Authentication Required", err.Error())
		})
	}
	t.Run("bad gateway", func(t *testing.T) {
		_, err := dialT(t, &Config{URL: &url.URL{Scheme: "ws", Host: "127.0.0.1:1"}, Proxy: http.ProxyURL(open.url("http", "", ""))})
		var pe *ProxyError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, 502, pe.StatusCode)
		assert.False(t, pe.Auth)
	})
}

func TestProxyHTTPS(t *testing.T) {
	// Not parallel: it sets proxyRootCAs.
	_, wss, ca, hosts := proxiedTargets(t)
	pca := newDTCA(t, "proxy CA")
	px := newConnectProxy(t, hosts, "bob", "pw", &tls.Config{Certificates: []tls.Certificate{pca.issue(t, "localhost", false, "localhost", "127.0.0.1")}})
	saved := proxyRootCAs
	proxyRootCAs = pca.pool
	t.Cleanup(func() { proxyRootCAs = saved })

	c, err := dialT(t, &Config{URL: &url.URL{Scheme: "wss", Host: "echo.test"},
		TLS: &tls.Config{RootCAs: ca.pool}, Proxy: http.ProxyURL(px.url("https", "bob", "pw"))})
	require.NoError(t, err)
	assert.Equal(t, "echo.test", c.Response().TLS.ServerName)
	assert.Equal(t, "echo.test:443", recv(t, px.seen))
	assert.Equal(t, "echo.test", wss.request(t).TLS.ServerName)

	t.Run("proxy certificate verified against its host", func(t *testing.T) {
		proxyRootCAs = ca.pool // not the proxy's CA
		_, err := dialT(t, &Config{URL: &url.URL{Scheme: "wss", Host: "echo.test"},
			TLS: &tls.Config{RootCAs: ca.pool}, Proxy: http.ProxyURL(px.url("https", "bob", "pw"))})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "TLS to the proxy")
		var te *TLSError
		assert.False(t, errorsAs(err, &te), "the proxy's certificate is not the server's: no TLSError")
	})
}

func TestProxySOCKS5(t *testing.T) {
	t.Parallel()
	ws, wss, ca, hosts := proxiedTargets(t)
	open := newSOCKS5Proxy(t, hosts, "", "")
	auth := newSOCKS5Proxy(t, hosts, "carol", "pw5")
	for _, scheme := range []string{"socks5", "socks5h"} {
		t.Run(scheme+"/ws", func(t *testing.T) {
			_, err := dialT(t, &Config{URL: &url.URL{Scheme: "ws", Host: "echo.test"}, Proxy: http.ProxyURL(open.url(scheme, "", ""))})
			require.NoError(t, err)
			assert.EqualValues(t, 3, recv(t, open.atyp), "the host name goes to the proxy")
			assert.Equal(t, "echo.test:80", recv(t, open.seen))
			assert.Equal(t, "echo.test", ws.request(t).Host)
		})
	}
	t.Run("auth/wss", func(t *testing.T) {
		_, err := dialT(t, &Config{URL: &url.URL{Scheme: "wss", Host: "echo.test"},
			TLS: &tls.Config{RootCAs: ca.pool}, Proxy: http.ProxyURL(auth.url("socks5", "carol", "pw5"))})
		require.NoError(t, err)
		assert.Equal(t, "echo.test:443", recv(t, auth.seen))
		assert.Equal(t, "echo.test", wss.request(t).TLS.ServerName)
	})
	t.Run("IP address as ATYP 1", func(t *testing.T) {
		_, err := dialT(t, &Config{URL: &url.URL{Scheme: "ws", Host: ws.addr()}, Proxy: http.ProxyURL(open.url("socks5", "", ""))})
		require.NoError(t, err)
		assert.EqualValues(t, 1, recv(t, open.atyp))
	})
	for _, tc := range []struct {
		name  string
		u     *url.URL
		reply int
		msg   string
	}{
		{"wrong password", auth.url("socks5", "carol", "nope"), 0, "socks5 proxy refused the username/password (RFC 1929 status 1)"},
		{"no credentials", auth.url("socks5", "", ""), 0, "socks5 proxy refused connections without authentication (no acceptable method)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dialT(t, &Config{URL: &url.URL{Scheme: "ws", Host: "echo.test"}, Proxy: http.ProxyURL(tc.u)})
			var pe *ProxyError
			require.ErrorAs(t, err, &pe)
			assert.True(t, pe.Auth)
			assert.Contains(t, err.Error(), tc.msg)
			assert.NotContains(t, err.Error(), "nope")
		})
	}
	t.Run("CONNECT refused", func(t *testing.T) {
		_, err := dialT(t, &Config{URL: &url.URL{Scheme: "ws", Host: "unknown.test"}, Proxy: http.ProxyURL(open.url("socks5", "", ""))})
		var pe *ProxyError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, 4, pe.SOCKSReply)
		assert.False(t, pe.Auth)
		assert.Contains(t, err.Error(), "socks5 proxy refused CONNECT: host unreachable (reply 4)")
	})
}

func TestProxyUnsupportedScheme(t *testing.T) {
	t.Parallel()
	_, err := dialT(t, &Config{URL: &url.URL{Scheme: "ws", Host: "echo.test"}, Proxy: http.ProxyURL(&url.URL{Scheme: "ftp", Host: "127.0.0.1:1"})})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unsupported proxy scheme "ftp"`)
}
