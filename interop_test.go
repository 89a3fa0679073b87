//go:build linux

package wsclient

// Interop: the Client against real third-party servers started by
// internal/peers (installed by .ci/install-peers; the tests skip when a peer
// is missing, and fail when CI=true): the npm "ws" package on node, Debian's
// python3-websockets, and nginx as a wss reverse proxy in front of a gorilla
// echo server. Each runs the same round trips: text, UTF-8 text, empty
// messages, binary, 1 MiB text and binary, a ping answered by a pong, the
// keepalive's RTT, the subprotocol, optionally permessage-deflate, and the
// close handshake.

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/internal/peers"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// interopOptions: keepalive on, generous timeouts (the peers are real
// processes), no proxy.
func interopOptions() *Options {
	o := testOptions()
	o.HandshakeTimeout = 5 * time.Second
	o.CloseTimeout = 3 * time.Second
	o.PingInterval, o.PongTimeout = 100*time.Millisecond, 3*time.Second
	o.Subprotocols = []string{"x-not-supported", "chat"}
	return o
}

// interopMessages are the round trips, in order.
func interopMessages() []Frame {
	rng := rand.New(rand.NewPCG(1, 2))
	bin := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	// 1 MiB of valid UTF-8 with 1-, 2-, 3- and 4-byte sequences.
	var text strings.Builder
	for text.Len() < 1<<20 {
		text.WriteString("a é € 🚀 ")
	}
	return []Frame{
		TextFrame("hello"),
		TextFrame("héllo wörld ✓ 🚀"),
		TextFrame(""),
		BinaryFrame([]byte{}),
		BinaryFrame(bin(1024)),
		BinaryFrame(bin(1 << 20)),
		TextFrame(text.String()),
		BinaryFrame([]byte{0, 0xff, 0x80, 0x7f}),
	}
}

// interopNext returns the next data frame or the Pong with data, skipping
// keepalive pongs.
func interopNext(t *testing.T, r *recorder, pong string) Frame {
	t.Helper()
	for {
		ev := r.next(t, "frame", "disconnect")
		if ev.kind == "disconnect" {
			t.Fatalf("disconnected: %v", ev.err)
		}
		switch ev.frame.Type {
		case Text, Binary:
			return ev.frame
		case Pong:
			if pong != "" && string(ev.frame.Data) == pong {
				return ev.frame
			}
		}
	}
}

// interopRoundTrips runs the round trips against url and closes.
func interopRoundTrips(t *testing.T, url string, o *Options) {
	t.Helper()
	rec := newRecorder()
	conns := make(chan *Conn, 1)
	rec.onConnect = func(c *Conn) error { conns <- c; return nil }
	c := mustNew(t, url, rec, o)
	wait := startClient(t, c)
	var conn *Conn
	select {
	case conn = <-conns:
	case <-time.After(10 * time.Second):
		t.Fatal("no connection within 10s")
	}
	assert.Equal(t, "chat", conn.Subprotocol(), "the server picked the supported subprotocol")
	ext := conn.Response().Header.Get("Sec-WebSocket-Extensions")
	if o.Compression {
		assert.Contains(t, ext, "permessage-deflate", "compression negotiated")
	} else {
		assert.Empty(t, ext)
	}

	// Pipelined: all messages out, then all echoes in order.
	msgs := interopMessages()
	ctx := ctxTimeout(t, 10*time.Second)
	for _, f := range msgs {
		require.NoError(t, c.Send(ctx, f))
	}
	for i, want := range msgs {
		got := interopNext(t, rec, "")
		assert.Equal(t, want.Type, got.Type, "message %d type", i)
		assert.True(t, bytes.Equal(want.Data, got.Data), "message %d (%d bytes) echoed intact, got %d bytes", i, len(want.Data), len(got.Data))
	}

	// A ping of ours is answered with a pong carrying its data.
	require.NoError(t, c.Send(ctx, Frame{Type: Ping, Data: []byte("interop-ping")}))
	assert.Equal(t, "interop-ping", string(interopNext(t, rec, "interop-ping").Data))
	// And the keepalive measures the round trip.
	assert.Eventually(t, func() bool { return conn.RTT() > 0 }, 5*time.Second, time.Millisecond, "keepalive RTT")

	// Close handshake: the server answers our close.
	start := time.Now()
	require.NoError(t, c.Close(ctxTimeout(t, 10*time.Second), CloseNormal, "bye"))
	require.NoError(t, wait())
	assert.Less(t, time.Since(start), o.CloseTimeout, "the server answered the close frame")
	d := rec.next(t, "disconnect").disc
	var ce *CloseError
	if assert.ErrorAs(t, d.Err, &ce) {
		assert.True(t, ce.Local)
		assert.Equal(t, CloseNormal, ce.Code)
	}
	assert.True(t, d.Final)
	assert.Zero(t, rec.overlaps.Load())
	t.Logf("RTT %v; close handshake in %v", conn.RTT(), time.Since(start))
}

