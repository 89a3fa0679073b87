package wstest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient"
	"github.com/ff42ae21/wsclient/wstest"
)

func TestEchoAndObserve(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, &wstest.Options{Echo: true})
	rec := newRecorder()
	o := fastOptions()
	o.Header = http.Header{"X-Team": {"blue"}}
	cl := run(t, srv.URL()+"feed?x=1", rec, o)
	opened(t, rec)
	must(t, cl.Send(t.Context(), wsclient.TextFrame("hello")))
	must(t, cl.Send(t.Context(), wsclient.BinaryFrame([]byte{1, 2})))
	if f := receive(t, rec.frames, "echo"); string(f.Data) != "hello" || f.Type != wsclient.Text {
		t.Fatalf("echo %v %q", f.Type, f.Data)
	}
	receive(t, rec.frames, "binary echo")

	c, err := srv.NextConn(t.Context())
	must(t, err)
	if got := c.Request().URL.String(); got != "/feed?x=1" {
		t.Errorf("request URL %q", got)
	}
	if got := c.Request().Header.Get("X-Team"); got != "blue" {
		t.Errorf("header X-Team %q", got)
	}
	text, err := c.ReadText(t.Context())
	must(t, err)
	bin, err := c.ReadBinary(t.Context())
	must(t, err)
	if text != "hello" || len(bin) != 2 {
		t.Errorf("read %q %v", text, bin)
	}
	if got := len(c.Received()); got != 2 {
		t.Errorf("%d messages received, want 2", got)
	}
	if st := srv.Stats(); st.Requests != 1 || st.Upgraded != 1 || st.Open != 1 {
		t.Errorf("stats %v", st)
	}
	if len(srv.Requests()) != 1 || len(srv.Conns()) != 1 {
		t.Errorf("%d requests, %d conns", len(srv.Requests()), len(srv.Conns()))
	}
}

func TestSendAndClose(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, nil)
	rec := newRecorder()
	rec.decide = func(wsclient.Disconnect) wsclient.Decision { return wsclient.Stop() }
	run(t, srv.URL(), rec, fastOptions())
	c, err := srv.NextConn(t.Context())
	must(t, err)
	must(t, c.SendText("a"))
	must(t, c.SendJSON(map[string]int{"n": 1}))
	must(t, c.SendFragments(false, []byte("fr"), []byte("ag"), []byte("ments")))
	must(t, c.SendFragments(true, []byte{1}, []byte{2}))
	for _, want := range []string{"a", `{"n":1}`, "fragments", "\x01\x02"} {
		if f := receive(t, rec.frames, "frame"); string(f.Data) != want {
			t.Fatalf("got %q, want %q", f.Data, want)
		}
	}
	must(t, c.Close(4001, "bye"))
	d := receive(t, rec.disconnects, "disconnect")
	var ce *wsclient.CloseError
	if !errors.As(d.Err, &ce) || ce.Code != 4001 || ce.Reason != "bye" {
		t.Fatalf("client saw %v", d.Err)
	}
	code, _, err := c.WaitClosed(t.Context())
	must(t, err)
	if code != 4001 {
		t.Errorf("the client answered %d, want its echo 4001", code)
	}
	if err := c.SendText("late"); err == nil {
		t.Error("SendText on an ended connection succeeded")
	}
	if _, err := c.ReadMessage(t.Context()); err == nil || !strings.Contains(err.Error(), "ended") {
		t.Errorf("ReadMessage on an ended connection: %v", err)
	}
	must(t, srv.WaitOpen(t.Context(), 0))
}

func TestClientClose(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, nil)
	rec := newRecorder()
	cl, err := wsclient.New(srv.URL(), rec, fastOptions())
	must(t, err)
	done := make(chan error, 1)
	go func() { done <- cl.Run(context.Background()) }()
	c, err := srv.NextConn(t.Context())
	must(t, err)
	opened(t, rec)
	must(t, cl.Close(t.Context(), 4321, "done here"))
	must(t, receive(t, done, "Run's end"))
	code, reason, err := c.WaitClosed(t.Context())
	must(t, err)
	if code != 4321 || reason != "done here" {
		t.Errorf("close %d %q", code, reason)
	}
}

