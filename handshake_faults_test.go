package wsclient

// Handshake faults: servers that never answer, answer garbage, answer 101
// without a valid Sec-WebSocket-Accept, hang up in the middle of the
// handshake or of a frame. Each case checks: no panic, no hang (every wait is
// bounded), a clear error in Disconnect.Err, and the policy's decision
// (reconnect with backoff, or stop). The servers are wstest's: the broken
// answers are its raw ones (Response.Raw), the cuts in the middle of a frame
// go through its fault proxy (Network.CutAfter) or are its Conn.Drop.
//
// The faults run on every path (connPaths in conformance_test.go: ws and wss,
// direct and through an HTTP CONNECT or SOCKS5 proxy), as
// <test>/<path>/<fault>. The paths run in parallel, and so do their faults,
// up to caseSlots at a time (eachConcurrently); the timeouts leave room for
// that load. The leak check covers the whole test.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/wstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hsOptions: a short handshake timeout and backoff.
func hsOptions() *Options {
	o := testOptions()
	o.HandshakeTimeout = 200 * time.Millisecond
	o.Backoff = Backoff{Initial: 2 * time.Millisecond, Max: 10 * time.Millisecond, Multiplier: 2}
	return o
}

// hsTimeout is the HandshakeTimeout of hsOptionsFor: hsOptions' 200 ms over
// plain ws, 600 ms on the other paths. A valid wss attempt (two TLS
// handshakes in the process, under the race detector) or one through a
// proxy took up to 130 ms now and then on a 2-vCPU VM (p99 80 ms), which made
// a 200 ms budget fail the attempt that should connect about once in 50 runs.
func (p connPath) hsTimeout() time.Duration {
	if p.tls || p.proxy != nil {
		return 600 * time.Millisecond
	}
	return 200 * time.Millisecond
}

// hsOptionsFor are hsOptions with the path's HandshakeTimeout.
func hsOptionsFor(p connPath) *Options {
	o := hsOptions()
	o.HandshakeTimeout = p.hsTimeout()
	return o
}

// hsFault is one way to botch the handshake.
type hsFault struct {
	name string
	// answer is the server's answer to a faulty attempt: raw bytes (hsStall,
	// hsHangUp), or a 101 with a header the client did not ask for.
	answer wstest.Response
	// want are substrings of Disconnect.Err's message; "{scheme}" stands for
	// the path's scheme (ws or wss), "{timeout}" for its HandshakeTimeout.
	want []string
	// check, when set, checks Disconnect.Err further.
	check func(t *testing.T, err error)
}

// hsHangUp answers with the bytes of s, then closes the TCP connection (after
// a close_notify with TLS).
func hsHangUp(s string) wstest.Response {
	return wstest.Response{Raw: func(_ *http.Request, w io.Writer) { _, _ = io.WriteString(w, s) }}
}

// hsStall answers with the bytes of s and keeps the connection open, reading,
// until the client closes it.
func hsStall(s string) wstest.Response {
	r := hsHangUp(s)
	r.Stall = true
	return r
}

// checkErr checks Disconnect.Err against want and check.
func (f hsFault) checkErr(t *testing.T, p connPath, err error) {
	t.Helper()
	for _, want := range f.want {
		want = strings.ReplaceAll(want, "{scheme}", p.scheme())
		want = strings.ReplaceAll(want, "{timeout}", p.hsTimeout().String())
		assert.Contains(t, err.Error(), want)
	}
	if f.check != nil {
		f.check(t, err)
	}
}

// hsStart starts a wstest server that speaks the path's scheme (TLS for wss,
// with certificates of its own), closed at the end of the test.
func hsStart(t *testing.T, p connPath, opts wstest.Options) *wstest.Server {
	t.Helper()
	opts.TLS = p.tls
	return wstest.Start(t, &opts)
}

// newHSServer answers the first faults handshakes with answer and upgrades
// the others.
func newHSServer(t *testing.T, p connPath, faults int, answer wstest.Response) *wstest.Server {
	t.Helper()
	srv := hsStart(t, p, wstest.Options{})
	for range faults {
		srv.Enqueue(answer)
	}
	return srv
}