func TestInteropNodeWS(t *testing.T) {
	t.Parallel() // its own peer process on its own port
	p := peers.StartNodeWS(t, peers.NodeOptions{})
	interopRoundTrips(t, p.URL, interopOptions())
}

func TestInteropNodeWSDeflate(t *testing.T) {
	t.Parallel() // its own peer process on its own port
	p := peers.StartNodeWS(t, peers.NodeOptions{Deflate: true})
	o := interopOptions()
	o.Compression = true
	interopRoundTrips(t, p.URL, o)
}

func TestInteropPythonWebsockets(t *testing.T) {
	t.Parallel() // its own peer process on its own port
	p := peers.StartPythonWebsockets(t, peers.PythonOptions{})
	interopRoundTrips(t, p.URL, interopOptions())
}

func TestInteropPythonWebsocketsDeflate(t *testing.T) {
	t.Parallel() // its own peer process on its own port
	p := peers.StartPythonWebsockets(t, peers.PythonOptions{Deflate: true})
	o := interopOptions()
	o.Compression = true
	interopRoundTrips(t, p.URL, o)
}

// gorillaPeer is a gorilla/websocket echo server on loopback, the upstream
// behind nginx: a third-party peer on purpose (wstest shares this module's
// codec). It counts its live connections and closes every socket at cleanup.
type gorillaPeer struct {
	srv  *httptest.Server
	wg   sync.WaitGroup
	mu   sync.Mutex
	live map[*websocket.Conn]bool
}

func startGorillaPeer(t *testing.T, upgrader websocket.Upgrader) *gorillaPeer {
	t.Helper()
	p := &gorillaPeer{live: map[*websocket.Conn]bool{}}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.wg.Add(1)
		defer p.wg.Done()
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		p.mu.Lock()
		p.live[ws] = true
		p.mu.Unlock()
		defer func() {
			p.mu.Lock()
			delete(p.live, ws)
			p.mu.Unlock()
			ws.Close()
		}()
		for { // echo
			mt, data, err := ws.ReadMessage()
			if err != nil || ws.WriteMessage(mt, data) != nil {
				return
			}
		}
	}))
	p.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	p.srv.Start()
	t.Cleanup(func() {
		p.dropLive()
		p.srv.CloseClientConnections()
		p.srv.Close()
		p.wg.Wait()
	})
	return p
}

// addr is the peer's 127.0.0.1:port.
func (p *gorillaPeer) addr() string { return p.srv.Listener.Addr().String() }

// liveConns is the number of upgraded connections whose handler still runs.
func (p *gorillaPeer) liveConns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.live)
}

// dropLive closes the socket of every live connection, without a close frame.
func (p *gorillaPeer) dropLive() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ws := range p.live {
		ws.NetConn().Close()
	}
}

// interopGorillaUpstream is the gorilla echo server behind nginx.
func interopGorillaUpstream(t *testing.T, compression bool) *gorillaPeer {
	t.Helper()
	return startGorillaPeer(t, websocket.Upgrader{
		Subprotocols:      []string{"chat", "superchat"},
		EnableCompression: compression,
	})
}

func TestInteropNginxWSS(t *testing.T) {
	t.Parallel() // its own peer process on its own port
	srv := interopGorillaUpstream(t, false)
	p := peers.StartNginxWSS(t, srv.addr())
	o := interopOptions()
	o.TLSConfig = p.TLSConfig()
	interopRoundTrips(t, p.URL, o)
}

