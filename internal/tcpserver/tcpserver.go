// Package tcpserver is a TCP server on 127.0.0.1 for tests that runs a
// script on every connection it accepts: a peer that says nothing, answers
// a handshake by hand, or hangs up at a chosen moment.
package tcpserver

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Server is a running server. Its methods are safe for concurrent use.
type Server struct {
	ln       net.Listener
	script   func(net.Conn)
	accepted atomic.Int32
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	closed   bool
}

// Start listens on 127.0.0.1 and runs script for every connection, each in
// its own goroutine, closing the connection when script returns. The server
// is closed at the end of t (Close).
func Start(t testing.TB, script func(c net.Conn)) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("tcpserver: %v", err)
	}
	s := &Server{ln: ln, script: script, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
	return s
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer s.forget(c)
			s.script(c)
		}()
	}
}

func (s *Server) forget(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Addr is the listening address, 127.0.0.1:PORT.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Accepted is how many connections the server has accepted so far.
func (s *Server) Accepted() int { return int(s.accepted.Load()) }

// Close stops listening, closes every connection (which should end the
// scripts) and waits for every script to return. It is safe to call more
// than once.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
