package wsclient

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/internal/peers"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNginxWSS runs the client against nginx as a wss reverse proxy in front of
// a gorilla echo server (gorillaPeer, interop_test.go): TLS verified with a CA
// file, subprotocol, compression and keepalive end to end. It skips when
// nginx is missing, unless CI=true.
func TestNginxWSS(t *testing.T) {
	t.Parallel() // its own peer process on its own port
	up := startGorillaPeer(t, websocket.Upgrader{EnableCompression: true, Subprotocols: []string{"v1"}})
	nginx := peers.StartNginxWSS(t, up.addr())
	caFile := writePEMFile(t, t.TempDir(), "ca.pem", nginx.CAPEM)

	t.Run("echo", func(t *testing.T) {
		rec := newRecorder()
		conns := collectConns(rec)
		o := testOptions()
		o.TLSFiles = &TLSFiles{CAFile: caFile}
		o.Compression = true
		o.Subprotocols = []string{"v1"}
		o.PingInterval, o.PongTimeout = 20*time.Millisecond, 2*time.Second
		c := mustNew(t, nginx.URL, rec, o)
		startClient(t, c)
		rec.next(t, "connect")
		conn := <-conns
		assert.Equal(t, "v1", conn.Subprotocol())
		assert.Contains(t, conn.Response().Header.Get("Sec-Websocket-Extensions"), "permessage-deflate")
		assert.True(t, strings.HasPrefix(conn.RemoteAddr().String(), "127.0.0.1:"))

		require.Eventually(t, func() bool { return conn.RTT() > 0 }, 5*time.Second, time.Millisecond,
			"pings pass through nginx and come back")
		t.Logf("RTT through nginx: %v", conn.RTT())
		echoThrough(t, c, rec, TextFrame("through nginx"))
		echoThrough(t, c, rec, BinaryFrame(bytes.Repeat([]byte("0123456789abcdef"), 1<<16))) // 1 MiB
	})

	t.Run("host name", func(t *testing.T) {
		_, port, _ := net.SplitHostPort(nginx.Addr)
		rec := newRecorder()
		o := testOptions()
		o.TLSConfig = &tls.Config{RootCAs: nginx.CAPool}
		c := mustNew(t, "wss://localhost:"+port+"/", rec, o)
		startClient(t, c)
		rec.next(t, "connect")
		echoThrough(t, c, rec, TextFrame("via localhost"))
	})

	t.Run("system roots refuse the test CA", func(t *testing.T) {
		o := testOptions()
		d, err := runStopped(t, nginx.URL, o)
		var tlsErr *TLSError
		require.ErrorAs(t, err, &tlsErr)
		assert.ErrorAs(t, err, &x509.UnknownAuthorityError{})
		assert.True(t, d.Suggested.IsStop())
	})
}
