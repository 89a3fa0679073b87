package wstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/internal/faultproxy"
	"github.com/ff42ae21/wsclient/internal/goid"
)

// DefaultWaitTimeout bounds every wait of a Server whose Options.WaitTimeout
// is zero.
const DefaultWaitTimeout = 5 * time.Second

// Options shape a Server. The zero value (or a nil *Options) is a ws server
// that upgrades every valid handshake, negotiates no subprotocol and no
// extension, and lets the test drive each connection.
type Options struct {
	// TLS serves wss with a certificate for 127.0.0.1 and localhost, signed
	// by a CA generated for this server (see ClientTLSConfig, CertPool,
	// CertFiles).
	TLS bool
	// ClientCert requires a client certificate signed by a second generated
	// CA (mutual TLS; see ClientCertificate). It implies TLS.
	ClientCert bool
	// Subprotocols the server accepts: it answers the first one the client
	// offers that is in this list, and none when none matches.
	Subprotocols []string
	// Compression accepts permessage-deflate when the client offers it,
	// answering server_no_context_takeover and client_no_context_takeover.
	Compression bool
	// Echo makes every connection send each message it receives back (see
	// Conn.SetEcho). The messages are still recorded.
	Echo bool
	// OnMessage, when set, gets every data message on the connection's
	// reader goroutine (after its echo, with Echo), before the next frame is
	// read: a server loop that answers each message in order, so what it
	// sends goes out before the client's close frame is read and answered.
	// It may send, close or drop c; while it runs, nothing more is read
	// from c. Its messages are recorded as usual, except with Forget: then
	// they are not kept (ReadMessage does not see them).
	OnMessage func(c *Conn, m Message)
	// Check, when set, sees every handshake request that no Enqueue'd answer
	// took; a non-nil Response is the answer (401 for a missing token, say),
	// nil upgrades as usual. It runs on the connection's goroutine.
	Check func(r *http.Request) *Response
	// ReadLimit is the largest message a connection accepts; a larger one is
	// answered with close 1009. Default 16 MiB.
	ReadLimit int64
	// WaitTimeout bounds every wait (NextConn, ReadMessage, WaitOpen, ...)
	// and every write, whatever the ctx says. Default DefaultWaitTimeout.
	WaitTimeout time.Duration
	// Forget makes a server that can run for days (an echo server for
	// trying clients): it keeps no history. Requests and Frames record
	// nothing (Frames holds at most the last frame), a message is kept only
	// until ReadMessage returns it (Received lists the unread ones), and a
	// connection leaves Conns once it has ended (NextConn never returns one
	// that ended before it was taken). The Stats count as always.
	Forget bool
}

// Response is a scripted answer to one handshake request (Enqueue,
// Options.Check). Status 0 or 101 upgrades the connection; any other status
// is answered with Header and Body, and the connection is closed.
type Response struct {
	Status int
	// Header is added to the answer: Retry-After, Location, WWW-Authenticate.
	// On an upgrade, a Sec-WebSocket-Protocol or Sec-WebSocket-Extensions
	// here replaces the negotiated one, to test a client against an answer it
	// did not ask for.
	Header http.Header
	Body   string
	// Delay waits this long before answering: a slow server.
	Delay time.Duration
	// Stall reads the request and never answers (or answers only Raw's
	// bytes): the socket stays open until the client gives up or the server
	// closes.
	Stall bool
	// Drop upgrades the connection and closes the socket at once (FIN): the
	// client sees an open connection lost immediately. It is not handed to
	// NextConn.
	Drop bool
	// Raw, when set, writes the whole answer itself instead of an HTTP
	// response, to test a client against a broken server: a status line or
	// a header cut in the middle, a malformed header line, a 101 without
	// Upgrade or with a wrong Sec-WebSocket-Accept (see AcceptKey), another
	// protocol's greeting, garbage, a header line that never ends, nothing
	// at all. It gets the request (for its Sec-WebSocket-Key) and writes
	// anything to w; Status, Header, Body and Drop are ignored, Delay waits
	// before it. Each Write goes to the socket at once (through TLS on
	// wss), bounded by Options.WaitTimeout; writes fail once the client has
	// hung up, or on Down or Close, and Raw must then return. When it
	// returns the server hangs up (FIN, after a TLS close_notify on wss),
	// or with Stall keeps the socket open, reading, until the client gives
	// up or the server closes. The connection is never upgraded. Raw runs
	// on the connection's goroutine.
	Raw func(r *http.Request, w io.Writer)
}

// Stats are a Server's counters; Wait waits for a condition on them.
type Stats struct {
	// Requests counts the handshake requests read, answered or not.
	Requests int
	// Upgraded counts the connections upgraded and handed to the test
	// (Conns), Open those not ended. A Response.Drop answer, or an upgrade
	// that Down cut short, is in neither.
	Upgraded, Open int
	// Refused counts the TCP connections refused while the server was Down.
	Refused int
}

