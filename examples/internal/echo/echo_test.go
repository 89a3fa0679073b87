package echo

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/internal/transport"
	"go.uber.org/goleak"
)

func dial(t *testing.T, rawURL string, compression bool) *transport.Conn {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := transport.Dial(ctx, &transport.Config{URL: u, Compression: compression})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Abort)
	return c
}

// roundTrip sends op data on c and expects it back.
func roundTrip(t *testing.T, c *transport.Conn, op transport.Opcode, data string) {
	t.Helper()
	if err := c.WriteMessage(t.Context(), op, []byte(data)); err != nil {
		t.Fatal(err)
	}
	m, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if m.Op != op || string(m.Data) != data {
		t.Fatalf("got %v %q, want %v %q", m.Op, m.Data, op, data)
	}
}

// readClose reads until c ends and returns how.
func readClose(t *testing.T, c *transport.Conn) *transport.CloseError {
	t.Helper()
	for {
		_, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *transport.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("error %v, want a CloseError", err)
		}
		return ce
	}
}

// The server echoes text and binary, compressed or not; CloseOn answers its
// message with a close frame, once; Drop cuts the open connections; Close
// leaves no goroutine. Through Listen's relay too.
func TestServer(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, listen := range []bool{false, true} {
		name := "Start"
		if listen {
			name = "Listen"
		}
		t.Run(name, func(t *testing.T) {
			start := Start
			if listen {
				start = func() (*Server, error) { return Listen("127.0.0.1:0") }
			}
			srv, err := start()
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()

			var open []*transport.Conn
			for _, compression := range []bool{false, true} {
				c := dial(t, srv.URL(), compression)
				open = append(open, c)
				if c.Compressed() != compression {
					t.Fatalf("compression %v negotiated, want %v", c.Compressed(), compression)
				}
				roundTrip(t, c, transport.OpText, "hello")
				roundTrip(t, c, transport.OpBinary, "\x00\xff")
			}

			srv.CloseOn("bye", transport.CloseGoingAway, "restart")
			c := dial(t, srv.URL(), false)
			roundTrip(t, c, transport.OpBinary, "bye") // binary: not the text CloseOn waits for
			if err := c.WriteMessage(t.Context(), transport.OpText, []byte("bye")); err != nil {
				t.Fatal(err)
			}
			if ce := readClose(t, c); ce.Local || ce.Code != transport.CloseGoingAway || ce.Reason != "restart" {
				t.Fatalf("got %+v, want the server's close 1001 \"restart\"", ce)
			}
			if err := srv.ws.WaitOpen(t.Context(), len(open)); err != nil { // the close handshake is over
				t.Fatal(err)
			}
			c = dial(t, srv.URL(), false)
			roundTrip(t, c, transport.OpText, "bye") // it closed once

			c2 := dial(t, srv.URL(), false)
			roundTrip(t, c2, transport.OpText, "open")
			open = append(open, c, c2)
			if n := srv.Drop(); n != len(open) {
				t.Errorf("Drop cut %d connections, want %d", n, len(open))
			}
			for _, c := range open {
				if ce := readClose(t, c); ce.Code != transport.CloseAbnormal {
					t.Fatalf("after Drop: %+v, want 1006", ce)
				}
			}
			roundTrip(t, dial(t, srv.URL(), false), transport.OpText, "after the drop")
		})
	}
}

// Down drops every connection and refuses new ones; Up accepts them again
// on the same address.
func TestDownUp(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := dial(t, srv.URL(), false)
	roundTrip(t, c, transport.OpText, "before")
	srv.Down()
	if ce := readClose(t, c); ce.Code != transport.CloseAbnormal {
		t.Fatalf("after Down: %+v, want 1006", ce)
	}
	u, _ := url.Parse(srv.URL())
	if c, err := transport.Dial(t.Context(), &transport.Config{URL: u, HandshakeTimeout: 5 * time.Second}); err == nil {
		c.Abort()
		t.Fatal("a dial succeeded while the server was down")
	}
	srv.Up()
	roundTrip(t, dial(t, srv.URL(), false), transport.OpText, "after")
}

// TestEchoesGoOutBeforeTheCloseAnswer: a client that sends and closes at
// once (wsc with its stdin at an end) gets every echo before the server's
// answer to its close: the server answers each message before it reads the
// next frame.
func TestEchoesGoOutBeforeTheCloseAnswer(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for round := range 20 {
		c := dial(t, srv.URL(), false)
		const n = 30
		for i := range n {
			if err := c.WriteMessage(t.Context(), transport.OpText, []byte(fmt.Sprint("m", i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Close(transport.CloseNormal, ""); err != nil {
			t.Fatal(err)
		}
		got := 0
		for {
			m, err := c.ReadMessage()
			if err != nil {
				var ce *transport.CloseError
				if !errors.As(err, &ce) || ce.Code != transport.CloseNormal {
					t.Fatalf("round %d: ended with %v", round, err)
				}
				break
			}
			if string(m.Data) != fmt.Sprint("m", got) {
				t.Fatalf("round %d: echo %d is %q", round, got, m.Data)
			}
			got++
		}
		if got != n {
			t.Fatalf("round %d: %d echoes before the close, want %d", round, got, n)
		}
	}
}
