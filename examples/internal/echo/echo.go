// Package echo is the small echo server the examples share.
package echo

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Server is an echo server on a loopback port. Drop cuts the live connections
// and CloseOn closes one with a close frame (to show reconnects); Close stops it.
type Server struct {
	URL string

	srv     *http.Server
	ln      net.Listener
	mu      sync.Mutex
	live    map[*websocket.Conn]bool
	closeOn *closeOn // the message to answer with a close frame, nil for none
	wg      sync.WaitGroup
}

// closeOn is what CloseOn arranged.
type closeOn struct {
	msg    string
	code   int
	reason string
}

var upgrader = websocket.Upgrader{
	CheckOrigin:       func(*http.Request) bool { return true },
	EnableCompression: true,
}

// Start listens on addr ("127.0.0.1:0" for any free port) and serves in the background.
func Start(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{URL: "ws://" + ln.Addr().String() + "/", ln: ln, live: map[*websocket.Conn]bool{}}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Printf("echo server: %v", err)
		}
	}()
	return s, nil
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.live[ws] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.live, ws)
		s.mu.Unlock()
		ws.Close()
	}()
	for {
		mt, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if code, reason, ok := s.takeCloseOn(data); ok {
			// A server-side close handshake: the client answers, and the next
			// read returns its close frame.
			msg := websocket.FormatCloseMessage(code, reason)
			if err := ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second)); err != nil {
				return
			}
			continue
		}
		if err := ws.WriteMessage(mt, data); err != nil {
			return
		}
	}
}

// CloseOn makes the server answer the next message equal to msg, on any
// connection, with a close frame (code, reason) instead of its echo: a close
// started by the server at a known point of a conversation.
func (s *Server) CloseOn(msg string, code int, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeOn = &closeOn{msg: msg, code: code, reason: reason}
}

// takeCloseOn reports whether data is the message CloseOn is waiting for, and
// if so clears it (it closes once) and returns the close to send.
func (s *Server) takeCloseOn(data []byte) (code int, reason string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.closeOn
	if c == nil || c.msg != string(data) {
		return 0, "", false
	}
	s.closeOn = nil
	return c.code, c.reason, true
}

// Drop cuts every live connection without a close frame, as a crashing server would.
func (s *Server) Drop() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ws := range s.live {
		ws.NetConn().Close()
	}
	return len(s.live)
}

// Close stops the server and its connections.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.srv.Shutdown(ctx)
	s.Drop()
	s.wg.Wait()
}
