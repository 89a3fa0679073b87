//go:build linux

package peers

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const ioTimeout = 30 * time.Second

func dial(t *testing.T, d *websocket.Dialer, url string, protocols ...string) (*websocket.Conn, *http.Response) {
	t.Helper()
	dd := *d
	dd.Subprotocols = protocols
	dd.HandshakeTimeout = ioTimeout
	c, resp, err := dd.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, resp
}

// echo sends one message and checks that the same type and payload come back.
func echo(t *testing.T, c *websocket.Conn, typ int, payload []byte) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(ioTimeout))
	if err := c.WriteMessage(typ, payload); err != nil {
		t.Fatalf("write: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	gotType, got, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if gotType != typ {
		t.Fatalf("echo: message type %d, want %d", gotType, typ)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("echo: payload of %d bytes differs from the %d bytes sent", len(got), len(payload))
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// roundTrip checks text, binary, ping/pong, the subprotocol and the closing
// handshake against an echo server at url.
func roundTrip(t *testing.T, d *websocket.Dialer, url string, bigSize int) {
	t.Helper()

	c, resp := dial(t, d, url, "nope", "superchat", "chat")
	if got := c.Subprotocol(); got != "superchat" {
		t.Errorf("subprotocol %q, want superchat (first offered and supported)", got)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "superchat" {
		t.Errorf("Sec-WebSocket-Protocol %q, want superchat", got)
	}

	echo(t, c, websocket.TextMessage, []byte("hello, wsclient ✓"))
	echo(t, c, websocket.TextMessage, []byte{})
	echo(t, c, websocket.BinaryMessage, []byte{0, 1, 2, 0xff})
	echo(t, c, websocket.BinaryMessage, randomBytes(bigSize))

	// Ping: the pong arrives before the echo of the next message.
	pong := make(chan string, 1)
	c.SetPongHandler(func(data string) error {
		pong <- data
		return nil
	})
	if err := c.WriteControl(websocket.PingMessage, []byte("ping-42"), time.Now().Add(ioTimeout)); err != nil {
		t.Fatalf("ping: %v", err)
	}
	echo(t, c, websocket.TextMessage, []byte("after ping"))
	select {
	case got := <-pong:
		if got != "ping-42" {
			t.Errorf("pong payload %q, want ping-42", got)
		}
	default:
		t.Error("no pong before the echo that followed the ping")
	}

	// Closing handshake: the server answers with the same code.
	msg := websocket.FormatCloseMessage(4001, "bye")
	if err := c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(ioTimeout)); err != nil {
		t.Fatalf("close: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	_, _, err := c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("after close: %v, want a close frame", err)
	}
	if ce.Code != 4001 {
		t.Errorf("close code %d, want 4001 echoed", ce.Code)
	}

	// Another connection with an unsupported protocol gets none.
	c2, _ := dial(t, d, url, "nope")
	if got := c2.Subprotocol(); got != "" {
		t.Errorf("subprotocol %q, want none", got)
	}
	echo(t, c2, websocket.TextMessage, []byte("no protocol"))
}

func TestNodeWS(t *testing.T) {
	t.Parallel()
	p := StartNodeWS(t, NodeOptions{})
	if !strings.HasPrefix(p.URL, "ws://127.0.0.1:") {
		t.Fatalf("URL %q", p.URL)
	}
	roundTrip(t, websocket.DefaultDialer, p.URL, 1<<20)

	// Compression is off unless asked for.
	d := *websocket.DefaultDialer
	d.EnableCompression = true
	_, resp := dial(t, &d, p.URL)
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Errorf("Sec-WebSocket-Extensions %q without Deflate", ext)
	}
}

func TestNodeWSDeflate(t *testing.T) {
	t.Parallel()
	p := StartNodeWS(t, NodeOptions{Deflate: true})
	d := *websocket.DefaultDialer
	d.EnableCompression = true

	c, resp := dial(t, &d, p.URL, "chat")
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
		t.Fatalf("Sec-WebSocket-Extensions %q, want permessage-deflate", ext)
	}
	if got := c.Subprotocol(); got != "chat" {
		t.Errorf("subprotocol %q, want chat", got)
	}
	c.EnableWriteCompression(true)
	echo(t, c, websocket.TextMessage, []byte(strings.Repeat("compress me ", 100_000)))
	echo(t, c, websocket.BinaryMessage, randomBytes(1<<20))

	roundTrip(t, &d, p.URL, 1<<20)
}

func TestNodeWSSubprotocolOption(t *testing.T) {
	t.Parallel()
	p := StartNodeWS(t, NodeOptions{Subprotocols: []string{"v2.example"}})
	c, _ := dial(t, websocket.DefaultDialer, p.URL, "chat", "v2.example")
	if got := c.Subprotocol(); got != "v2.example" {
		t.Errorf("subprotocol %q, want v2.example", got)
	}
}

func TestPythonWebsockets(t *testing.T) {
	t.Parallel()
	p := StartPythonWebsockets(t, PythonOptions{})
	if !strings.HasPrefix(p.URL, "ws://127.0.0.1:") {
		t.Fatalf("URL %q", p.URL)
	}
	roundTrip(t, websocket.DefaultDialer, p.URL, 1<<20)

	// 16 MiB in one message.
	c, _ := dial(t, websocket.DefaultDialer, p.URL)
	echo(t, c, websocket.BinaryMessage, randomBytes(16<<20))
}

func TestPythonWebsocketsDeflate(t *testing.T) {
	t.Parallel()
	p := StartPythonWebsockets(t, PythonOptions{Deflate: true})
	d := *websocket.DefaultDialer
	d.EnableCompression = true
	c, resp := dial(t, &d, p.URL)
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
		t.Fatalf("Sec-WebSocket-Extensions %q, want permessage-deflate", ext)
	}
	c.EnableWriteCompression(true)
	echo(t, c, websocket.TextMessage, []byte(strings.Repeat("compress me ", 100_000)))
}

