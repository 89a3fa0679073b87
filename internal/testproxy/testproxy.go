// Package testproxy is an HTTP CONNECT proxy (RFC 9110 9.3.6, with optional
// Basic credentials) and a SOCKS5 proxy (RFC 1928, with optional RFC 1929
// username/password) for tests. Both listen on 127.0.0.1 and only open
// tunnels to loopback addresses (after mapping names through Options.Hosts),
// so a test can never reach out of the machine through them.
//
//	px, err := testproxy.NewSOCKS5(testproxy.Options{User: "u", Pass: "p"})
//	...
//	defer px.Close()
//	opts.Proxy = http.ProxyURL(px.URL("u", "p"))
//
// Close closes the listener and every connection and waits for every
// goroutine the proxy started.
package testproxy

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a proxy. The zero value asks for no credentials and
// resolves nothing itself.
type Options struct {
	// User and Pass are the credentials the proxy demands when User is not
	// empty: Proxy-Authorization: Basic for CONNECT, the username/password
	// method for SOCKS5.
	User, Pass string
	// Credentials, if set, is asked for the credentials at every connection
	// instead of User and Pass (for tests that set them after the start).
	Credentials func() (user, pass string)
	// Hosts maps a target host:port, as the client asked for it, to the
	// address the proxy dials instead (names only the proxy can resolve).
	Hosts map[string]string
	// DialTimeout bounds dialing a target (2 s if zero).
	DialTimeout time.Duration
}

// Kind is the proxy protocol.
type Kind int

const (
	// Connect is an HTTP CONNECT proxy (URL scheme http).
	Connect Kind = iota
	// SOCKS5 is a SOCKS5 proxy (URL scheme socks5).
	SOCKS5
)

// Proxy is a running proxy.
type Proxy struct {
	kind    Kind
	opts    Options
	ln      net.Listener
	seen    chan string
	tunnels atomic.Int64

	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

// NewConnect starts an HTTP CONNECT proxy on 127.0.0.1.
func NewConnect(o Options) (*Proxy, error) { return start(Connect, o) }

// NewSOCKS5 starts a SOCKS5 proxy on 127.0.0.1.
func NewSOCKS5(o Options) (*Proxy, error) { return start(SOCKS5, o) }

// New starts a proxy of kind k on 127.0.0.1.
func New(k Kind, o Options) (*Proxy, error) { return start(k, o) }

func start(k Kind, o Options) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 2 * time.Second
	}
	p := &Proxy{kind: k, opts: o, ln: ln, seen: make(chan string, 100), conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the listening address, 127.0.0.1:PORT.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is the proxy's URL (http:// or socks5://), with user and pass as its
// userinfo when user is not empty.
func (p *Proxy) URL(user, pass string) *url.URL {
	u := &url.URL{Scheme: "http", Host: p.Addr()}
	if p.kind == SOCKS5 {
		u.Scheme = "socks5"
	}
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	return u
}

// Seen delivers the targets the clients asked for (host:port as sent, after
// the credentials were accepted), in order. It holds the first 100 unread.
func (p *Proxy) Seen() <-chan string { return p.seen }

// Tunnels is how many tunnels the proxy has opened so far.
func (p *Proxy) Tunnels() int { return int(p.tunnels.Load()) }

// Close stops listening, closes every connection (both ends of every tunnel)
// and waits for every goroutine the proxy started. It is safe to call more
// than once.
func (p *Proxy) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		p.ln.Close()
		for c := range p.conns {
			c.Close()
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// track registers c to be closed by Close; false (and c closed) if the proxy
// is closed already.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.untrack(c)
			if p.kind == SOCKS5 {
				p.serveSOCKS5(c)
			} else {
				p.serveConnect(c)
			}
		}()
	}
}

func (p *Proxy) credentials() (user, pass string) {
	if p.opts.Credentials != nil {
		return p.opts.Credentials()
	}
	return p.opts.User, p.opts.Pass
}

func (p *Proxy) note(target string) {
	select {
	case p.seen <- target:
	default:
	}
}

// dial opens the upstream connection to target (mapped through Hosts); it
// refuses anything but a loopback address.
func (p *Proxy) dial(target string) (net.Conn, error) {
	if a, ok := p.opts.Hosts[target]; ok {
		target = a
	}
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, &net.AddrError{Err: "testproxy: only loopback targets", Addr: target}
	}
	up, err := net.DialTimeout("tcp", target, p.opts.DialTimeout)
	if err != nil {
		return nil, err
	}
	if !p.track(up) {
		return nil, net.ErrClosed
	}
	return up, nil
}