func TestMalformedFrames(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		send func(c *wstest.Conn) error
		code int
	}{
		{"reserved opcode", func(c *wstest.Conn) error { return c.SendFrame(wstest.Frame{Op: 3, Fin: true}) }, 1002},
		{"rsv bits", func(c *wstest.Conn) error {
			return c.SendFrame(wstest.Frame{Op: wstest.OpText, Fin: true, Rsv: 2, Payload: []byte("x")})
		}, 1002},
		{"masked", func(c *wstest.Conn) error {
			return c.SendFrame(wstest.Frame{Op: wstest.OpText, Fin: true, Masked: true, MaskKey: [4]byte{1, 2, 3, 4}, Payload: []byte("x")})
		}, 1002},
		{"bad utf-8", func(c *wstest.Conn) error {
			return c.SendFrame(wstest.Frame{Op: wstest.OpText, Fin: true, Payload: []byte{0xff, 0xfe}})
		}, 1007},
		{"fragmented ping", func(c *wstest.Conn) error { return c.SendFrame(wstest.Frame{Op: wstest.OpPing}) }, 1002},
		{"bad close code", func(c *wstest.Conn) error { return c.SendFrame(wstest.CloseFrame(999, "")) }, 1002},
		{"raw continuation", func(c *wstest.Conn) error { return c.WriteRaw([]byte{0x80, 0x00}) }, 1002},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := wstest.Start(t, nil)
			rec := newRecorder()
			rec.decide = func(wsclient.Disconnect) wsclient.Decision { return wsclient.Stop() }
			run(t, srv.URL(), rec, fastOptions())
			c, err := srv.NextConn(t.Context())
			must(t, err)
			must(t, tc.send(c))
			code, _, err := c.WaitClosed(t.Context())
			must(t, err)
			if code != tc.code {
				t.Errorf("the client closed with %d, want %d", code, tc.code)
			}
		})
	}
}

func TestHandshakeQueue(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, nil)
	srv.Enqueue(
		wstest.Response{Status: 401, Header: http.Header{"Www-Authenticate": {"Bearer"}}, Body: "no token"},
		wstest.Response{Status: 403},
		wstest.Response{Status: 429, Header: http.Header{"Retry-After": {"0"}}},
		wstest.Response{Status: 503},
		wstest.Response{Status: 301, Header: http.Header{"Location": {"ws://elsewhere.example/"}}},
	)
	rec := newRecorder()
	rec.decide = func(wsclient.Disconnect) wsclient.Decision { return wsclient.ReconnectAfter(time.Millisecond) }
	run(t, srv.URL(), rec, fastOptions())
	for _, want := range []int{401, 403, 429, 503, 301} {
		d := receive(t, rec.disconnects, "disconnect")
		var he *wsclient.HandshakeError
		if !errors.As(d.Err, &he) || he.StatusCode != want {
			t.Fatalf("got %v, want HTTP %d", d.Err, want)
		}
		switch want {
		case 401:
			if string(he.Body) != "no token" || he.Header.Get("Www-Authenticate") != "Bearer" {
				t.Errorf("401 body %q header %v", he.Body, he.Header)
			}
		case 301:
			if he.Header.Get("Location") != "ws://elsewhere.example/" {
				t.Errorf("301 Location %q", he.Header.Get("Location"))
			}
		}
	}
	receive(t, rec.connects, "connect after the queue")
	if st := srv.Stats(); st.Requests != 6 || st.Upgraded != 1 {
		t.Errorf("stats %v", st)
	}
}

func TestCheckToken(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, &wstest.Options{Check: func(r *http.Request) *wstest.Response {
		if r.Header.Get("Authorization") != "Bearer good" {
			return &wstest.Response{Status: http.StatusUnauthorized}
		}
		return nil
	}})
	rec := newRecorder()
	rec.decide = func(d wsclient.Disconnect) wsclient.Decision {
		return wsclient.ReconnectAfter(time.Millisecond).WithHeader(http.Header{"Authorization": {"Bearer good"}})
	}
	o := fastOptions()
	o.Header = http.Header{"Authorization": {"Bearer stale"}}
	run(t, srv.URL(), rec, o)
	d := receive(t, rec.disconnects, "disconnect")
	if wsclient.CloseStatus(d.Err) != 0 && !strings.Contains(d.Err.Error(), "401") {
		t.Fatalf("first attempt: %v", d.Err)
	}
	receive(t, rec.connects, "connect with the fresh token")
	reqs := srv.Requests()
	if len(reqs) != 2 || reqs[1].Header.Get("Authorization") != "Bearer good" {
		t.Fatalf("requests %d", len(reqs))
	}
}

