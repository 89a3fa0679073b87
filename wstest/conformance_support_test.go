package wstest_test

// Tests of what a conformance suite needs of wstest: frames with a length in
// a non-minimal form or a false one (Frame.LengthBits, WithLength), writes in
// slices (WriteSliced), the client's frames as they were on the wire
// (Frames), what it does after its close frame (AwaitClientClose,
// AfterClose), a half-close (CloseWrite), and WaitClosed's error for the
// frames a client must not send. A raw client (rawClient) sends exactly the
// frames each test needs.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient"
	"github.com/ff42ae21/wsclient/wstest"
)

// rawClient is a hand-made WebSocket client: it writes the bytes it is given.
type rawClient struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

// dialRaw upgrades a connection to srv by hand (over TLS for a wss server)
// and returns it with the server's side of it.
func dialRaw(t *testing.T, srv *wstest.Server) (*rawClient, *wstest.Conn) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	var nc net.Conn
	var err error
	if cfg := srv.ClientTLSConfig(); cfg != nil {
		nc, err = tls.DialWithDialer(&d, "tcp", srv.Addr(), cfg)
	} else {
		nc, err = d.Dial("tcp", srv.Addr())
	}
	must(t, err)
	t.Cleanup(func() { nc.Close() })
	must(t, nc.SetDeadline(time.Now().Add(10*time.Second)))
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n", srv.Addr(), base64.StdEncoding.EncodeToString(key))
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %s", resp.Status)
	}
	c, err := srv.NextConn(t.Context())
	must(t, err)
	return &rawClient{t: t, nc: nc, br: br}, c
}

// masked is f masked with key, as a client sends it.
func masked(f wstest.Frame, key byte) wstest.Frame {
	f.Masked, f.MaskKey = true, [4]byte{key, key + 1, key + 2, key + 3}
	return f
}

func (r *rawClient) send(fs ...wstest.Frame) {
	r.t.Helper()
	var b []byte
	for _, f := range fs {
		b = f.AppendTo(b)
	}
	_, err := r.nc.Write(b)
	must(r.t, err)
}

// readFrame reads one (unmasked) frame from the server.
func (r *rawClient) readFrame() (op byte, payload []byte) {
	r.t.Helper()
	var h [8]byte
	_, err := io.ReadFull(r.br, h[:2])
	must(r.t, err)
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		_, err = io.ReadFull(r.br, h[:2])
		n = uint64(binary.BigEndian.Uint16(h[:2]))
	case 127:
		_, err = io.ReadFull(r.br, h[:8])
		n = binary.BigEndian.Uint64(h[:8])
	}
	must(r.t, err)
	payload = make([]byte, n)
	_, err = io.ReadFull(r.br, payload)
	must(r.t, err)
	return h[0] & 0x0f, payload
}

func text(s string) wstest.Frame {
	return wstest.Frame{Op: wstest.OpText, Fin: true, Payload: []byte(s)}
}

func TestFrameLengthForms(t *testing.T) {
	t.Parallel()
	hello := []byte("hello")
	cases := []struct {
		name string
		f    wstest.Frame
		want []byte
	}{
		{"shortest", text("hello"), append([]byte{0x81, 5}, hello...)},
		{"16-bit form", wstest.Frame{Op: wstest.OpText, Fin: true, Payload: hello, LengthBits: 16},
			append([]byte{0x81, 126, 0, 5}, hello...)},
		{"64-bit form", wstest.Frame{Op: wstest.OpBinary, Fin: true, Payload: []byte{1, 2, 3}, LengthBits: 64},
			[]byte{0x82, 127, 0, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3}},
		{"7-bit form for a ping", wstest.Frame{Op: wstest.OpPing, Fin: true, Payload: hello, LengthBits: 7},
			append([]byte{0x89, 5}, hello...)},
		{"4 GiB declared", wstest.Frame{Op: wstest.OpBinary, Fin: true}.WithLength(1 << 32),
			[]byte{0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0}},
		{"most significant bit set", wstest.Frame{Op: wstest.OpBinary, Fin: true}.WithLength(1<<63 | 5),
			[]byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 5}},
		{"fewer declared than sent", text("hello").WithLength(2), append([]byte{0x81, 2}, hello...)},
		{"declared in the 16-bit form", wstest.Frame{Op: wstest.OpText, Payload: hello, LengthBits: 16}.WithLength(300),
			append([]byte{0x01, 126, 1, 44}, hello...)},
	}
	for _, tc := range cases {
		if got := tc.f.Bytes(); !bytes.Equal(got, tc.want) {
			t.Errorf("%s: % x, want % x", tc.name, got, tc.want)
		}
	}
	if s := (wstest.Frame{Op: wstest.OpBinary}).WithLength(1 << 32).String(); !strings.Contains(s, "declared 4294967296") {
		t.Errorf("String() = %s", s)
	}
}