// String lists the counters, for test failure messages.
func (st Stats) String() string {
	return fmt.Sprintf("%d handshake requests, %d upgraded, %d open, %d refused",
		st.Requests, st.Upgraded, st.Open, st.Refused)
}

// ErrServerClosed is the error of the methods of a closed Server and of the
// waits it interrupts.
var ErrServerClosed = errors.New("wstest: server closed")

// Server is a WebSocket server on 127.0.0.1 for tests, behind a proxy that
// injects network faults (Network). Its methods are safe for concurrent use.
type Server struct {
	opts    Options
	timeout time.Duration
	ln      net.Listener // the server itself; clients dial the proxy
	px      *faultproxy.Proxy
	pki     *pki // nil for ws
	net     *Network

	wg        sync.WaitGroup
	closing   chan struct{}
	closeOnce sync.Once

	// mu guards the rest, and the state of every Conn.
	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change
	st       Stats
	queue    []Response
	requests []*http.Request
	conns    []*Conn
	taken    int                   // conns handed out by NextConn
	sockets  map[net.Conn]struct{} // accepted sockets not yet upgraded
	down     bool
	upTimer  *time.Timer
	inUser   map[uint64]int // goroutines inside OnMessage, Check or Raw
	tb       testing.TB     // Start's, to report a Close that cannot finish
}

// user runs fn, a call of the test's code (OnMessage, Check, Raw), marking
// its goroutine: a Close or Drop from inside it must not wait for it.
func (s *Server) user(fn func()) {
	g := goid.ID()
	s.mu.Lock()
	s.inUser[g]++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.inUser[g]--; s.inUser[g] == 0 {
			delete(s.inUser, g)
		}
		s.mu.Unlock()
	}()
	fn()
}

// fromUser reports whether the caller is inside OnMessage, Check or Raw.
func (s *Server) fromUser() bool {
	g := goid.ID()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inUser[g] > 0
}

// Start starts a Server (see NewServer) and closes it in t.Cleanup. It fails
// the test if the server cannot start.
func Start(t testing.TB, opts *Options) *Server {
	t.Helper()
	s, err := NewServer(opts)
	if err != nil {
		t.Fatalf("wstest: %v", err)
	}
	s.tb = t
	t.Cleanup(s.Close)
	return s
}

// NewServer starts a Server on 127.0.0.1 on a free port, for code without a
// testing.TB (examples, TestMain). The caller must Close it. opts is copied;
// nil means defaults.
func NewServer(opts *Options) (*Server, error) {
	s := &Server{closing: make(chan struct{}), changed: make(chan struct{}), sockets: map[net.Conn]struct{}{}, inUser: map[uint64]int{}}
	if opts != nil {
		s.opts = *opts
		s.opts.Subprotocols = append([]string(nil), opts.Subprotocols...)
	}
	if s.opts.ClientCert {
		s.opts.TLS = true
	}
	if s.opts.ReadLimit <= 0 {
		s.opts.ReadLimit = 16 << 20
	}
	s.timeout = s.opts.WaitTimeout
	if s.timeout <= 0 {
		s.timeout = DefaultWaitTimeout
	}
	if s.opts.TLS {
		p, err := newPKI(s.opts.ClientCert)
		if err != nil {
			return nil, fmt.Errorf("generating certificates: %w", err)
		}
		s.pki = p
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	px, err := faultproxy.New(ln.Addr().String())
	if err != nil {
		ln.Close()
		return nil, err
	}
	px.OnRefused(func() { s.update(func() { s.st.Refused++ }) })
	s.ln, s.px, s.net = ln, px, &Network{px: px}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// URL is the address clients dial: "ws://127.0.0.1:port/" or wss://, the
// port of the fault proxy in front of the server. It stays the same across
// Restart.
func (s *Server) URL() string {
	if s.pki != nil {
		return "wss://" + s.Addr() + "/"
	}
	return "ws://" + s.Addr() + "/"
}

// Addr is the "127.0.0.1:port" of URL.
func (s *Server) Addr() string { return s.px.Addr() }

// Network is the fault proxy between the clients and the server.
func (s *Server) Network() *Network { return s.net }

// Close drops every connection (no close frame), stops the server and its
// proxy and waits for every goroutine they started. It may be called many
// times; each call waits. Called from inside OnMessage, Check or Raw it does
// not wait (the server's goroutines end once the callback returns). A
// callback that does not return within Options.WaitTimeout (plus a second)
// after Close is reported (a test error with Start, a line on stderr with
// NewServer), and Close returns, leaving it running.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.px.Close()
		s.ln.Close()
		s.mu.Lock()
		if s.upTimer != nil {
			s.upTimer.Stop()
		}
		s.dropAllLocked()
		s.bumpLocked()
		s.mu.Unlock()
	})
	if s.fromUser() {
		return
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	limit := s.timeout + time.Second
	select {
	case <-done:
	case <-time.After(limit):
		msg := fmt.Sprintf("wstest: Close: a callback (OnMessage, Check or Response.Raw) has not returned %v after Close; its goroutine is left running", limit)
		if s.tb != nil {
			s.tb.Error(msg)
		} else {
			fmt.Fprintln(os.Stderr, msg)
		}
	}
}