func TestInteropNginxWSSDeflate(t *testing.T) {
	t.Parallel() // its own peer process on its own port
	srv := interopGorillaUpstream(t, true)
	p := peers.StartNginxWSS(t, srv.addr())
	o := interopOptions()
	o.TLSConfig = p.TLSConfig()
	o.Compression = true
	interopRoundTrips(t, p.URL, o)
}

// TestInteropNginxUpstreamDrops: the upstream drops the connection three
// times behind nginx; each time nginx ends the client's connection, the
// client reconnects through nginx (a new TLS session) and echoes again.
func TestInteropNginxUpstreamDrops(t *testing.T) {
	t.Parallel() // its own peer process on its own port
	srv := interopGorillaUpstream(t, false)
	p := peers.StartNginxWSS(t, srv.addr())
	rec := newRecorder()
	o := interopOptions()
	o.TLSConfig = p.TLSConfig()
	c := mustNew(t, p.URL, rec, o)
	wait := startClient(t, c)
	ctx := ctxTimeout(t, 20*time.Second)
	for i := 1; i <= 4; i++ {
		ev := rec.next(t, "connect", "disconnect")
		require.Equal(t, "connect", ev.kind, "%v", ev.err)
		require.Equal(t, uint64(i), ev.gen)
		require.NoError(t, c.Send(ctx, TextFrame("round")))
		assert.Equal(t, "round", string(interopNext(t, rec, "").Data))
		if i == 4 {
			break
		}
		require.Eventually(t, func() bool { return srv.liveConns() == 1 }, 5*time.Second, time.Millisecond)
		srv.dropLive() // the upstream drops, without a close frame
		d := rec.next(t, "disconnect").disc
		assert.True(t, d.Connected)
		assert.False(t, d.Suggested.IsStop(), "retried: %v", d.Err)
		if i == 1 {
			t.Logf("upstream dropped behind nginx: %v", d.Err)
		}
	}
	require.NoError(t, c.Close(ctxTimeout(t, 10*time.Second), CloseNormal, ""))
	require.NoError(t, wait())
}

// TestInteropNginxWSSUnknownCA: nginx's certificate is signed by a CA the
// client does not trust: a *TLSError, and the policy stops.
func TestInteropNginxWSSUnknownCA(t *testing.T) {
	t.Parallel() // its own peer process on its own port
	srv := interopGorillaUpstream(t, false)
	p := peers.StartNginxWSS(t, srv.addr())
	rec := newRecorder()
	o := interopOptions()
	o.TLSConfig = &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12}
	c := mustNew(t, p.URL, rec, o)
	wait := startClient(t, c)
	d := rec.next(t, "disconnect").disc
	var te *TLSError
	assert.ErrorAs(t, d.Err, &te)
	assert.True(t, d.Suggested.IsStop(), "%v", d.Err)
	assert.Equal(t, d.Err, wait())
	t.Logf("Disconnect.Err: %v", d.Err)
}

// TestInteropPeerVersions logs the versions of the peers, for RELIABILITY.md.
func TestInteropPeerVersions(t *testing.T) {
	t.Parallel() // its own peer process on its own port
	run := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			return "unavailable (" + err.Error() + ")"
		}
		return strings.TrimSpace(string(out))
	}
	wsVersion := "unavailable"
	if dir, err := peers.NodeModulesDir(); err == nil {
		if data, err := os.ReadFile(filepath.Join(dir, "ws", "package.json")); err == nil {
			var pkg struct{ Version string }
			if json.Unmarshal(data, &pkg) == nil {
				wsVersion = pkg.Version
			}
		}
	}
	nginx := "unavailable"
	if path, err := peers.NginxPath(); err == nil {
		nginx = run(path, "-v")
	}
	t.Logf("node %s, npm ws %s", run("node", "--version"), wsVersion)
	t.Logf("%s, python3-websockets %s", run(peers.PythonPath, "--version"),
		run(peers.PythonPath, "-I", "-c", "import websockets; print(websockets.__version__)"))
	t.Logf("%s", nginx)
}