// TestFalseLengthRefused: a real client refuses a frame that declares 4 GiB,
// before any of it comes.
func TestFalseLengthRefused(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, nil)
	rec := newRecorder()
	rec.decide = func(wsclient.Disconnect) wsclient.Decision { return wsclient.Stop() }
	o := fastOptions()
	o.ReadLimit = 1 << 20
	run(t, srv.URL(), rec, o)
	c, err := srv.NextConn(t.Context())
	must(t, err)
	must(t, c.SendFrame(wstest.Frame{Op: wstest.OpBinary, Fin: true}.WithLength(1<<32)))
	code, _, err := c.WaitClosed(t.Context())
	must(t, err)
	if code != wsclient.CloseMessageTooBig {
		t.Errorf("the client closed with %d, want 1009", code)
	}
}

func TestFramesAsSent(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, nil)
	cl, c := dialRaw(t, srv)
	sent := []wstest.Frame{
		masked(wstest.Frame{Op: wstest.OpText, Payload: []byte("hel")}, 1),
		masked(wstest.Frame{Op: wstest.OpContinuation, Fin: true, Payload: []byte("lo"), LengthBits: 16}, 5),
		masked(wstest.Frame{Op: wstest.OpPing, Fin: true, Payload: []byte("p")}, 9),
		masked(wstest.Frame{Op: wstest.OpPong, Fin: true}, 13),
		masked(wstest.Frame{Op: wstest.OpBinary, Fin: true, Payload: bytes.Repeat([]byte{7}, 300)}, 17),
		masked(wstest.CloseFrame(wsclient.CloseGoingAway, "bye"), 21),
	}
	var b []byte
	for _, f := range sent {
		b = f.AppendTo(b)
	}
	for i := range b { // byte by byte: the frames are parsed across reads
		_, err := cl.nc.Write(b[i : i+1])
		must(t, err)
	}
	if op, p := cl.readFrame(); op != wstest.OpPong || string(p) != "p" {
		t.Errorf("the ping's answer: op %d %q", op, p)
	}
	if op, p := cl.readFrame(); op != wstest.OpClose || !bytes.Equal(p, []byte{0x03, 0xe9}) {
		t.Errorf("the close frame's echo: op %d % x", op, p)
	}
	code, reason, err := c.WaitClosed(t.Context())
	must(t, err)
	if code != wsclient.CloseGoingAway || reason != "bye" {
		t.Errorf("WaitClosed %d %q", code, reason)
	}
	got := c.Frames()
	if len(got) != len(sent) {
		t.Fatalf("Frames: %v, want %v", got, sent)
	}
	for i, want := range sent {
		if want.LengthBits == 0 {
			want.LengthBits = 7
			if len(want.Payload) > 125 {
				want.LengthBits = 16
			}
		}
		f := got[i]
		if f.Op != want.Op || f.Fin != want.Fin || f.Rsv != want.Rsv || f.Masked != want.Masked ||
			f.MaskKey != want.MaskKey || f.LengthBits != want.LengthBits || !bytes.Equal(f.Payload, want.Payload) {
			t.Errorf("frame %d: %v (length in %d bits, key % x), want %v (%d bits, key % x)",
				i, f, f.LengthBits, f.MaskKey, want, want.LengthBits, want.MaskKey)
		}
	}
	if text, err := c.ReadText(t.Context()); err != nil || text != "hello" {
		t.Errorf("ReadText %q %v", text, err)
	}
	if got, _ := c.Pings(); got != 1 {
		t.Errorf("%d pings", got)
	}
}