// hsRetryFaults are retried by the policy: three failures, then a valid server.
var hsRetryFaults = []hsFault{
	{
		name:   "silent: accepts TCP, never answers",
		answer: wstest.Response{Stall: true},
		want:   []string{"handshake with {scheme}://127.0.0.1", "timed out after {timeout}"},
	},
	{
		name:   "stalls in the middle of a header value",
		answer: hsStall("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upg"),
		want:   []string{"timed out after {timeout}"},
	},
	{
		// The partial line "Conn" is handed to the header parser when the
		// deadline strikes (bufio.Reader.ReadLine returns buffered bytes
		// before the error), so the cause shows as a malformed header.
		name:   "stalls in the middle of a header name",
		answer: hsStall("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConn"),
		want:   []string{"timed out after {timeout}"},
	},
	{
		name:   "another protocol's greeting instead of HTTP",
		answer: hsStall("SSH-2.0-OpenSSH_9.2p1\r\n"),
		want:   []string{"malformed HTTP", "SSH-2.0"},
	},
	{
		name: "binary garbage, then hangs up",
		answer: func() wstest.Response {
			b := make([]byte, 512)
			for i := range b {
				b[i] = byte(i*131 + 7)
			}
			return hsHangUp(string(b))
		}(),
		want: []string{"wsclient: dial {scheme}://127.0.0.1"},
	},
	{
		name:   "101 with a malformed header line",
		answer: hsStall("HTTP/1.1 101 Switching Protocols\r\nUpgrade websocket\r\n\r\n"),
		want:   []string{"malformed MIME header"},
	},
	{
		name:   "101 without Sec-WebSocket-Accept",
		answer: hsStall("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
		want:   []string{"HTTP 101", "Sec-WebSocket-Accept"},
		check:  hsIsHandshakeError(101),
	},
	{
		name: "101 with a wrong Sec-WebSocket-Accept",
		answer: hsStall("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			wstest.AcceptKey("dGhlIHNhbXBsZSBub25jZQ==") + "\r\n\r\n"),
		want:  []string{"HTTP 101", "Sec-WebSocket-Accept"},
		check: hsIsHandshakeError(101),
	},
	{
		name: "101 without Upgrade: websocket",
		answer: wstest.Response{Stall: true, Raw: func(req *http.Request, w io.Writer) {
			fmt.Fprintf(w, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
				wstest.AcceptKey(req.Header.Get("Sec-WebSocket-Key")))
		}},
		want:  []string{"HTTP 101", "Upgrade"},
		check: hsIsHandshakeError(101),
	},
	{
		name:   "hangs up in the middle of the headers",
		answer: hsHangUp("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgr"),
		want:   []string{"unexpected EOF"},
	},
	{
		// As above: the partial line reaches the header parser before the EOF.
		name:   "hangs up in the middle of a header name",
		answer: hsHangUp("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnec"),
		// Over wss the EOF comes from TLS (close_notify), above the socket.
		want: []string{"the server closed the connection during the handshake (EOF)"},
	},
	{
		name:   "hangs up without a byte",
		answer: hsHangUp(""),
		want:   []string{"EOF"},
	},
}

// forEachPath runs fn for every path, the paths in parallel, as
// <test>/<path>, with the leak check over all of them.
func forEachPath(t *testing.T, fn func(t *testing.T, p connPath)) {
	chaosLeakCheck(t)
	for _, p := range connPaths {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			fn(t, p)
		})
	}
}

// forEachPathAndFault runs fn for every fault on every path, as
// <test>/<path>/<fault>, the cases concurrently (eachConcurrently: they
// mostly wait on their servers and timers), with the leak check over all.
func forEachPathAndFault(t *testing.T, faults []hsFault, fn func(t *testing.T, p connPath, f hsFault)) {
	chaosLeakCheck(t)
	eachConcurrently(t, len(connPaths), func(i int) string { return connPaths[i].name }, false, func(t *testing.T, i int) {
		eachConcurrently(t, len(faults), func(j int) string { return faults[j].name }, true, func(t *testing.T, j int) {
			fn(t, connPaths[i], faults[j])
		})
	})
}

