package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/internal/tcpserver"
	"github.com/ff42ae21/wsclient/internal/testcerts"
	"github.com/gorilla/websocket"
)

// --- certificates ---

// dtCA is a certificate authority made in the test (internal/testcerts).
type dtCA struct {
	*testcerts.CA
	pool *x509.CertPool
}

func newDTCA(t testing.TB, name string) *dtCA {
	ca := testcerts.MustCA(t, name)
	return &dtCA{CA: ca, pool: ca.Pool()}
}

// issue makes a certificate for hosts (DNS names or IPs), or a client
// certificate named cn when client.
func (ca *dtCA) issue(t testing.TB, cn string, client bool, hosts ...string) tls.Certificate {
	return ca.MustIssue(t, testcerts.Spec{CommonName: cn, Client: client, Hosts: hosts}).TLS
}

// --- a WebSocket server (gorilla) ---

type wsServer struct {
	srv  *httptest.Server
	reqs chan *http.Request
}

type wsServerOpts struct {
	tls          *tls.Config
	subprotocols []string
	compression  bool
}

func newWSServer(t *testing.T, o wsServerOpts) *wsServer {
	t.Helper()
	s := &wsServer{reqs: make(chan *http.Request, 16)}
	up := websocket.Upgrader{Subprotocols: o.subprotocols, EnableCompression: o.compression}
	var handlers sync.WaitGroup // hijacked connections: httptest.Server.Close does not wait for them
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		select {
		case s.reqs <- r:
		default:
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			if c.WriteMessage(mt, p) != nil {
				return
			}
		}
	}))
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused client certificates are expected
	if o.tls != nil {
		s.srv.TLS = o.tls
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	t.Cleanup(func() {
		s.srv.CloseClientConnections()
		s.srv.Close()
		handlers.Wait()
	})
	return s
}

func (s *wsServer) addr() string { return s.srv.Listener.Addr().String() }

func (s *wsServer) url(scheme, path string) *url.URL {
	return &url.URL{Scheme: scheme, Host: s.addr(), Path: path}
}

func (s *wsServer) request(t *testing.T) *http.Request {
	t.Helper()
	select {
	case r := <-s.reqs:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no upgrade request reached the server")
		return nil
	}
}

// --- a scripted TCP server ---

// rawServer runs script for every connection on 127.0.0.1, then closes it
// (internal/tcpserver).
type rawServer struct{ *tcpserver.Server }

func newRawServer(t *testing.T, script func(c net.Conn)) *rawServer {
	t.Helper()
	return &rawServer{tcpserver.Start(t, script)}
}

func (s *rawServer) addr() string { return s.Addr() }

// readUpgrade reads the upgrade request from c.
func readUpgrade(c net.Conn) (*http.Request, *bufio.Reader, error) {
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	return req, br, err
}

// accept101 is a valid 101 answer to req, with extra header lines.
func accept101(req *http.Request, extra ...string) string {
	s := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		acceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n"
	for _, e := range extra {
		s += e + "\r\n"
	}
	return s + "\r\n"
}

// --- proxies ---

// proxyServer is an HTTP CONNECT (optionally over TLS) or SOCKS5 proxy on
// 127.0.0.1, with optional credentials, resolving the names in hosts itself.
type proxyServer struct {
	*rawServer
	user, pass string
	hosts      map[string]string
	seen       chan string // the CONNECT targets (host:port as the client sent it)
	atyp       chan byte   // SOCKS5: the address types asked for
}

func (p *proxyServer) resolve(target string) string {
	if a, ok := p.hosts[target]; ok {
		return a
	}
	return target
}

func (p *proxyServer) note(target string) {
	select {
	case p.seen <- target:
	default:
	}
}

func newProxy(hosts map[string]string, user, pass string) *proxyServer {
	return &proxyServer{hosts: hosts, user: user, pass: pass, seen: make(chan string, 16), atyp: make(chan byte, 16)}
}

// splice copies both ways until either side ends.
func splice(a net.Conn, b io.Reader, bw net.Conn) {
	done := make(chan struct{})
	go func() {
		io.Copy(bw, b)
		bw.Close()
		close(done)
	}()
	io.Copy(a, bw)
	a.Close()
	<-done
}