// TestWaitClosedSaysWhatTheClientBroke: the frames a client must not send are
// refused with 1002, WaitClosed's error says why, and Frames has them as
// they came.
func TestWaitClosedSaysWhatTheClientBroke(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		f    wstest.Frame
		want string
	}{
		{"unmasked text", text("hello"), "unmasked"},
		{"unmasked close", wstest.CloseFrame(wsclient.CloseNormal, ""), "unmasked"},
		{"close without FIN", masked(wstest.Frame{Op: wstest.OpClose, Payload: []byte{3, 0xe8}}, 1), "without FIN"},
		{"RSV1 without compression", masked(wstest.Frame{Op: wstest.OpText, Fin: true, Rsv: 4, Payload: []byte("x")}, 1), "RSV1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := wstest.Start(t, nil)
			cl, c := dialRaw(t, srv)
			cl.send(tc.f)
			code, _, err := c.WaitClosed(t.Context())
			if code != wsclient.CloseProtocolError || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("WaitClosed: %d, %v; want 1002 and an error saying %q", code, err, tc.want)
			}
			got := c.Frames()
			if len(got) != 1 || got[0].Masked != tc.f.Masked || got[0].Fin != tc.f.Fin || got[0].Op != tc.f.Op {
				t.Errorf("Frames: %v, want [%v]", got, tc.f)
			}
		})
	}
}

// TestWriteSliced: over wss, every piece is a TLS record of its own, so the
// client's reads never return more than a piece; nothing, not even the
// answer to a ping sent in the middle, comes between the pieces.
func TestWriteSliced(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, &wstest.Options{TLS: true})
	cl, c := dialRaw(t, srv)
	frame := text("0123456789abcdef").Bytes()
	const size, gap = 3, 2 * time.Millisecond
	done := make(chan error, 1)
	start := time.Now()
	if cl.br.Buffered() != 0 {
		t.Fatal("bytes after the upgrade answer")
	}
	go func() { done <- c.WriteSliced(frame, size, gap) }()
	var got []byte
	buf := make([]byte, 64)
	for len(got) < len(frame) {
		n, err := cl.nc.Read(buf) // the tls.Conn: one record at a time
		must(t, err)
		if n > size {
			t.Errorf("a read of %d bytes, pieces of %d", n, size)
		}
		if len(got) == 0 {
			cl.send(masked(wstest.Frame{Op: wstest.OpPing, Fin: true, Payload: []byte("mid")}, 3))
		}
		got = append(got, buf[:n]...)
	}
	must(t, <-done)
	if least := time.Duration((len(frame)+size-1)/size-1) * gap; time.Since(start) < least {
		t.Errorf("sliced write took %v, at least %v expected", time.Since(start), least)
	}
	if !bytes.Equal(got[:len(frame)], frame) {
		t.Errorf("got % x, want % x", got, frame)
	}
	cl.br = bufio.NewReader(io.MultiReader(bytes.NewReader(got[len(frame):]), cl.nc))
	if op, p := cl.readFrame(); op != wstest.OpPong || string(p) != "mid" {
		t.Errorf("after the sliced frame: op %d %q, want the pong", op, p)
	}
	if err := c.WriteSliced(frame, 0, 0); err == nil {
		t.Error("WriteSliced in pieces of 0 bytes: no error")
	}
}