func TestNginxWSS(t *testing.T) {
	t.Parallel()
	up := StartNodeWS(t, NodeOptions{Deflate: true})
	p := StartNginxWSS(t, up.Addr)
	if !strings.HasPrefix(p.URL, "wss://127.0.0.1:") {
		t.Fatalf("URL %q", p.URL)
	}

	d := *websocket.DefaultDialer
	d.TLSClientConfig = p.TLSConfig()
	roundTrip(t, &d, p.URL, 1<<20)

	// Compression negotiated end to end through the proxy.
	d.EnableCompression = true
	c, resp := dial(t, &d, p.URL)
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
		t.Errorf("through nginx: Sec-WebSocket-Extensions %q, want permessage-deflate", ext)
	}
	echo(t, c, websocket.BinaryMessage, randomBytes(4<<20))

	// The CA PEM alone is enough to verify, with "localhost" as well.
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(p.CAPEM) {
		t.Fatal("CAPEM holds no certificate")
	}
	d2 := *websocket.DefaultDialer
	d2.TLSClientConfig = &tls.Config{RootCAs: pool}
	c2, _ := dial(t, &d2, strings.Replace(p.URL, "127.0.0.1", "localhost", 1))
	echo(t, c2, websocket.TextMessage, []byte("via localhost"))

	// Without the CA the certificate is rejected.
	d3 := *websocket.DefaultDialer
	d3.TLSClientConfig = &tls.Config{RootCAs: x509.NewCertPool()}
	d3.HandshakeTimeout = ioTimeout
	if c3, _, err := d3.Dial(p.URL, nil); err == nil {
		c3.Close()
		t.Error("dial without the CA succeeded")
	} else if !errors.As(err, new(x509.UnknownAuthorityError)) {
		t.Errorf("dial without the CA: %v, want x509.UnknownAuthorityError", err)
	}
}

func TestNginxWSSPython(t *testing.T) {
	t.Parallel()
	up := StartPythonWebsockets(t, PythonOptions{})
	p := StartNginxWSS(t, up.URL) // a ws:// URL is accepted too
	d := *websocket.DefaultDialer
	d.TLSClientConfig = p.TLSConfig()
	roundTrip(t, &d, p.URL, 1<<20)
}

func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

func TestStop(t *testing.T) {
	t.Parallel()
	node := StartNodeWS(t, NodeOptions{})
	py := StartPythonWebsockets(t, PythonOptions{})
	nginx := StartNginxWSS(t, node.Addr)
	for _, p := range []*Peer{nginx, node, py} {
		if !alive(p.PID) {
			t.Fatalf("%v: not running", p)
		}
		p.Stop()
		p.Stop() // idempotent
		if alive(p.PID) {
			t.Errorf("%v: still running after Stop", p)
		}
		if _, _, err := websocket.DefaultDialer.Dial(p.URL, nil); err == nil {
			t.Errorf("%v: still accepting after Stop", p)
		}
		select {
		case <-p.proc.done:
		default:
			t.Errorf("%v: not reaped after Stop", p)
		}
	}
}

func TestNormalizeUpstream(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8080":        "127.0.0.1:8080",
		"ws://127.0.0.1:9000/":  "127.0.0.1:9000",
		"http://localhost:1234": "localhost:1234",
		"[::1]:80":              "[::1]:80",
	} {
		if got, err := normalizeUpstream(in); err != nil || got != want {
			t.Errorf("normalizeUpstream(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "127.0.0.1", "wss://127.0.0.1:1/", ":80"} {
		if got, err := normalizeUpstream(in); err == nil {
			t.Errorf("normalizeUpstream(%q) = %q, want an error", in, got)
		}
	}
}

func TestListenWriter(t *testing.T) {
	lw := newListenWriter(&outputBuffer{})
	for _, chunk := range []string{"noise\nLISTEN", "ING 4", "321\nLISTENING 1\n"} {
		lw.Write([]byte(chunk))
	}
	select {
	case port := <-lw.port:
		if port != 4321 {
			t.Errorf("port %d, want 4321", port)
		}
	default:
		t.Fatal("no port")
	}
	if got := lw.out.String(); got != "noise\nLISTENING 4321\nLISTENING 1\n" {
		t.Errorf("output %q", got)
	}
}

// fakeTB records how unavailable reports a missing peer.
type fakeTB struct {
	testing.TB
	skipped, fatal string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Skipf(format string, a ...any)  { f.skipped = fmt.Sprintf(format, a...) }
func (f *fakeTB) Fatalf(format string, a ...any) { f.fatal = fmt.Sprintf(format, a...) }

func TestUnavailable(t *testing.T) {
	for _, ci := range []string{"", "false", "true"} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			f := &fakeTB{TB: t}
			unavailable(f, "frob %s missing", "x")
			if ci == "true" {
				if f.fatal == "" || f.skipped != "" || !strings.Contains(f.fatal, "frob x missing") {
					t.Errorf("CI=true: fatal %q, skipped %q", f.fatal, f.skipped)
				}
			} else if f.skipped == "" || f.fatal != "" || !strings.Contains(f.skipped, "frob x missing") {
				t.Errorf("CI=%q: fatal %q, skipped %q", ci, f.fatal, f.skipped)
			}
		})
	}
}