// hsClient is a client of srv over path p, with its proxy (connPath.client)
// and, for wss, srv's CA; the returned check asserts, once it has connected,
// that it went through the proxy.
func hsClient(t *testing.T, p connPath, srv *wstest.Server, h Handler, o *Options) (*Client, func(testing.TB)) {
	t.Helper()
	viaProxy := p.client(t, o, srv.Addr())
	if p.tls {
		o.TLSConfig = srv.ClientTLSConfig()
		// X25519 alone, as in connPath.serverTLS: the default hybrid key
		// exchange costs a third more per handshake under the race detector.
		o.TLSConfig.CurvePreferences = []tls.CurveID{tls.X25519}
	}
	return mustNew(t, srv.URL(), h, o), viaProxy
}

func hsIsHandshakeError(status int) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		var he *HandshakeError
		if assert.ErrorAs(t, err, &he) {
			assert.Equal(t, status, he.StatusCode)
		}
	}
}

// hsServeOK takes the server's next connection, sends it a text message "ok"
// and returns it.
func hsServeOK(t *testing.T, srv *wstest.Server) *wstest.Conn {
	t.Helper()
	conn, err := srv.NextConn(t.Context())
	require.NoError(t, err)
	require.NoError(t, conn.SendText("ok"))
	return conn
}

// hsClosedNormally asserts that conn ended with the client's close 1000.
func hsClosedNormally(t *testing.T, conn *wstest.Conn) {
	t.Helper()
	code, _, err := conn.WaitClosed(t.Context())
	assert.NoError(t, err)
	assert.Equal(t, int(CloseNormal), code, "the client's close frame")
}

// TestHandshakeFaultsRetried: each fault three times in a row, then the
// server works. Each failure reaches OnDisconnect with a clear error, counts
// as a consecutive attempt, is retried with the backoff's delay, and the
// fourth attempt connects.
func TestHandshakeFaultsRetried(t *testing.T) {
	const faults = 3
	forEachPathAndFault(t, hsRetryFaults, func(t *testing.T, p connPath, f hsFault) {
		srv := newHSServer(t, p, faults, f.answer)
		rec := newRecorder()
		c, viaProxy := hsClient(t, p, srv, rec, hsOptionsFor(p))
		wait := startClient(t, c)
		for i := 1; i <= faults; i++ {
			ev := rec.next(t, "disconnect", "connect")
			require.Equal(t, "disconnect", ev.kind, "attempt %d must fail", i)
			d := ev.disc
			require.Error(t, d.Err)
			assert.False(t, d.Connected)
			assert.Equal(t, i, d.Attempt)
			assert.False(t, d.Suggested.IsStop(), "the policy retries: %v", d.Err)
			assert.Positive(t, d.Suggested.Delay(), "after the backoff's delay")
			f.checkErr(t, p, d.Err)
			if i == 1 {
				t.Logf("Disconnect.Err: %v", d.Err)
			}
		}
		ev := rec.next(t, "connect", "disconnect")
		require.Equal(t, "connect", ev.kind, "the attempt after the faults connects: %v", ev.err)
		assert.Equal(t, uint64(faults+1), ev.gen)
		conn := hsServeOK(t, srv)
		assert.Equal(t, "ok", string(rec.nextData(t).frame.Data))
		require.NoError(t, c.Close(ctxTimeout(t, 5*time.Second), CloseNormal, ""))
		require.NoError(t, wait())
		hsClosedNormally(t, conn)
		st := srv.Stats()
		assert.Equal(t, faults+1, st.Requests)
		assert.Equal(t, 1, st.Upgraded, "only the attempt after the faults")
		assert.Zero(t, rec.overlaps.Load())
		viaProxy(t)
	})
}