// splice copies both ways (client's buffered bytes first), half-closing each
// side as its source ends, and returns when both directions have ended. The
// upstream socket is closed only then: if the client resets its end (a
// WebSocket client that fails the connection closes with bytes unread), the
// bytes it sent before the reset, such as its close frame, still reach the
// server before the proxy hangs up on it.
func (p *Proxy) splice(c net.Conn, br *bufio.Reader, up net.Conn) {
	defer p.untrack(up)
	p.tunnels.Add(1)
	toServer := make(chan struct{})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(toServer)
		_, _ = io.Copy(up, br)
		closeWrite(up)
	}()
	_, _ = io.Copy(c, up)
	closeWrite(c)
	<-toServer // ends when the client closes, or when Close closes the sockets
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
		return
	}
	c.Close()
}

func (p *Proxy) serveConnect(c net.Conn) {
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if req.Method != http.MethodConnect {
		_, _ = io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
		return
	}
	if user, pass := p.credentials(); user != "" {
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
		if req.Header.Get("Proxy-Authorization") != want {
			_, _ = io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\n"+
				"Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
			return
		}
	}
	p.note(req.Host)
	up, err := p.dial(req.Host)
	if err != nil {
		_, _ = io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		p.untrack(up)
		return
	}
	p.splice(c, br, up)
}

// SOCKS5 reply codes (RFC 1928 6).
const (
	socksOK          = 0
	socksUnreachable = 4
	socksRefused     = 5
	socksBadCommand  = 7
	socksBadAddress  = 8
)

func socksReply(c net.Conn, code byte) {
	_, _ = c.Write([]byte{5, code, 0, 1, 127, 0, 0, 1, 0, 0})
}

func (p *Proxy) serveSOCKS5(c net.Conn) {
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil || h[0] != 5 {
		return
	}
	methods := make([]byte, h[1])
	if _, err := io.ReadFull(br, methods); err != nil {
		return
	}
	user, pass := p.credentials()
	want := byte(0) // no authentication
	if user != "" {
		want = 2 // username/password
	}
	found := false
	for _, m := range methods {
		found = found || m == want
	}
	if !found {
		_, _ = c.Write([]byte{5, 0xff})
		return
	}
	if _, err := c.Write([]byte{5, want}); err != nil {
		return
	}
	if want == 2 {
		u, pw, ok := readUserPass(br)
		if !ok {
			return
		}
		if u != user || pw != pass {
			_, _ = c.Write([]byte{1, 1})
			return
		}
		if _, err := c.Write([]byte{1, 0}); err != nil {
			return
		}
	}
	var req [4]byte
	if _, err := io.ReadFull(br, req[:]); err != nil || req[0] != 5 {
		return
	}
	var host string
	switch req[3] {
	case 1, 4:
		a := make([]byte, 4)
		if req[3] == 4 {
			a = make([]byte, 16)
		}
		if _, err := io.ReadFull(br, a); err != nil {
			return
		}
		host = net.IP(a).String()
	case 3:
		l, err := br.ReadByte()
		if err != nil {
			return
		}
		a := make([]byte, l)
		if _, err := io.ReadFull(br, a); err != nil {
			return
		}
		host = string(a)
	default:
		socksReply(c, socksBadAddress)
		return
	}
	var port [2]byte
	if _, err := io.ReadFull(br, port[:]); err != nil {
		return
	}
	if req[1] != 1 { // only CONNECT
		socksReply(c, socksBadCommand)
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	target := net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(port[:]))))
	p.note(target)
	up, err := p.dial(target)
	if err != nil {
		code := byte(socksRefused)
		if _, ok := err.(*net.AddrError); ok {
			code = socksUnreachable
		}
		socksReply(c, code)
		return
	}
	socksReply(c, socksOK)
	p.splice(c, br, up)
}

// readUserPass reads an RFC 1929 username/password request.
func readUserPass(br *bufio.Reader) (user, pass string, ok bool) {
	ver, err := br.ReadByte()
	if err != nil || ver != 1 {
		return "", "", false
	}
	field := func() (string, bool) {
		n, err := br.ReadByte()
		if err != nil {
			return "", false
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			return "", false
		}
		return string(b), true
	}
	if user, ok = field(); !ok {
		return "", "", false
	}
	pass, ok = field()
	return user, pass, ok
}