func TestSubprotocolAndCompression(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, &wstest.Options{Subprotocols: []string{"v2", "v1"}, Compression: true, Echo: true})
	rec := newRecorder()
	o := fastOptions()
	o.Subprotocols = []string{"v1", "v2"}
	o.Compression = true
	cl := run(t, srv.URL(), rec, o)
	wc := receive(t, rec.connects, "connect")
	if wc.Subprotocol() != "v1" {
		t.Errorf("subprotocol %q", wc.Subprotocol())
	}
	if ext := wc.Response().Header.Get("Sec-WebSocket-Extensions"); !strings.HasPrefix(ext, "permessage-deflate") {
		t.Errorf("extensions %q", ext)
	}
	big := strings.Repeat("compressible ", 1000)
	must(t, cl.Send(t.Context(), wsclient.TextFrame(big)))
	if f := receive(t, rec.frames, "echo"); string(f.Data) != big {
		t.Error("compressed echo differs")
	}
}

func TestBadAnswerHeaders(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, nil)
	srv.Enqueue(wstest.Response{Header: http.Header{"Sec-WebSocket-Protocol": {"not-offered"}}})
	rec := newRecorder()
	run(t, srv.URL(), rec, fastOptions())
	d := receive(t, rec.disconnects, "disconnect")
	if !errors.Is(d.Err, wsclient.ErrBadSubprotocol) || !d.Suggested.IsStop() {
		t.Fatalf("got %v, %v", d.Err, d.Suggested)
	}
}

func TestStallDelayDrop(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, nil)
	srv.Enqueue(
		wstest.Response{Stall: true},
		wstest.Response{Drop: true},
		wstest.Response{Delay: 20 * time.Millisecond},
	)
	rec := newRecorder()
	o := fastOptions()
	o.HandshakeTimeout = 100 * time.Millisecond
	run(t, srv.URL(), rec, o)
	d := receive(t, rec.disconnects, "the stalled attempt")
	if d.Connected {
		t.Fatalf("stalled attempt connected: %v", d.Err)
	}
	d = receive(t, rec.disconnects, "the dropped connection")
	if !d.Connected {
		t.Fatalf("accept-and-drop: %v", d.Err)
	}
	must(t, srv.WaitOpen(t.Context(), 1))
	if st := srv.Stats(); st.Requests != 3 || st.Upgraded != 1 {
		t.Errorf("stats %v", st)
	}
}

func TestSilenceAndPings(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, nil)
	rec := newRecorder()
	o := fastOptions()
	o.PingInterval, o.PongTimeout = 20*time.Millisecond, 100*time.Millisecond
	run(t, srv.URL(), rec, o)
	c, err := srv.NextConn(t.Context())
	must(t, err)
	must(t, srv.Wait(t.Context(), func(wstest.Stats) bool { n, _ := c.Pings(); return n >= 3 }))
	if n, answered := c.Pings(); answered < n-1 {
		t.Errorf("%d pings, %d answered", n, answered)
	}
	c.SetAnswerPings(false)
	d := receive(t, rec.disconnects, "keepalive timeout without pongs")
	if !errors.Is(d.Err, wsclient.ErrKeepaliveTimeout) {
		t.Fatalf("got %v", d.Err)
	}
	c2, err := srv.NextConn(t.Context())
	must(t, err)
	c2.Silence()
	if err := c2.SendText("x"); err == nil {
		t.Error("a silent connection sent")
	}
	d = receive(t, rec.disconnects, "keepalive timeout on a silent server")
	if !errors.Is(d.Err, wsclient.ErrKeepaliveTimeout) {
		t.Fatalf("got %v", d.Err)
	}
	c2.Drop()
	code, _, err := c2.WaitClosed(t.Context())
	must(t, err)
	if code != 1006 {
		t.Errorf("silent connection ended with %d", code)
	}
}