// hsStopFaults: answers the policy stops on, since retrying cannot help.
var hsStopFaults = []hsFault{
	{
		name:   "101 with a subprotocol that was not offered",
		answer: wstest.Response{Header: http.Header{"Sec-Websocket-Protocol": {"not-offered"}}},
		want:   []string{"HTTP 101", "subprotocol", "not-offered"},
		check:  hsIsHandshakeError(101),
	},
	{
		name:   "200 OK: not a WebSocket endpoint",
		answer: wstest.Response{Status: 200, Header: http.Header{"Content-Type": {"text/html"}}, Body: "<html></html>"},
		want:   []string{"HTTP 200"},
		check: func(t *testing.T, err error) {
			var he *HandshakeError
			if assert.ErrorAs(t, err, &he) {
				assert.Equal(t, 200, he.StatusCode)
				assert.Equal(t, "<html></html>", string(he.Body), "the body is kept for diagnosis")
			}
		},
	},
}

// TestHandshakeFaultsStop: faults the policy stops on end Run with the error.
func TestHandshakeFaultsStop(t *testing.T) {
	forEachPathAndFault(t, hsStopFaults, func(t *testing.T, p connPath, f hsFault) {
		srv := newHSServer(t, p, 100, f.answer)
		rec := newRecorder()
		o := hsOptionsFor(p)
		o.Subprotocols = []string{"chat"}
		c, viaProxy := hsClient(t, p, srv, rec, o)
		wait := startClient(t, c)
		d := rec.next(t, "disconnect").disc
		assert.False(t, d.Connected)
		assert.Equal(t, 1, d.Attempt)
		assert.True(t, d.Suggested.IsStop(), "the policy stops: %v", d.Err)
		f.checkErr(t, p, d.Err)
		err := wait()
		assert.Equal(t, d.Err, err, "Run returns the cause of the Stop")
		assert.Equal(t, 1, srv.Stats().Requests, "no retry")
		viaProxy(t)
		t.Logf("Run: %v", err)
	})
}

// TestHandshakeFaultUnofferedExtension: a 101 that turns on an extension the
// client did not offer must fail the connection (RFC 6455 4.1). Retrying the
// same server cannot help, so the policy stops.
func TestHandshakeFaultUnofferedExtension(t *testing.T) {
	forEachPath(t, func(t *testing.T, p connPath) {
		srv := newHSServer(t, p, 100, wstest.Response{Header: http.Header{"Sec-Websocket-Extensions": {"x-webkit-deflate-frame"}}})
		rec := newRecorder()
		rec.decide = func(Disconnect) Decision { return Stop() }
		c, viaProxy := hsClient(t, p, srv, rec, hsOptionsFor(p))
		wait := startClient(t, c)
		ev := rec.next(t, "disconnect", "connect")
		require.Equal(t, "disconnect", ev.kind, "a connection with an unoffered extension must not open")
		assert.Contains(t, ev.disc.Err.Error(), "x-webkit-deflate-frame")
		hsIsHandshakeError(101)(t, ev.disc.Err)
		assert.True(t, ev.disc.Suggested.IsStop(), "policy suggests %v", ev.disc.Suggested)
		assert.Error(t, wait())
		viaProxy(t)
	})
}

// TestHandshakeFaultClosedMidFrame: a valid handshake, then the server sends
// half of a frame and closes TCP. The connection was open, so OnConnect and
// OnDisconnect pair up; the half frame is never delivered; the cause is an
// abnormal close (1006); the policy reconnects.
func TestHandshakeFaultClosedMidFrame(t *testing.T) {
	forEachPath(t, testHandshakeFaultClosedMidFrame)
}

