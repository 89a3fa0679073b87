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

// Server is an echo server on a loopback port. Drop closes the live connections
// (to show reconnects); Close stops it.
type Server struct {
	URL string

	srv  *http.Server
	ln   net.Listener
	mu   sync.Mutex
	live map[*websocket.Conn]bool
	wg   sync.WaitGroup
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
		if err := ws.WriteMessage(mt, data); err != nil {
			return
		}
	}
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