// Enqueue adds answers for the next handshake requests, one each, in order;
// the requests after them are upgraded (or answered by Options.Check).
func (s *Server) Enqueue(answers ...Response) {
	s.update(func() { s.queue = append(s.queue, answers...) })
}

// Requests returns every handshake request read so far, in order, rejected
// ones too (URL, Header, RemoteAddr; no body); none with Options.Forget.
func (s *Server) Requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.requests...)
}

// Conns returns every connection upgraded so far, in order, ended ones too
// (with Options.Forget, the open ones).
func (s *Server) Conns() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Conn(nil), s.conns...)
}

// forgetLocked drops an ended connection from conns (Options.Forget).
func (s *Server) forgetLocked(c *Conn) {
	for i, x := range s.conns {
		if x == c {
			s.conns = slices.Delete(s.conns, i, i+1)
			if i < s.taken {
				s.taken--
			}
			return
		}
	}
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// NextConn returns the next upgraded connection that NextConn has not
// returned yet (the first call returns the first connection), waiting for
// it at most until ctx ends or Options.WaitTimeout.
func (s *Server) NextConn(ctx context.Context) (*Conn, error) {
	var c *Conn
	err := s.wait(ctx, func() bool {
		if s.taken < len(s.conns) {
			c = s.conns[s.taken]
			s.taken++
			return true
		}
		return false
	})
	if err != nil {
		return nil, fmt.Errorf("wstest: no new connection: %w (%v)", err, s.Stats())
	}
	return c, nil
}

// Wait waits until cond returns true, at most until ctx ends or
// Options.WaitTimeout. cond gets the server's Stats; it is called again after
// every change on the server or its connections (a request, a connection,
// a message, a ping, an end), so it may also look at a Conn (Pings,
// Received).
func (s *Server) Wait(ctx context.Context, cond func(Stats) bool) error {
	if err := s.waitUnlocked(ctx, func() bool { return cond(s.Stats()) }); err != nil {
		return fmt.Errorf("wstest: condition not met: %w (%v)", err, s.Stats())
	}
	return nil
}

// WaitOpen waits until exactly n connections are open, like Wait.
func (s *Server) WaitOpen(ctx context.Context, n int) error {
	if err := s.wait(ctx, func() bool { return s.st.Open == n }); err != nil {
		return fmt.Errorf("wstest: waiting for %d open connections: %w (%v)", n, err, s.Stats())
	}
	return nil
}

// Down makes the server look dead: it drops every connection (no close
// frame: the clients see the TCP connection end) and every handshake in
// progress, and refuses new connections (a TCP reset as soon as they
// connect) until Up. When it returns, no connection is open.
func (s *Server) Down() {
	s.mu.Lock()
	s.down = true
	if s.upTimer != nil {
		s.upTimer.Stop()
	}
	s.px.RejectNew(true)
	s.dropAllLocked()
	s.mu.Unlock()
	s.px.CloseLinks()
	_ = s.wait(context.Background(), func() bool { return s.st.Open == 0 })
}

// Up accepts connections again, on the same address, after Down.
func (s *Server) Up() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = false
	s.px.RejectNew(false)
}

// Restart is Down, then Up after refuseFor, on a timer: it returns once Down
// has (every connection dropped), and refuseFor counts from then.
func (s *Server) Restart(refuseFor time.Duration) {
	s.Down()
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closing:
		return
	default:
	}
	s.upTimer = time.AfterFunc(refuseFor, s.Up)
}

// dropAllLocked closes every socket not yet upgraded and aborts every open
// connection. Under mu.
func (s *Server) dropAllLocked() {
	for nc := range s.sockets {
		nc.Close()
	}
	for _, c := range s.conns {
		c.killLocked()
		c.tc.Abort()
	}
}

// update runs f under mu and wakes the waiters.
func (s *Server) update(f func()) {
	s.mu.Lock()
	f()
	s.bumpLocked()
	s.mu.Unlock()
}

// bumpLocked wakes the waiters. Under mu.
func (s *Server) bumpLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// wait waits until cond (run under mu) is true, bounded by ctx, the wait
// timeout and Close.
func (s *Server) wait(ctx context.Context, cond func() bool) error {
	return s.waitUnlocked(ctx, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return cond()
	})
}

// waitUnlocked waits until cond is true, like wait, calling cond without mu.
func (s *Server) waitUnlocked(ctx context.Context, cond func() bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeoutCause(ctx, s.timeout,
		fmt.Errorf("Options.WaitTimeout (%v) passed", s.timeout))
	defer cancel()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-s.closing:
			if cond() {
				return nil
			}
			return ErrServerClosed
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}