func testHandshakeFaultClosedMidFrame(t *testing.T, p connPath) {
	const faults = 3
	frame := wstest.Frame{Op: wstest.OpText, Fin: true, Payload: []byte(strings.Repeat("x", 200))}.Bytes()
	srv := hsStart(t, p, wstest.Options{})
	rec := newRecorder()
	c, viaProxy := hsClient(t, p, srv, rec, hsOptionsFor(p))
	wait := startClient(t, c)
	for i := 1; i <= faults; i++ {
		conn, err := srv.NextConn(t.Context())
		require.NoError(t, err)
		require.NoError(t, conn.WriteRaw(frame[:len(frame)/2]))
		conn.Drop() // closes TCP mid-frame
		ev := rec.next(t, "connect", "frame", "disconnect")
		require.Equal(t, "connect", ev.kind)
		require.Equal(t, uint64(i), ev.gen)
		ev = rec.next(t, "connect", "frame", "disconnect")
		require.Equal(t, "disconnect", ev.kind, "the half frame must not be delivered")
		d := ev.disc
		assert.True(t, d.Connected)
		assert.Equal(t, i, d.Attempt)
		assert.Equal(t, CloseAbnormal, CloseStatus(d.Err), "%v", d.Err)
		assert.ErrorIs(t, d.Err, io.ErrUnexpectedEOF)
		assert.False(t, d.Suggested.IsStop())
		if i == 1 {
			t.Logf("Disconnect.Err: %v", d.Err)
		}
	}
	conn := hsServeOK(t, srv)
	assert.Equal(t, "ok", string(rec.nextData(t).frame.Data))
	require.NoError(t, c.Close(ctxTimeout(t, 5*time.Second), CloseNormal, ""))
	require.NoError(t, wait())
	hsClosedNormally(t, conn)
	viaProxy(t)
}

// TestHandshakeFaultCutAfter cuts every connection through the fault proxy
// after n bytes from the server: first inside the handshake response, then
// inside a 256 KiB message. No truncated message is ever delivered, every
// cut is retried, and once the cuts stop the message arrives intact.
func TestHandshakeFaultCutAfter(t *testing.T) {
	chaosLeakCheck(t)
	big := make([]byte, 256<<10)
	for i := range big {
		big[i] = byte(i*7 + i>>8)
	}
	// The server sends big on every connection as it opens, then echoes.
	served := make(chan struct{})
	t.Cleanup(func() { <-served }) // after the server's Close (registered later, run first)
	srv := wstest.Start(t, &wstest.Options{Echo: true})
	go func() {
		defer close(served)
		var sends sync.WaitGroup
		defer sends.Wait()
		for {
			conn, err := srv.NextConn(context.Background())
			if errors.Is(err, wstest.ErrServerClosed) {
				return
			}
			if err != nil {
				continue // no connection within the server's wait timeout
			}
			sends.Add(1)
			go func() {
				defer sends.Done()
				_ = conn.SendBinary(big) // fails on a cut connection
			}()
		}
	}()
	px := srv.Network()
	px.CutAfter(60) // inside the 101 response (about 130 bytes)
	rec := newRecorder()
	c := mustNew(t, srv.URL(), rec, hsOptions())
	wait := startClient(t, c)

	// next returns the next event, failing on a data frame: none may arrive
	// while the cuts are on.
	next := func() recEvent {
		ev := rec.next(t, "connect", "disconnect", "frame")
		if ev.kind == "frame" && (ev.frame.Type == Text || ev.frame.Type == Binary) {
			t.Fatalf("a %d-byte message was delivered through a cut connection", len(ev.frame.Data))
		}
		return ev
	}
	for failed := 0; failed < 2; {
		ev := next()
		require.NotEqual(t, "connect", ev.kind, "a handshake cut in the middle cannot connect")
		if ev.kind == "disconnect" {
			// The message depends on where the cut falls (see the "hangs up
			// in the middle of a header name" case of TestHandshakeFaultsRetried).
			assert.False(t, ev.disc.Connected)
			assert.False(t, ev.disc.Suggested.IsStop())
			assert.Error(t, ev.disc.Err)
			if failed == 0 {
				t.Logf("cut in the handshake: %v", ev.disc.Err)
			}
			failed++
		}
	}

	px.CutAfter(4096) // inside the 256 KiB message
	for lost := 0; lost < 2; {
		ev := next()
		if ev.kind == "disconnect" && ev.disc.Connected {
			assert.False(t, ev.disc.Suggested.IsStop())
			assert.Equal(t, CloseAbnormal, CloseStatus(ev.disc.Err), "%v", ev.disc.Err)
			if lost == 0 {
				t.Logf("cut in a frame: %v", ev.disc.Err)
			}
			lost++
		}
	}

	px.CutAfter(0)
	// A connection made before that call may still be cut: skip its events.
	for {
		ev := rec.next(t, "connect", "disconnect", "frame")
		if ev.kind == "frame" && (ev.frame.Type == Text || ev.frame.Type == Binary) {
			assert.True(t, bytes.Equal(big, ev.frame.Data), "the message arrives intact once the cuts stop")
			break
		}
	}
	require.NoError(t, c.Close(ctxTimeout(t, 5*time.Second), CloseNormal, ""))
	require.NoError(t, wait())
}