func TestAfterClose(t *testing.T) {
	t.Parallel()
	closeFrame := masked(wstest.CloseFrame(wsclient.CloseNormal, ""), 1)

	t.Run("the client closes, after sending more", func(t *testing.T) {
		t.Parallel()
		srv := wstest.Start(t, nil)
		cl, c := dialRaw(t, srv)
		c.AwaitClientClose()
		cl.send(closeFrame)
		if op, _ := cl.readFrame(); op != wstest.OpClose {
			t.Fatalf("op %d, want the close frame's echo", op)
		}
		cl.send(text("late"))
		cl.nc.Close()
		after, err := c.AfterClose(t.Context())
		must(t, err)
		if want := text("late").Bytes(); !bytes.Equal(after, want) {
			t.Errorf("after the close frame: % x, want % x", after, want)
		}
		if code, _, err := c.WaitClosed(t.Context()); code != wsclient.CloseNormal || err != nil {
			t.Errorf("WaitClosed %d %v", code, err)
		}
	})

	t.Run("the client does not close", func(t *testing.T) {
		t.Parallel()
		srv := wstest.Start(t, &wstest.Options{WaitTimeout: time.Second})
		cl, c := dialRaw(t, srv)
		c.AwaitClientClose()
		cl.send(closeFrame)
		_, err := c.AfterClose(context.Background())
		if err == nil || !strings.Contains(err.Error(), "did not close") {
			t.Errorf("AfterClose: %v, want an error saying the client did not close", err)
		}
	})

	t.Run("without AwaitClientClose the server closes first", func(t *testing.T) {
		t.Parallel()
		srv := wstest.Start(t, nil)
		cl, c := dialRaw(t, srv)
		cl.send(closeFrame)
		_, err := c.AfterClose(t.Context())
		if err == nil || !strings.Contains(err.Error(), "closed") || !strings.Contains(err.Error(), "first") {
			t.Errorf("AfterClose: %v, want an error saying the server closed first", err)
		}
	})

	t.Run("the server drops it meanwhile", func(t *testing.T) {
		t.Parallel()
		srv := wstest.Start(t, nil)
		cl, c := dialRaw(t, srv)
		c.AwaitClientClose()
		cl.send(closeFrame)
		must(t, srv.Wait(t.Context(), func(wstest.Stats) bool { return len(c.Frames()) == 1 }))
		c.Drop()
		_, err := c.AfterClose(t.Context())
		if err == nil || !strings.Contains(err.Error(), "dropped") {
			t.Errorf("AfterClose: %v, want an error saying the server dropped it", err)
		}
	})

	t.Run("wsclient over wss", func(t *testing.T) {
		t.Parallel()
		srv := wstest.Start(t, &wstest.Options{TLS: true})
		rec := newRecorder()
		o := fastOptions()
		o.TLSConfig = srv.ClientTLSConfig()
		cl, err := wsclient.New(srv.URL(), rec, o)
		must(t, err)
		done := make(chan error, 1)
		go func() { done <- cl.Run(context.Background()) }()
		c, err := srv.NextConn(t.Context())
		must(t, err)
		c.AwaitClientClose()
		opened(t, rec)
		must(t, cl.Close(t.Context(), wsclient.CloseNormal, "done"))
		must(t, receive(t, done, "Run's end"))
		after, err := c.AfterClose(t.Context())
		if err != nil || len(after) != 0 {
			t.Errorf("AfterClose: % x, %v", after, err)
		}
		fs := c.Frames()
		if last := fs[len(fs)-1]; last.Op != wstest.OpClose || !last.Masked || !last.Fin {
			t.Errorf("the client's close frame: %v", last)
		}
	})
}

// TestCloseWrite: after the server's half-close the client reads the end of
// the stream; the server still sees what it sends, and that it closes.
func TestCloseWrite(t *testing.T) {
	t.Parallel()
	t.Run("raw client", func(t *testing.T) {
		t.Parallel()
		srv := wstest.Start(t, nil)
		cl, c := dialRaw(t, srv)
		c.AwaitClientClose()
		must(t, c.CloseWrite())
		if _, err := cl.br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("the client read %v, want EOF", err)
		}
		if err := c.SendText("x"); err == nil || !strings.Contains(err.Error(), "CloseWrite") {
			t.Errorf("SendText after CloseWrite: %v", err)
		}
		cl.send(masked(wstest.CloseFrame(4000, "after EOF"), 2))
		must(t, srv.Wait(t.Context(), func(wstest.Stats) bool { return len(c.Frames()) == 1 }))
		cl.nc.Close()
		if _, err := c.AfterClose(t.Context()); err != nil {
			t.Errorf("AfterClose: %v", err)
		}
		if code, reason, err := c.WaitClosed(t.Context()); code != 4000 || reason != "after EOF" || err != nil {
			t.Errorf("WaitClosed %d %q %v", code, reason, err)
		}
	})
	for _, tlsOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("wsclient, TLS %t", tlsOn), func(t *testing.T) {
			t.Parallel()
			srv := wstest.Start(t, &wstest.Options{TLS: tlsOn})
			rec := newRecorder()
			rec.decide = func(wsclient.Disconnect) wsclient.Decision { return wsclient.Stop() }
			o := fastOptions()
			o.TLSConfig = srv.ClientTLSConfig()
			run(t, srv.URL(), rec, o)
			c, err := srv.NextConn(t.Context())
			must(t, err)
			c.AwaitClientClose()
			opened(t, rec)
			must(t, c.CloseWrite())
			d := receive(t, rec.disconnects, "OnDisconnect")
			if wsclient.CloseStatus(d.Err) != wsclient.CloseAbnormal {
				t.Errorf("Disconnect.Err %v, want a 1006", d.Err)
			}
			if _, err := c.AfterClose(t.Context()); err != nil {
				t.Errorf("AfterClose: %v", err)
			}
		})
	}
}
