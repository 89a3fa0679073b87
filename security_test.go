package wsclient

import (
	"bytes"
	"compress/flate"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/wstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadLimitBoundsInflatedMessages: with compression, ReadLimit bounds the
// message as delivered, while it is inflated. A server sends 200 MiB of zeros
// (about 200 KB on the wire, in frames of 4 KiB); a client with ReadLimit
// 1 MiB fails it with 1009 and never holds more than a few MiB.
func TestReadLimitBoundsInflatedMessages(t *testing.T) {
	srv := wstest.Start(t, &wstest.Options{Compression: true})
	require.Len(t, inflate(t, zerosDeflated(t, 2)), 2<<20, "the pieces of zerosDeflated concatenate")
	payload := zerosDeflated(t, 200)
	var frames []byte // one message: the first frame binary with RSV1, then continuations
	for i := 0; i < len(payload); i += 4096 {
		f := wstest.Frame{Op: wstest.OpContinuation, Fin: i+4096 >= len(payload), Payload: payload[i:min(i+4096, len(payload))]}
		if i == 0 {
			f.Op, f.Rsv = wstest.OpBinary, 4
		}
		frames = f.AppendTo(frames)
	}
	t.Logf("200 MiB of zeros in %d KiB of frames", len(frames)>>10)
	rec := newRecorder()
	o := testOptions()
	o.Compression = true
	o.ReadLimit = 1 << 20
	c := mustNew(t, srv.URL(), rec, o)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	startClient(t, c)
	conn, err := srv.NextConn(t.Context())
	require.NoError(t, err)
	_ = conn.WriteRaw(frames) // it fails if the client has closed (1009) and gone first
	rec.next(t, "connect")
	d := rec.next(t, "disconnect").disc
	runtime.ReadMemStats(&after)
	var ce *CloseError
	require.ErrorAs(t, d.Err, &ce)
	assert.Equal(t, CloseMessageTooBig, ce.Code)
	assert.True(t, ce.Local)
	assert.True(t, d.Suggested.IsStop())
	code, _, _ := conn.WaitClosed(t.Context())
	assert.Equal(t, int(CloseMessageTooBig), code, "the client's close frame")
	// The server's allocations between the two counts are small (it sends
	// frames made beforehand): count them with the client's.
	extra := int64(after.TotalAlloc - before.TotalAlloc)
	assert.Less(t, extra, int64(32<<20), "the client allocated %d MiB for a 1 MiB limit", extra>>20)
}

// zerosDeflated is mib MiB of zeros compressed for permessage-deflate: one
// MiB deflated and flushed, mib times (each piece refers to nothing before
// it, so the pieces concatenate), without the final 0 0 ff ff. Compressing
// the 200 MiB themselves takes 10 s under the race detector.
func zerosDeflated(t *testing.T, mib int) []byte {
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.BestSpeed)
	require.NoError(t, err)
	_, _ = w.Write(make([]byte, 1<<20))
	require.NoError(t, w.Flush())
	return bytes.TrimSuffix(bytes.Repeat(b.Bytes(), mib), []byte{0, 0, 0xff, 0xff})
}

// TestCompressionServerMayOmitClientNoContextTakeover: RFC 7692 7.1.1.2 lets a
// server leave out client_no_context_takeover; the client accepts the answer
// and messages flow compressed both ways. The client's frame is read off its
// own socket (what it wrote), the server's is deflated by hand.
func TestCompressionServerMayOmitClientNoContextTakeover(t *testing.T) {
	srv := headerServer(t, http.Header{"Sec-Websocket-Extensions": {"permessage-deflate; server_no_context_takeover"}})
	rec := newRecorder()
	rec.onFrame = func(c *Conn, f Frame) error { return c.Send(f) }
	o := testOptions()
	o.Compression = true
	var sent syncBuffer // what the client wrote to its socket
	o.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &recordingConn{Conn: nc, w: &sent}, nil
	}
	c := mustNew(t, srv.URL(), rec, o)
	startClient(t, c)
	conn, err := srv.NextConn(t.Context())
	require.NoError(t, err)
	require.NoError(t, conn.SendFrame(wstest.Frame{Op: wstest.OpText, Fin: true, Rsv: 4, Payload: deflate(t, "hello")}))
	assert.Equal(t, "hello", string(rec.next(t, "frame").frame.Data))
	echoed, err := conn.ReadText(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "hello", echoed)
	// The echo is the first frame after the request: FIN, RSV1, text, masked.
	_, frame, ok := strings.Cut(sent.String(), "\r\n\r\n")
	require.True(t, ok, "the client wrote no request")
	require.GreaterOrEqual(t, len(frame), 6, "the client wrote no frame")
	assert.Equal(t, byte(0xC1), frame[0], "FIN, RSV1 and text: the echo went out compressed")
	require.Equal(t, byte(0x80), frame[1]&0x80, "masked")
	n := int(frame[1] & 0x7f)
	require.Less(t, n, 126)
	require.GreaterOrEqual(t, len(frame), 6+n)
	key, payload := frame[2:6], []byte(frame[6:6+n])
	for i := range payload {
		payload[i] ^= key[i%4]
	}
	assert.Equal(t, "hello", inflate(t, payload), "the echo went out compressed")
}

// recordingConn copies what is written to the connection to w, before it
// goes out (so it is in w by the time the peer has read it).
type recordingConn struct {
	net.Conn
	w io.Writer
}

func (c *recordingConn) Write(p []byte) (int, error) {
	_, _ = c.w.Write(p)
	return c.Conn.Write(p)
}

// TestCompressionContextTakeoverIsRefusedOnce: a server that keeps its
// compression context (no server_no_context_takeover) cannot be decoded by
// this client: the handshake fails with ErrCompression and the policy stops
// after one attempt (never a reconnect loop).
func TestCompressionContextTakeoverIsRefusedOnce(t *testing.T) {
	srv := headerServer(t, http.Header{"Sec-Websocket-Extensions": {"permessage-deflate"}})
	rec := newRecorder()
	o := testOptions()
	o.Compression = true
	c := mustNew(t, srv.URL(), rec, o)
	err := c.Run(ctxTimeout(t, 5*time.Second))
	assert.ErrorIs(t, err, ErrCompression)
	var he *HandshakeError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, 1, srv.Stats().Requests, "one attempt, no reconnect loop")
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
	refusing := wstest.Start(t, &wstest.Options{Check: func(*http.Request) *wstest.Response {
		return &wstest.Response{Status: http.StatusServiceUnavailable, Body: "no"}
	}})
	refusingURL := strings.TrimSuffix(refusing.URL(), "/")
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
		{"refused handshake", refusingURL + "/feed?token=QUERYSECRET&x=1", false},
		{"dial error", "ws://" + deadAddr + "/feed?token=QUERYSECRET", false},
		{"a query that is a bare token", "ws://" + deadAddr + "/feed?BARESECRET", false},
		{"through a proxy that refuses", refusingURL + "/feed?token=QUERYSECRET", true},
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
			for _, secret := range []string{"QUERYSECRET", "BARESECRET", "HEADERSECRET", "PROXYSECRET", "proxyuser"} {
				assert.NotContains(t, all, secret)
			}
		})
	}
}
