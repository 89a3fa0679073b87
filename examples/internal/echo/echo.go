// Package echo is the echo server the examples share: a wstest.Server
// (github.com/ff42ae21/wsclient/wstest) that sends every message back as it
// came, text or binary, and accepts permessage-deflate. On top of wstest it
// adds only what the examples show: CloseOn (a close frame from the server
// at a known point of a conversation), Drop (a crash), and Listen on a
// given address for a server that others dial.
//
// It keeps no history (wstest's Options.Forget): what it echoed, the
// handshake requests and the ended connections are not kept, so it can run
// for days.
package echo

import (
	"context"
	"io"
	"net"
	"sync"

	"github.com/ff42ae21/wsclient/wstest"
)

// Server is an echo server on a loopback port. Its methods are safe for
// concurrent use.
type Server struct {
	ws    *wstest.Server
	relay net.Listener // Listen's address, nil for the wstest server's own
	url   string
	wg    sync.WaitGroup // the goroutines Close waits for

	mu      sync.Mutex
	closeOn *closeOn              // the message to answer with a close frame, nil for none
	relayed map[net.Conn]struct{} // the relay's sockets, both sides
	closed  bool
}

// closeOn is what CloseOn arranged.
type closeOn struct {
	msg    string
	code   int
	reason string
}

// Start starts an echo server on 127.0.0.1, on a free port. The caller
// must Close it.
func Start() (*Server, error) {
	s := &Server{relayed: map[net.Conn]struct{}{}}
	// The answer is written on the connection's reader, before the next
	// frame is read: every echo goes out before the client's close is
	// answered, as in a server's read-then-write loop.
	ws, err := wstest.NewServer(&wstest.Options{Compression: true, Forget: true, OnMessage: s.answer})
	if err != nil {
		return nil, err
	}
	s.ws, s.url = ws, ws.URL()
	return s, nil
}

// Listen starts an echo server that listens on addr ("127.0.0.1:8080"),
// for clients in other processes. A wstest server always takes a free port
// of its own, so Listen relays every connection made to addr to it. The
// caller must Close it.
func Listen(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s, err := Start()
	if err != nil {
		ln.Close()
		return nil, err
	}
	s.relay, s.url = ln, "ws://"+ln.Addr().String()+"/"
	s.wg.Add(1)
	go s.serveRelay()
	return s, nil
}

// URL is the address clients dial: "ws://127.0.0.1:port/". It stays the
// same across Down and Up.
func (s *Server) URL() string { return s.url }

// Addr is the "host:port" of URL.
func (s *Server) Addr() string { return s.url[len("ws://") : len(s.url)-1] }

// answer sends m back on c, or the close CloseOn arranged for it.
func (s *Server) answer(c *wstest.Conn, m wstest.Message) {
	if code, reason, ok := s.takeCloseOn(m); ok {
		// A close started by the server: the client answers, and the
		// connection ends.
		_ = c.Close(code, reason)
		return
	}
	// An error means that the connection has ended: nothing to answer.
	if m.Binary {
		_ = c.SendBinary(m.Data)
	} else {
		_ = c.SendText(string(m.Data))
	}
}

// ended reports whether c has ended. WaitClosed with a ctx that is already
// done does not wait; a code of 0 means that c has not ended.
func ended(c *wstest.Conn) bool {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	code, _, _ := c.WaitClosed(ctx)
	return code != 0
}

// CloseOn makes the server answer the next message equal to msg, on any
// connection, with a close frame (code, reason) instead of its echo: a close
// started by the server at a known point of a conversation.
func (s *Server) CloseOn(msg string, code int, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeOn = &closeOn{msg: msg, code: code, reason: reason}
}

// takeCloseOn reports whether m is the message CloseOn is waiting for, and
// if so clears it (it closes once) and returns the close to send.
func (s *Server) takeCloseOn(m wstest.Message) (code int, reason string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.closeOn
	if c == nil || m.Binary || c.msg != string(m.Data) {
		return 0, "", false
	}
	s.closeOn = nil
	return c.code, c.reason, true
}

// Drop cuts every open connection without a close frame, as a crashing
// server would, and returns how many it cut. The server goes on accepting.
func (s *Server) Drop() int {
	n := 0
	for _, c := range s.ws.Conns() {
		if !ended(c) {
			c.Drop()
			n++
		}
	}
	return n
}

// Down makes the server look dead: it drops every connection and refuses
// new ones until Up, on the same address.
func (s *Server) Down() { s.ws.Down() }

// Up accepts connections again after Down.
func (s *Server) Up() { s.ws.Up() }

// Close stops the server and its connections (no close frame), and waits
// for every goroutine it started.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for nc := range s.relayed {
		nc.Close()
	}
	s.mu.Unlock()
	if s.relay != nil {
		s.relay.Close()
	}
	s.ws.Close()
	s.wg.Wait()
}

// serveRelay relays every connection made to Listen's address.
func (s *Server) serveRelay() {
	defer s.wg.Done()
	for {
		nc, err := s.relay.Accept()
		if err != nil {
			return // closed
		}
		s.wg.Add(1)
		go s.forward(nc)
	}
}

// forward copies between nc and a connection to the wstest server, both
// ways, until both ends are closed.
func (s *Server) forward(nc net.Conn) {
	defer s.wg.Done()
	up, err := net.Dial("tcp", s.ws.Addr())
	if err != nil {
		nc.Close()
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		up.Close()
		return
	}
	s.relayed[nc], s.relayed[up] = struct{}{}, struct{}{}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pipe(up, nc)
	}()
	pipe(nc, up)
	<-done
	s.mu.Lock()
	delete(s.relayed, nc)
	delete(s.relayed, up)
	s.mu.Unlock()
	nc.Close()
	up.Close()
}

// pipe copies src to dst, then passes the end of src on: the end of the
// stream as the end of dst's (a FIN), a failure by closing both.
func pipe(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if tcp, ok := dst.(*net.TCPConn); ok && err == nil && tcp.CloseWrite() == nil {
		return
	}
	dst.Close()
	src.Close()
}
