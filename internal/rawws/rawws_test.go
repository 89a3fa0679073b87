package rawws

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

const testTimeout = 5 * time.Second

// start runs script for every connection; its result is sent on the channel.
func start(t *testing.T, opts ServerOptions, script func(c *Conn) error) (*Server, <-chan error) {
	t.Helper()
	errc := make(chan error, 8)
	srv, err := NewServerWith(opts, func(c *Conn) { errc <- script(c) })
	if err != nil {
		t.Fatal(err)
	}
	return srv, errc
}

func wait(t *testing.T, errc <-chan error) {
	t.Helper()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("script: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("script did not finish")
	}
}

func dial(t *testing.T, srv *Server) *websocket.Conn {
	t.Helper()
	// A large write buffer keeps gorilla from fragmenting big messages.
	d := websocket.Dialer{HandshakeTimeout: testTimeout, WriteBufferSize: 128 << 10}
	ws, _, err := d.Dial(srv.URL(), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return ws
}

func TestEncode(t *testing.T) {
	big := bytes.Repeat([]byte{'x'}, 70000)
	cases := []struct {
		name string
		f    Frame
		want []byte
	}{
		{"text", Text("hi"), []byte{0x81, 0x02, 'h', 'i'}},
		{"empty binary", Binary(nil), []byte{0x82, 0x00}},
		{"fragment", Fragment(OpText, false, []byte("a")), []byte{0x01, 0x01, 'a'}},
		{"rsv+reserved op", Frame{Fin: true, Rsv1: true, Rsv3: true, Opcode: 0xB}, []byte{0xDB, 0x00}},
		{"close", CloseFrame(1000, "ok"), []byte{0x88, 0x04, 0x03, 0xE8, 'o', 'k'}},
		{"ping", Ping([]byte{1}), []byte{0x89, 0x01, 1}},
		{"masked", Frame{Fin: true, Opcode: OpText, Masked: true, MaskKey: [4]byte{1, 2, 3, 4}, Payload: []byte("abcde")},
			[]byte{0x81, 0x85, 1, 2, 3, 4, 'a' ^ 1, 'b' ^ 2, 'c' ^ 3, 'd' ^ 4, 'e' ^ 1}},
		{"16-bit forced", Frame{Fin: true, Opcode: OpBinary, Payload: []byte{7}, LengthForm: Len16},
			[]byte{0x82, 126, 0, 1, 7}},
		{"64-bit forced", Frame{Fin: true, Opcode: OpBinary, Payload: []byte{7}, LengthForm: Len64},
			[]byte{0x82, 127, 0, 0, 0, 0, 0, 0, 0, 1, 7}},
		{"declared length", Text("abc").WithLength(1 << 63), []byte{0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c'}},
		{"16-bit minimal", Binary(big[:300]), append([]byte{0x82, 126, 0x01, 0x2C}, big[:300]...)},
		{"64-bit minimal", Binary(big), append([]byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70}, big...)},
	}
	for _, tc := range cases {
		if got := tc.f.Encode(); !bytes.Equal(got, tc.want) {
			t.Errorf("%s: Encode() = % x, want % x", tc.name, head(got), head(tc.want))
		}
	}
}

func head(b []byte) []byte { return b[:min(len(b), 16)] }

func TestDecodeFrame(t *testing.T) {
	in := Frame{Fin: true, Rsv2: true, Opcode: OpBinary, Masked: true, MaskKey: [4]byte{9, 8, 7, 6},
		Payload: bytes.Repeat([]byte("0123456789"), 30), LengthForm: Len64}
	got, err := DecodeFrame(bytes.NewReader(in.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != in.String() || got.MaskKey != in.MaskKey || got.LengthForm != Len64 ||
		!bytes.Equal(got.Payload, in.Payload) {
		t.Errorf("DecodeFrame = %v, want %v", got, in)
	}
	if _, err := DecodeFrame(bytes.NewReader(nil)); err != io.EOF {
		t.Errorf("empty input: err = %v, want io.EOF", err)
	}
	if _, err := DecodeFrame(bytes.NewReader([]byte{0x81, 0x05, 'a'})); err != io.ErrUnexpectedEOF {
		t.Errorf("truncated input: err = %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := DecodeFrame(bytes.NewReader(Text("").WithLength(1 << 63).Encode())); err == nil {
		t.Error("64-bit length with MSB set: want error")
	}
}

func TestParseClose(t *testing.T) {
	for _, tc := range []struct {
		p      []byte
		code   int
		reason string
	}{
		{nil, 1005, ""}, {[]byte{3}, -1, ""}, {[]byte{0x03, 0xE9}, 1001, ""}, {CloseFrame(4000, "bye").Payload, 4000, "bye"},
	} {
		if code, reason := ParseClose(tc.p); code != tc.code || reason != tc.reason {
			t.Errorf("ParseClose(% x) = %d %q, want %d %q", tc.p, code, reason, tc.code, tc.reason)
		}
	}
}

func TestHandshake(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv, errc := start(t, ServerOptions{Subprotocols: []string{"chat"}}, func(c *Conn) error {
		if got := c.Request().Header.Get("X-Test"); got != "1" {
			return fmt.Errorf("X-Test = %q", got)
		}
		return nil
	})
	defer srv.Close()
	d := websocket.Dialer{HandshakeTimeout: testTimeout, Subprotocols: []string{"other", "chat"}}
	ws, resp, err := d.Dial(srv.URL(), http.Header{"X-Test": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if resp.StatusCode != 101 || ws.Subprotocol() != "chat" {
		t.Errorf("status %d, subprotocol %q", resp.StatusCode, ws.Subprotocol())
	}
	wait(t, errc)
	if srv.Accepted() != 1 || srv.HandshakeErr() != nil {
		t.Errorf("Accepted() = %d, HandshakeErr() = %v", srv.Accepted(), srv.HandshakeErr())
	}
}

func TestHandshakeRejected(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv, err := NewServer(func(c *Conn) { t.Error("handler called for invalid handshake") })
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	nc, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || srv.HandshakeErr() == nil {
		t.Errorf("status %d, HandshakeErr() = %v", resp.StatusCode, srv.HandshakeErr())
	}
}

func TestBadHandshakes(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, tc := range []struct {
		name   string
		write  func(req *http.Request, w *bufio.Writer)
		status int
	}{
		{"garbage", func(_ *http.Request, w *bufio.Writer) { w.WriteString("SSH-2.0-nope\r\n\r\n") }, 0},
		{"wrong accept", func(req *http.Request, w *bufio.Writer) {
			w.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Accept: " + AcceptKey("wrong") + "\r\n\r\n")
		}, 101},
		{"503", func(_ *http.Request, w *bufio.Writer) {
			w.WriteString("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n")
		}, 503},
		{"no answer", func(*http.Request, *bufio.Writer) {}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := NewServerWith(ServerOptions{Handshake: tc.write}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			d := websocket.Dialer{HandshakeTimeout: 200 * time.Millisecond}
			ws, resp, err := d.Dial(srv.URL(), nil)
			if err == nil {
				ws.Close()
				t.Fatal("dial succeeded")
			}
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			if status != tc.status {
				t.Errorf("status %d, want %d (err %v)", status, tc.status, err)
			}
		})
	}
}

func TestMessages(t *testing.T) {
	defer goleak.VerifyNone(t)
	big := bytes.Repeat([]byte("abcdefgh"), 70000/8)
	srv, errc := start(t, ServerOptions{}, func(c *Conn) error {
		if err := c.WriteFrame(Text("hello")); err != nil {
			return err
		}
		f, err := c.ReadFrame(testTimeout)
		if err != nil {
			return err
		}
		if !f.Masked || !f.Fin || f.Opcode != OpBinary || string(f.Payload) != "from client" {
			return fmt.Errorf("got %v", f)
		}
		// Fragmented text with an interleaved ping, sent byte by byte.
		var msg []byte
		for _, fr := range []Frame{
			Fragment(OpText, false, []byte("frag")),
			Ping([]byte("p")),
			Fragment(OpContinuation, false, []byte("men")),
			Fragment(OpContinuation, true, []byte("ted")),
		} {
			msg = append(msg, fr.Encode()...)
		}
		if err := c.WriteChunked(msg, 1, 0); err != nil {
			return err
		}
		if f, err = c.ReadFrame(testTimeout); err != nil || f.Opcode != OpPong || string(f.Payload) != "p" {
			return fmt.Errorf("want pong, got %v, %v", f, err)
		}
		// Non-minimal 64-bit length, then a genuinely large frame.
		if err := c.WriteFrame(Frame{Fin: true, Opcode: OpBinary, Payload: []byte("tiny"), LengthForm: Len64}); err != nil {
			return err
		}
		if err := c.WriteFrame(Binary(big)); err != nil {
			return err
		}
		f, err = c.ReadFrame(testTimeout)
		if err != nil || f.LengthForm != Len64 || !bytes.Equal(f.Payload, big) {
			return fmt.Errorf("big echo: %v, %v", f, err)
		}
		return nil
	})
	defer srv.Close()
	ws := dial(t, srv)
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(testTimeout))

	expect := func(typ int, want []byte) {
		t.Helper()
		gotTyp, got, err := ws.ReadMessage()
		if err != nil || gotTyp != typ || !bytes.Equal(got, want) {
			t.Fatalf("ReadMessage = %d %q %v, want %d %q", gotTyp, head(got), err, typ, head(want))
		}
	}
	expect(websocket.TextMessage, []byte("hello"))
	if err := ws.WriteMessage(websocket.BinaryMessage, []byte("from client")); err != nil {
		t.Fatal(err)
	}
	expect(websocket.TextMessage, []byte("fragmented"))
	expect(websocket.BinaryMessage, []byte("tiny"))
	expect(websocket.BinaryMessage, big)
	if err := ws.WriteMessage(websocket.BinaryMessage, big); err != nil {
		t.Fatal(err)
	}
	wait(t, errc)
}

func TestCloseHandshake(t *testing.T) {
	defer goleak.VerifyNone(t)
	t.Run("server initiated", func(t *testing.T) {
		srv, errc := start(t, ServerOptions{}, func(c *Conn) error {
			if err := c.WriteFrame(CloseFrame(1001, "bye")); err != nil {
				return err
			}
			code, _, frames, err := c.ReadUntilClose(testTimeout)
			if err != nil || code != 1001 || !frames[len(frames)-1].Masked {
				return fmt.Errorf("ReadUntilClose = %d %v %v", code, frames, err)
			}
			_, err = c.ReadToEOF(testTimeout)
			return err
		})
		defer srv.Close()
		ws := dial(t, srv)
		ws.SetReadDeadline(time.Now().Add(testTimeout))
		_, _, err := ws.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 1001 || ce.Text != "bye" {
			t.Errorf("ReadMessage err = %v", err)
		}
		ws.Close()
		wait(t, errc)
	})
	t.Run("client initiated", func(t *testing.T) {
		srv, errc := start(t, ServerOptions{}, func(c *Conn) error {
			code, reason, frames, err := c.ReadUntilClose(testTimeout)
			if err != nil || code != 1000 || reason != "done" || len(frames) != 2 {
				return fmt.Errorf("ReadUntilClose = %d %q %v %v", code, reason, frames, err)
			}
			return c.WriteFrame(CloseFrame(code, ""))
		})
		defer srv.Close()
		ws := dial(t, srv)
		defer ws.Close()
		ws.WriteMessage(websocket.TextMessage, []byte("last"))
		ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "done"))
		ws.SetReadDeadline(time.Now().Add(testTimeout))
		if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, 1000) {
			t.Errorf("ReadMessage err = %v", err)
		}
		wait(t, errc)
	})
}

func TestCloseUnblocksScripts(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv, errc := start(t, ServerOptions{}, func(c *Conn) error {
		_, err := c.ReadFrame(0) // blocks until srv.Close
		return err
	})
	ws := dial(t, srv)
	defer ws.Close()
	srv.Close()
	if err := <-errc; err == nil || strings.Contains(err.Error(), "timeout") {
		t.Errorf("blocked ReadFrame returned %v, want a closed-connection error", err)
	}
}

// testTLS returns a server config with a self-signed certificate for
// 127.0.0.1 and a client config that trusts it.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}},
		&tls.Config{RootCAs: pool}
}

func TestTLS(t *testing.T) {
	defer goleak.VerifyNone(t)
	serverTLS, clientTLS := testTLS(t)
	srv, errc := start(t, ServerOptions{TLS: serverTLS}, func(c *Conn) error {
		if _, ok := c.NetConn().(*tls.Conn); !ok {
			return fmt.Errorf("NetConn is %T, want *tls.Conn", c.NetConn())
		}
		if err := c.WriteChunked(Text("over tls").Encode(), 1, 0); err != nil {
			return err
		}
		f, err := c.ReadFrame(testTimeout)
		if err != nil || !f.Masked || string(f.Payload) != "back" {
			return fmt.Errorf("ReadFrame = %v, %v", f, err)
		}
		if err := c.WriteFrame(CloseFrame(1000, "")); err != nil {
			return err
		}
		code, _, _, err := c.ReadUntilClose(testTimeout)
		if err != nil || code != 1000 {
			return fmt.Errorf("ReadUntilClose = %d, %v", code, err)
		}
		_, err = c.ReadToEOF(testTimeout)
		return err
	})
	defer srv.Close()
	if !strings.HasPrefix(srv.URL(), "wss://127.0.0.1:") {
		t.Fatalf("URL() = %q", srv.URL())
	}
	d := websocket.Dialer{HandshakeTimeout: testTimeout, TLSClientConfig: clientTLS}
	ws, _, err := d.Dial(srv.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(testTimeout))
	if _, p, err := ws.ReadMessage(); err != nil || string(p) != "over tls" {
		t.Fatalf("ReadMessage = %q, %v", p, err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte("back")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, 1000) {
		t.Errorf("ReadMessage err = %v, want close 1000", err)
	}
	ws.Close()
	wait(t, errc)

	// A client that does not trust the certificate: no script, an error recorded.
	bad := websocket.Dialer{HandshakeTimeout: testTimeout, TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}
	if ws, _, err := bad.Dial(srv.URL(), nil); err == nil {
		ws.Close()
		t.Fatal("dial with an untrusted certificate succeeded")
	}
	deadline := time.Now().Add(testTimeout)
	for srv.HandshakeErr() == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := srv.HandshakeErr(); err == nil || !strings.Contains(err.Error(), "TLS handshake") {
		t.Errorf("HandshakeErr() = %v, want the TLS handshake's error", err)
	}
}