func TestDropAndReset(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, nil)
	rec := newRecorder()
	run(t, srv.URL(), rec, fastOptions())
	c, err := srv.NextConn(t.Context())
	must(t, err)
	c.Drop()
	if d := receive(t, rec.disconnects, "drop"); wsclient.CloseStatus(d.Err) != 1006 {
		t.Errorf("drop: %v", d.Err)
	}
	c, err = srv.NextConn(t.Context())
	must(t, err)
	c.Reset()
	if d := receive(t, rec.disconnects, "reset"); wsclient.CloseStatus(d.Err) != 1006 {
		t.Errorf("reset: %v", d.Err)
	}
	_, err = srv.NextConn(t.Context())
	must(t, err)
}

func TestRestart(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, nil)
	rec := newRecorder()
	run(t, srv.URL(), rec, fastOptions())
	must(t, srv.WaitOpen(t.Context(), 1))
	srv.Down()
	if st := srv.Stats(); st.Open != 0 {
		t.Fatalf("open after Down: %v", st)
	}
	must(t, srv.Wait(t.Context(), func(st wstest.Stats) bool { return st.Refused >= 2 }))
	srv.Up()
	must(t, srv.WaitOpen(t.Context(), 1))
	srv.Restart(10 * time.Millisecond)
	must(t, srv.Wait(t.Context(), func(st wstest.Stats) bool { return st.Upgraded == 3 && st.Open == 1 }))
}

func TestNetworkFaults(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, &wstest.Options{Echo: true})
	rec := newRecorder()
	o := fastOptions()
	o.PingInterval, o.PongTimeout = 20*time.Millisecond, 500*time.Millisecond
	cl := run(t, srv.URL(), rec, o)
	opened(t, rec)
	net := srv.Network()

	net.SetSlicing(5, time.Millisecond)
	net.SetLatency(5 * time.Millisecond)
	net.SetBandwidth(1 << 20)
	msg := strings.Repeat("x", 100)
	must(t, cl.Send(t.Context(), wsclient.TextFrame(msg)))
	if f := receive(t, rec.frames, "echo through slow pieces"); string(f.Data) != msg {
		t.Fatal("echo differs")
	}
	net.Clear()

	net.SetBlackhole(true)
	if d := receive(t, rec.disconnects, "blackhole"); !errors.Is(d.Err, wsclient.ErrKeepaliveTimeout) {
		t.Fatalf("blackhole: %v", d.Err)
	}
	net.SetBlackhole(false)
	must(t, srv.Wait(t.Context(), func(st wstest.Stats) bool { return st.Upgraded >= 2 }))
	opened(t, rec)

	net.ResetAll()
	receive(t, rec.disconnects, "reset")
	opened(t, rec)

	net.CutAfter(3)
	must(t, cl.Send(t.Context(), wsclient.TextFrame("cut me")))
	if d := receive(t, rec.disconnects, "cut"); wsclient.CloseStatus(d.Err) != 1006 {
		t.Errorf("cut: %v", d.Err)
	}
	net.Clear()
	opened(t, rec)
}

func TestTLS(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, &wstest.Options{TLS: true, Echo: true})
	if !strings.HasPrefix(srv.URL(), "wss://") {
		t.Fatal(srv.URL())
	}
	o := fastOptions()
	o.TLSConfig = srv.ClientTLSConfig()
	rec := newRecorder()
	run(t, srv.URL(), rec, o)
	opened(t, rec)
	if srv.CertPool() == nil {
		t.Error("no CertPool")
	}
	c, err := srv.NextConn(t.Context())
	must(t, err)
	if c.Request().TLS == nil {
		t.Error("request without TLS state")
	}
}

func TestMutualTLS(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, &wstest.Options{ClientCert: true})
	ca, cert, key, err := srv.CertFiles(t.TempDir())
	must(t, err)
	o := fastOptions()
	o.TLSFiles = &wsclient.TLSFiles{CAFile: ca, CertFile: cert, KeyFile: key}
	rec := newRecorder()
	run(t, srv.URL(), rec, o)
	opened(t, rec)
	c, err := srv.NextConn(t.Context())
	must(t, err)
	if st := c.Request().TLS; st == nil || len(st.PeerCertificates) == 0 {
		t.Error("no client certificate seen")
	}

	// Without a client certificate: refused.
	rec = newRecorder()
	o = fastOptions()
	o.TLSConfig = srv.ClientTLSConfig()
	o.TLSConfig.Certificates = nil
	run(t, srv.URL(), rec, o)
	d := receive(t, rec.disconnects, "refusal")
	var te *wsclient.TLSError
	if !errors.As(d.Err, &te) {
		t.Errorf("got %v, want a *TLSError", d.Err)
	}
}

