package wsprom

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// echoServer is a loopback WebSocket echo server the tests steer: it can
// refuse handshakes, leave connections silent, and hand each connection to
// the test, which closes or drops it.
type echoServer struct {
	url      string
	reject   atomic.Int32 // handshakes still to answer with 503
	silent   atomic.Int32 // connections still to leave unread (no echo, no pong)
	upgrades atomic.Int64
	conns    chan *serverConn // every connection, as it opens
	quit     chan struct{}
	// What the server received and sent, by type (0 text, 1 binary).
	rxMsgs, rxBytes, txMsgs, txBytes [2]atomic.Int64
}

type serverConn struct{ ws *websocket.Conn }

// closeWith starts a close handshake from the server's side.
func (c *serverConn) closeWith(code int) error {
	return c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
}

// drop cuts the socket without a close frame, as a crashing server would.
func (c *serverConn) drop() { c.ws.NetConn().Close() }

func newEchoServer(t *testing.T) *echoServer {
	t.Helper()
	s := &echoServer{conns: make(chan *serverConn, 64), quit: make(chan struct{})}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.reject.Add(-1) >= 0 {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		s.upgrades.Add(1)
		s.conns <- &serverConn{ws}
		if s.silent.Add(-1) >= 0 {
			<-s.quit
			return
		}
		for {
			mt, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			i := mt - websocket.TextMessage
			s.rxMsgs[i].Add(1)
			s.rxBytes[i].Add(int64(len(data)))
			if err := ws.WriteMessage(mt, data); err != nil {
				return
			}
			s.txMsgs[i].Add(1)
			s.txBytes[i].Add(int64(len(data)))
		}
	}))
	t.Cleanup(func() { close(s.quit); ts.Close() })
	if !strings.HasPrefix(ts.URL, "http://127.0.0.1:") {
		t.Fatalf("test server not on 127.0.0.1: %s", ts.URL)
	}
	s.url = "ws" + strings.TrimPrefix(ts.URL, "http")
	return s
}

// next waits for the next connection.
func (s *echoServer) next(t *testing.T) *serverConn {
	t.Helper()
	select {
	case c := <-s.conns:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no connection within 10s")
		return nil
	}
}
