package wsclient

import (
	"bytes"
	"compress/flate"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/internal/rawws"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadLimitBoundsInflatedMessages: with compression, ReadLimit bounds the
// message as delivered, while it is inflated. A server sends 200 MiB of zeros
// (about 200 KB on the wire); a client with ReadLimit 1 MiB fails it with 1009
// and never holds more than a few MiB.
func TestReadLimitBoundsInflatedMessages(t *testing.T) {
	srv := newTestServer(t, serverConfig{
		upgrader: websocket.Upgrader{EnableCompression: true},
		serve: func(ws *websocket.Conn, _ int) {
			ws.EnableWriteCompression(true)
			_ = ws.WriteMessage(websocket.BinaryMessage, make([]byte, 200<<20))
			_, _, _ = ws.ReadMessage() // until the client's close
		},
	})
	rec := newRecorder()
	o := testOptions()
	o.Compression = true
	o.ReadLimit = 1 << 20
	c := mustNew(t, srv.wsURL(), rec, o)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	startClient(t, c)
	rec.next(t, "connect")
	d := rec.next(t, "disconnect").disc
	runtime.ReadMemStats(&after)
	var ce *CloseError
	require.ErrorAs(t, d.Err, &ce)
	assert.Equal(t, CloseMessageTooBig, ce.Code)
	assert.True(t, ce.Local)
	assert.True(t, d.Suggested.IsStop())
	// The server's own 200 MiB buffer is allocated in this process too:
	// count only the client's allocations beyond it.
	extra := int64(after.TotalAlloc-before.TotalAlloc) - 200<<20
	assert.Less(t, extra, int64(32<<20), "the client allocated %d MiB for a 1 MiB limit", extra>>20)
}

// TestCompressionServerMayOmitClientNoContextTakeover: RFC 7692 7.1.1.2 lets a
// server leave out client_no_context_takeover; the client accepts the answer
// and messages flow compressed both ways.
func TestCompressionServerMayOmitClientNoContextTakeover(t *testing.T) {
	got := make(chan []byte, 1)
	srv, err := rawws.NewServerWith(rawws.ServerOptions{
		ResponseHeader: http.Header{"Sec-Websocket-Extensions": {"permessage-deflate; server_no_context_takeover"}},
	}, func(c *rawws.Conn) {
		_ = c.WriteFrame(rawws.Frame{Fin: true, Rsv1: true, Opcode: rawws.OpText, Payload: deflate(t, "hello")})
		f, err := c.ReadFrame(5 * time.Second)
		if err == nil {
			got <- f.Payload
		}
		_, _, _, _ = c.ReadUntilClose(5 * time.Second)
	})
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	rec := newRecorder()
	rec.onFrame = func(c *Conn, f Frame) error { return c.Send(f) }
	o := testOptions()
	o.Compression = true
	c := mustNew(t, srv.URL(), rec, o)
	startClient(t, c)
	assert.Equal(t, "hello", string(rec.next(t, "frame").frame.Data))
	select {
	case p := <-got:
		assert.Equal(t, "hello", inflate(t, p), "the echo went out compressed")
	case <-time.After(5 * time.Second):
		t.Fatal("no echo")
	}
}

// TestCompressionContextTakeoverIsRefusedOnce: a server that keeps its
// compression context (no server_no_context_takeover) cannot be decoded by
// this client: the handshake fails with ErrCompression and the policy stops
// after one attempt (never a reconnect loop).
func TestCompressionContextTakeoverIsRefusedOnce(t *testing.T) {
	srv, err := rawws.NewServerWith(rawws.ServerOptions{
		ResponseHeader: http.Header{"Sec-Websocket-Extensions": {"permessage-deflate"}},
	}, func(c *rawws.Conn) { _, _ = c.ReadToEOF(time.Second) })
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	rec := newRecorder()
	o := testOptions()
	o.Compression = true
	c := mustNew(t, srv.URL(), rec, o)
	err = c.Run(ctxTimeout(t, 5*time.Second))
	assert.ErrorIs(t, err, ErrCompression)
	var he *HandshakeError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, 1, srv.Accepted(), "one attempt, no reconnect loop")
	assert.True(t, rec.next(t, "disconnect").disc.Suggested.IsStop())
}

func deflate(t *testing.T, s string) []byte {
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.BestSpeed)
	require.NoError(t, err)
	_, _ = w.Write([]byte(s))
	require.NoError(t, w.Flush())
	return bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
}

func inflate(t *testing.T, p []byte) string {
	r := flate.NewReader(bytes.NewReader(append(p, 0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff)))
	var b bytes.Buffer
	_, _ = b.ReadFrom(r)
	return b.String()
}

// syncBuffer is a log sink the client's goroutines may write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestSecretsNeverReachLogsOrErrors: query values, proxy credentials and
// header values never appear in a log line (at any level) or an error string.
func TestSecretsNeverReachLogsOrErrors(t *testing.T) {
	refusing := newTestServer(t, serverConfig{before: func(w http.ResponseWriter, r *http.Request, n int) bool {
		http.Error(w, "no", http.StatusServiceUnavailable)
		return false
	}})
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadAddr := closed.Addr().String()
	closed.Close()
	px := newConnectProxy(t, nil)
	px.user, px.pass = "proxyuser", "PROXYSECRET"
	for _, tc := range []struct {
		name  string
		url   string
		proxy bool
	}{
		{"refused handshake", refusing.wsURL() + "/feed?token=QUERYSECRET&x=1", false},
		{"dial error", "ws://" + deadAddr + "/feed?token=QUERYSECRET", false},
		{"through a proxy that refuses", refusing.wsURL() + "/feed?token=QUERYSECRET", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs syncBuffer
			rec := newRecorder()
			var errs []string
			rec.decide = func(d Disconnect) Decision {
				errs = append(errs, d.Err.Error())
				if len(errs) == 2 {
					return Stop()
				}
				return Decision{}
			}
			o := testOptions()
			o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			o.Header = http.Header{"Authorization": {"Bearer HEADERSECRET"}}
			if tc.proxy {
				o.Proxy = http.ProxyURL(px.url("proxyuser", "PROXYSECRET"))
			}
			c := mustNew(t, tc.url, rec, o)
			runErr := c.Run(ctxTimeout(t, 5*time.Second))
			require.Error(t, runErr)
			all := logs.String() + "\n" + strings.Join(errs, "\n") + "\n" + runErr.Error()
			assert.Contains(t, logs.String(), "disconnected", "the disconnect was logged")
			for _, secret := range []string{"QUERYSECRET", "HEADERSECRET", "PROXYSECRET", "proxyuser"} {
				assert.NotContains(t, all, secret)
			}
		})
	}
}