func newConnectProxy(t *testing.T, hosts map[string]string, user, pass string, tlsConf *tls.Config) *proxyServer {
	p := newProxy(hosts, user, pass)
	p.rawServer = newRawServer(t, func(c net.Conn) {
		if tlsConf != nil {
			tc := tls.Server(c, tlsConf)
			if tc.Handshake() != nil {
				return
			}
			c = tc
		}
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil || req.Method != http.MethodConnect {
			io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
			return
		}
		if p.user != "" {
			want := "Basic " + base64.StdEncoding.EncodeToString([]byte(p.user+":"+p.pass))
			if req.Header.Get("Proxy-Authorization") != want {
				io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
				return
			}
		}
		p.note(req.Host)
		up, err := net.DialTimeout("tcp", p.resolve(req.Host), 2*time.Second)
		if err != nil {
			io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
			up.Close()
			return
		}
		splice(c, br, up)
	})
	return p
}

func (p *proxyServer) url(scheme, user, pass string) *url.URL {
	u := &url.URL{Scheme: scheme, Host: p.addr()}
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	return u
}

func newSOCKS5Proxy(t *testing.T, hosts map[string]string, user, pass string) *proxyServer {
	p := newProxy(hosts, user, pass)
	p.rawServer = newRawServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil || h[0] != 5 {
			return
		}
		methods := make([]byte, h[1])
		if _, err := io.ReadFull(br, methods); err != nil {
			return
		}
		want := byte(0)
		if p.user != "" {
			want = 2
		}
		found := false
		for _, m := range methods {
			found = found || m == want
		}
		if !found {
			c.Write([]byte{5, 0xff})
			return
		}
		c.Write([]byte{5, want})
		if want == 2 {
			ver, _ := br.ReadByte()
			ul, _ := br.ReadByte()
			u := make([]byte, ul)
			io.ReadFull(br, u)
			pl, _ := br.ReadByte()
			pw := make([]byte, pl)
			if _, err := io.ReadFull(br, pw); err != nil || ver != 1 {
				return
			}
			if string(u) != p.user || string(pw) != p.pass {
				c.Write([]byte{1, 1})
				return
			}
			c.Write([]byte{1, 0})
		}
		var req [4]byte
		if _, err := io.ReadFull(br, req[:]); err != nil || req[1] != 1 {
			return
		}
		select {
		case p.atyp <- req[3]:
		default:
		}
		var host string
		switch req[3] {
		case 1:
			a := make([]byte, 4)
			io.ReadFull(br, a)
			host = net.IP(a).String()
		case 4:
			a := make([]byte, 16)
			io.ReadFull(br, a)
			host = net.IP(a).String()
		case 3:
			l, _ := br.ReadByte()
			a := make([]byte, l)
			io.ReadFull(br, a)
			host = string(a)
		}
		var port [2]byte
		if _, err := io.ReadFull(br, port[:]); err != nil {
			return
		}
		target := net.JoinHostPort(host, itoa(int(binary.BigEndian.Uint16(port[:]))))
		p.note(target)
		real := p.resolve(target)
		if real == target && host != "127.0.0.1" {
			c.Write([]byte{5, 4, 0, 1, 0, 0, 0, 0, 0, 0}) // host unreachable
			return
		}
		up, err := net.DialTimeout("tcp", real, 2*time.Second)
		if err != nil {
			c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
			return
		}
		c.Write([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 0})
		splice(c, br, up)
	})
	return p
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

// dialT dials with a 5 s bound and aborts the connection at the end of the test.
func dialT(t *testing.T, cfg *Config) (*Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if c != nil {
		t.Cleanup(c.Abort)
	}
	return c, err
}

func decodeKey(k string) ([]byte, error) { return base64.StdEncoding.DecodeString(k) }

func errorsAs(err error, target any) bool { return errors.As(err, target) }

func errEOFWrapped() error { return fmt.Errorf("read: %w", io.EOF) }

func errResetWrapped() error {
	return &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
}

// newRawServerWith101 answers every upgrade with a valid 101 carrying ext as
// Sec-WebSocket-Extensions (none when empty), then holds the connection.
func newRawServerWith101(t *testing.T, ext string) *rawServer {
	return newRawServer(t, func(c net.Conn) {
		req, _, err := readUpgrade(c)
		if err != nil {
			return
		}
		var extra []string
		if ext != "" {
			extra = append(extra, "Sec-WebSocket-Extensions: "+ext)
		}
		io.WriteString(c, accept101(req, extra...))
		io.Copy(io.Discard, c)
	})
}