func TestBadUse(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, &wstest.Options{WaitTimeout: 30 * time.Millisecond})
	start := time.Now()
	if _, err := srv.NextConn(context.Background()); err == nil || !strings.Contains(err.Error(), "WaitTimeout") {
		t.Errorf("NextConn without a client: %v", err)
	}
	var noCtx context.Context // bad use that must not panic
	if err := srv.WaitOpen(noCtx, 3); err == nil {
		t.Error("WaitOpen without a client succeeded")
	}
	if time.Since(start) > 2*time.Second {
		t.Error("waits were not bounded by WaitTimeout")
	}
	if _, _, _, err := srv.CertFiles(t.TempDir()); err == nil {
		t.Error("CertFiles on ws")
	}
	if srv.ClientTLSConfig() != nil {
		t.Error("ClientTLSConfig on ws")
	}
	srv.Close()
	if _, err := srv.NextConn(context.Background()); !errors.Is(err, wstest.ErrServerClosed) {
		t.Errorf("NextConn after Close: %v", err)
	}
	srv.Close() // idempotent
}

// TestForgetKeepsNoHistory: with Options.Forget the server keeps nothing of
// the past: read messages, requests, frames beyond the last and ended
// connections are gone, while Stats still count, echo and ReadMessage work,
// and the close code is still known.
func TestForgetKeepsNoHistory(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, &wstest.Options{Forget: true, Echo: true})
	rec := newRecorder()
	cl := run(t, srv.URL(), rec, fastOptions())
	for round := range 3 {
		opened(t, rec)
		c, err := srv.NextConn(t.Context())
		must(t, err)
		for i := range 5 {
			must(t, cl.Send(t.Context(), wsclient.TextFrame(fmt.Sprint("m", i))))
			receive(t, rec.frames, "echo")
		}
		if got := len(c.Received()); got != 5 {
			t.Errorf("round %d: %d unread messages, want 5", round, got)
		}
		for i := range 5 {
			if s, err := c.ReadText(t.Context()); err != nil || s != fmt.Sprint("m", i) {
				t.Fatalf("round %d: read %q, %v", round, s, err)
			}
		}
		if got := len(c.Received()); got != 0 {
			t.Errorf("round %d: %d messages kept after reading, want 0", round, got)
		}
		if got := len(c.Frames()); got > 1 {
			t.Errorf("round %d: %d frames kept, want at most 1", round, got)
		}
		must(t, c.Close(wsclient.CloseServiceRestart, "again")) // the client reconnects
		code, _, err := c.WaitClosed(t.Context())
		must(t, err)
		if code != wsclient.CloseServiceRestart {
			t.Errorf("round %d: closed with %d", round, code)
		}
		must(t, srv.Wait(t.Context(), func(st wstest.Stats) bool { return st.Upgraded == round+2 }))
		must(t, srv.WaitOpen(t.Context(), 1))
		if got := len(srv.Conns()); got != 1 {
			t.Errorf("round %d: %d conns kept, want the open one", round, got)
		}
	}
	if got := len(srv.Requests()); got != 0 {
		t.Errorf("%d requests kept", got)
	}
	if st := srv.Stats(); st.Requests != 4 || st.Upgraded != 4 || st.Open != 1 {
		t.Errorf("stats %v", st)
	}
	if c, err := srv.NextConn(t.Context()); err != nil || c.String() != "wstest connection 4" {
		t.Errorf("the fourth connection: %v, %v", c, err)
	}
}

// TestOnMessageAnswersInOrder: OnMessage runs on the reader, so its answers
// to messages sent just before the client's close all reach the client;
// with Forget the messages it got are not kept.
func TestOnMessageAnswersInOrder(t *testing.T) {
	t.Parallel()
	for _, forget := range []bool{false, true} {
		srv := wstest.Start(t, &wstest.Options{Forget: forget, OnMessage: func(c *wstest.Conn, m wstest.Message) {
			_ = c.SendText("re: " + string(m.Data))
		}})
		rec := newRecorder()
		cl := run(t, srv.URL(), rec, fastOptions())
		opened(t, rec)
		c, err := srv.NextConn(t.Context())
		must(t, err)
		for i := range 10 {
			must(t, cl.Send(t.Context(), wsclient.TextFrame(fmt.Sprint("m", i))))
		}
		must(t, cl.Close(t.Context(), wsclient.CloseNormal, ""))
		for i := range 10 {
			if f := receive(t, rec.frames, "answer"); string(f.Data) != fmt.Sprint("re: m", i) {
				t.Fatalf("forget %v: answer %d is %q", forget, i, f.Data)
			}
		}
		want := 10
		if forget {
			want = 0
		}
		if got := len(c.Received()); got != want {
			t.Errorf("forget %v: %d messages kept, want %d", forget, got, want)
		}
	}
}

