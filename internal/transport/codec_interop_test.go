package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

// ctServer is a gorilla server on loopback running handle on each connection.
func ctServer(t testing.TB, compress bool, handle func(*websocket.Conn)) string {
	var wg sync.WaitGroup
	up := websocket.Upgrader{EnableCompression: compress, ReadBufferSize: 4096, WriteBufferSize: 4096}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		wg.Add(1)
		defer wg.Done()
		defer ws.Close()
		handle(ws)
	}))
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close(); wg.Wait() })
	return srv.Listener.Addr().String()
}

// ctHandshake is a minimal client upgrade (the dial code is tested on its own).
func ctHandshake(t testing.TB, addr string, compress bool) *Conn {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ext := ""
	if compress {
		ext = "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"
	}
	fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n", addr, ext)
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	got := strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")
	if got != compress {
		t.Fatalf("compression negotiated %v", got)
	}
	resp.Body, resp.Request = http.NoBody, nil
	c := NewConn(nc, br, ConnOptions{Compression: compress, Response: resp})
	t.Cleanup(c.Abort)
	return c
}

func ctEcho(ws *websocket.Conn) {
	ws.EnableWriteCompression(true)
	for {
		mt, p, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if err := ws.WriteMessage(mt, p); err != nil {
			return
		}
	}
}

// Messages of every framing size, both ways, through gorilla's echo.
func TestInteropEcho(t *testing.T) {
	t.Parallel()
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compression=%v", compress), func(t *testing.T) {
			c := ctHandshake(t, ctServer(t, compress, ctEcho), compress)
			if c.Compressed() != compress {
				t.Fatal("Compressed()")
			}
			for _, n := range []int{0, 1, 125, 126, 65535, 65536, 65537, 300000} {
				for _, op := range []Opcode{OpText, OpBinary} {
					data := bytes.Repeat([]byte("abcdefghé"), n/10+1)[:n]
					if op == OpText {
						data = []byte(strings.ToValidUTF8(string(data), "x"))
					}
					if err := c.WriteMessage(context.Background(), op, data); err != nil {
						t.Fatal(err)
					}
					m, err := c.ReadMessage()
					if err != nil || m.Op != op || !bytes.Equal(m.Data, data) {
						t.Fatalf("n %d op %v: got %v %d bytes %v", n, op, m.Op, len(m.Data), err)
					}
				}
			}
		})
	}
}

// gorilla's pings are returned and answered; its close is echoed; our close
// reaches gorilla with its code and reason.
func TestInteropControl(t *testing.T) {
	t.Parallel()
	got := make(chan string, 4)
	addr := ctServer(t, false, func(ws *websocket.Conn) {
		ws.SetPongHandler(func(s string) error { got <- "pong " + s; return nil })
		_ = ws.WriteControl(websocket.PingMessage, []byte("hi"), noDeadline)
		_, _, err := ws.ReadMessage() // the pong comes through the handler; then our close
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			got <- fmt.Sprintf("close %d %s", ce.Code, ce.Text)
		}
	})
	c := ctHandshake(t, addr, false)
	m, err := c.ReadMessage()
	if err != nil || m.Op != OpPing || string(m.Data) != "hi" {
		t.Fatalf("%v %q %v", m.Op, m.Data, err)
	}
	if s := <-got; s != "pong hi" {
		t.Fatal(s)
	}
	if err := c.Close(4000, "done"); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "close 4000 done" {
		t.Fatal(s)
	}
	// gorilla echoed the close: the handshake completes.
	_, err = c.ReadMessage()
	if ce := asClose(t, err); ce.Local || ce.Code != 4000 {
		t.Fatalf("got %+v", ce)
	}
}

func TestInteropPeerClose(t *testing.T) {
	t.Parallel()
	echoed := make(chan int, 1)
	addr := ctServer(t, false, func(ws *websocket.Conn) {
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1001, "away"), noDeadline)
		_, _, err := ws.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			echoed <- ce.Code
		}
		close(echoed)
	})
	c := ctHandshake(t, addr, false)
	_, err := c.ReadMessage()
	if ce := asClose(t, err); ce.Local || ce.Code != 1001 || ce.Reason != "away" {
		t.Fatalf("got %+v", ce)
	}
	if code := <-echoed; code != 1001 {
		t.Fatalf("echo %d", code)
	}
}