// TestHandshakeFaultEndlessHeader: a hostile server answers with a header line
// that never ends. The client must give up after a bounded amount of response
// (net/http's client stops at 10 MiB by default) instead of buffering whatever
// arrives until HandshakeTimeout: 16 MiB within 1 s on loopback here,
// gigabytes on a fast link with the default 10 s timeout.
func TestHandshakeFaultEndlessHeader(t *testing.T) {
	forEachPath(t, testHandshakeFaultEndlessHeader)
}

func testHandshakeFaultEndlessHeader(t *testing.T, p connPath) {
	// What the server writes at most, if the client reads on: far more than
	// the buffers between them hold.
	const total = 64 << 20
	var written atomic.Int64
	chunk := bytes.Repeat([]byte("a"), 64<<10)
	srv := newHSServer(t, p, 100, wstest.Response{Stall: true, Raw: func(_ *http.Request, w io.Writer) {
		if _, err := io.WriteString(w, "HTTP/1.1 101 Switching Protocols\r\nX-Junk: "); err != nil {
			return
		}
		for written.Load() < total {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			written.Add(int64(len(chunk)))
		}
	}})
	discs := make(chan Disconnect, 1)
	h := &recorder{events: make(chan recEvent, 100)}
	h.decide = func(d Disconnect) Decision { discs <- d; return Stop() }
	o := hsOptions()
	o.HandshakeTimeout = time.Second
	var counted byteCount // what the client read from its socket
	read := &counted.read
	o.NetDialContext = countingDial(&counted)
	c, viaProxy := hsClient(t, p, srv, h, o)
	start := time.Now()
	wait := startClient(t, c)
	var d Disconnect
	select {
	case d = <-discs:
	case <-time.After(10 * time.Second):
		t.Fatal("no OnDisconnect within 10s")
	}
	elapsed := time.Since(start)
	t.Logf("after %v, %d MiB written by the server and %d KiB read by the client: %v",
		elapsed, written.Load()>>20, read.Load()>>10, d.Err)
	assert.Error(t, wait())
	// The 1 MiB limit, plus the proxy's answer, TLS records and one read buffer.
	assert.Less(t, read.Load(), int64(1<<20+64<<10), "the client read %d KiB of a header line", read.Load()>>10)
	if p.proxy == nil {
		// A 1 MiB limit plus the socket buffers of both ends and of wstest's
		// fault proxy between them (its queue and its two sockets; 6 to 13
		// MiB in all here) stays well below half of total. (Through a proxy,
		// the proxy's own sockets take up to tens of MiB more as it reads
		// ahead of the client.)
		assert.Less(t, written.Load(), int64(total/2), "the client kept reading a header line of %d MiB", written.Load()>>20)
	}
	assert.NotContains(t, d.Err.Error(), "timed out", "the client waited for HandshakeTimeout instead of failing on the size")
	assert.False(t, errors.Is(d.Err, context.DeadlineExceeded))
	viaProxy(t)
}