// TestCallbacksMayDropAndClose: Drop, Reset and Close called from inside
// OnMessage or Check return (they do not wait for the goroutine they run on),
// and what they started ends once the callback returns.
func TestCallbacksMayDropAndClose(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts func(srv **wstest.Server) *wstest.Options
	}{
		{"Drop in OnMessage", func(**wstest.Server) *wstest.Options {
			return &wstest.Options{OnMessage: func(c *wstest.Conn, _ wstest.Message) { c.Drop() }}
		}},
		{"Reset in OnMessage", func(**wstest.Server) *wstest.Options {
			return &wstest.Options{OnMessage: func(c *wstest.Conn, _ wstest.Message) { c.Reset() }}
		}},
		{"Close in OnMessage", func(srv **wstest.Server) *wstest.Options {
			return &wstest.Options{OnMessage: func(*wstest.Conn, wstest.Message) { (*srv).Close() }}
		}},
		{"Close in Check", func(srv **wstest.Server) *wstest.Options {
			first := true
			return &wstest.Options{Check: func(*http.Request) *wstest.Response {
				if !first {
					(*srv).Close()
				}
				first = false
				return nil
			}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var srv *wstest.Server
			srv = wstest.Start(t, tc.opts(&srv))
			rec := newRecorder()
			// A lost connection reconnects; a failed attempt (the server has
			// closed) stops, rather than fill the recorder's channel.
			rec.decide = func(d wsclient.Disconnect) wsclient.Decision {
				if d.Connected {
					return wsclient.Reconnect()
				}
				return wsclient.Stop()
			}
			cl := run(t, srv.URL(), rec, fastOptions())
			opened(t, rec)
			must(t, cl.Send(t.Context(), wsclient.TextFrame("x")))
			if tc.name == "Close in Check" {
				srv.Network().ResetAll() // the next handshake runs Check, which closes the server
			}
			d := receive(t, rec.disconnects, "the connection's end")
			if wsclient.CloseStatus(d.Err) != wsclient.CloseAbnormal {
				t.Errorf("ended with %v", d.Err)
			}
			if tc.name == "Close in Check" {
				// The attempt whose Check closed the server fails.
				d := receive(t, rec.disconnects, "the attempt's failure")
				if d.Connected || srv.Stats().Requests != 2 {
					t.Errorf("second disconnect %+v, %v", d, srv.Stats())
				}
			}
			srv.Close() // returns: nothing is left waiting on a callback
		})
	}
}

// errTB records the errors of a testing.TB.
type errTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (e *errTB) Error(args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errs = append(e.errs, fmt.Sprint(args...))
}

// TestCloseReportsABlockedCallback: a Check that never returns does not make
// Close hang: Close reports it after WaitTimeout (plus a second) and returns.
func TestCloseReportsABlockedCallback(t *testing.T) {
	t.Parallel()
	release, entered := make(chan struct{}), make(chan struct{}, 1)
	tb := &errTB{TB: t}
	srv := wstest.Start(tb, &wstest.Options{WaitTimeout: 100 * time.Millisecond, Check: func(*http.Request) *wstest.Response {
		entered <- struct{}{}
		<-release
		return nil
	}})
	rec := newRecorder()
	// One attempt: a client that went on reconnecting to the closed server
	// would fill the recorder's channel, which this test does not read.
	rec.decide = func(wsclient.Disconnect) wsclient.Decision { return wsclient.Stop() }
	run(t, srv.URL(), rec, fastOptions())
	<-entered
	start := time.Now()
	srv.Close()
	close(release)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Close took %v", took)
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.errs) != 1 || !strings.Contains(tb.errs[0], "has not returned") {
		t.Errorf("errors %q", tb.errs)
	}
}
