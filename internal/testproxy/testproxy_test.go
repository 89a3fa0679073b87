package testproxy

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer echoes every connection on 127.0.0.1 until closed.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func dial(t *testing.T, p *Proxy) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func echoes(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "ping" {
		t.Fatalf("echo through the tunnel: %q, %v", got, err)
	}
}

func connect(t *testing.T, p *Proxy, target, auth string) (net.Conn, *bufio.Reader, int) {
	t.Helper()
	c, br := dial(t, p)
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", target, target)
	if auth != "" {
		fmt.Fprintf(c, "Proxy-Authorization: Basic %s\r\n", base64.StdEncoding.EncodeToString([]byte(auth)))
	}
	fmt.Fprintf(c, "\r\n")
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	return c, br, resp.StatusCode
}

func TestConnect(t *testing.T) {
	echo := echoServer(t)
	p, err := NewConnect(Options{User: "alice", Pass: "s3cret", Hosts: map[string]string{"echo.test:80": echo}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, _, code := connect(t, p, "echo.test:80", "alice:wrong"); code != http.StatusProxyAuthRequired {
		t.Errorf("wrong password: status %d, want 407", code)
	}
	if _, _, code := connect(t, p, "192.0.2.1:80", "alice:s3cret"); code != http.StatusBadGateway {
		t.Errorf("non-loopback target: status %d, want 502", code)
	}
	c, br, code := connect(t, p, "echo.test:80", "alice:s3cret")
	if code != http.StatusOK {
		t.Fatalf("status %d, want 200", code)
	}
	echoes(t, c, br)
	if got := <-p.Seen(); got != "192.0.2.1:80" {
		t.Errorf("first target seen %q", got)
	}
	if got := <-p.Seen(); got != "echo.test:80" {
		t.Errorf("second target seen %q", got)
	}
	if p.Tunnels() != 1 {
		t.Errorf("Tunnels() = %d, want 1", p.Tunnels())
	}
	if u := p.URL("a", "b").String(); u != "http://a:b@"+p.Addr() {
		t.Errorf("URL = %s", u)
	}
	p.Close() // with the tunnel still open
}

func socks(t *testing.T, p *Proxy, user, pass string, atyp byte, addr []byte, port uint16) (net.Conn, *bufio.Reader, byte) {
	t.Helper()
	c, br := dial(t, p)
	method := byte(0)
	if user != "" {
		method = 2
	}
	c.Write([]byte{5, 1, method})
	var b [2]byte
	if _, err := io.ReadFull(br, b[:]); err != nil {
		t.Fatal(err)
	}
	if b[1] == 0xff {
		return c, br, 0xff
	}
	if method == 2 {
		c.Write(append(append(append([]byte{1, byte(len(user))}, user...), byte(len(pass))), pass...))
		if _, err := io.ReadFull(br, b[:]); err != nil {
			t.Fatal(err)
		}
		if b[1] != 0 {
			return c, br, 0xfe
		}
	}
	req := []byte{5, 1, 0, atyp}
	if atyp == 3 {
		req = append(req, byte(len(addr)))
	}
	req = append(append(req, addr...), byte(port>>8), byte(port))
	c.Write(req)
	reply := make([]byte, 10)
	if _, err := io.ReadFull(br, reply); err != nil {
		t.Fatal(err)
	}
	return c, br, reply[1]
}

func TestSOCKS5(t *testing.T) {
	echo := echoServer(t)
	_, portStr, _ := net.SplitHostPort(echo)
	var port uint16
	fmt.Sscan(portStr, &port)
	p, err := NewSOCKS5(Options{User: "bob", Pass: "pw", Hosts: map[string]string{"echo.test:80": echo}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, _, r := socks(t, p, "", "", 1, []byte{127, 0, 0, 1}, port); r != 0xff {
		t.Errorf("no credentials offered: reply %#x, want no acceptable method", r)
	}
	if _, _, r := socks(t, p, "bob", "nope", 1, []byte{127, 0, 0, 1}, port); r != 0xfe {
		t.Errorf("wrong password: %#x, want refused", r)
	}
	if _, _, r := socks(t, p, "bob", "pw", 1, []byte{192, 0, 2, 1}, 80); r != socksUnreachable {
		t.Errorf("non-loopback target: reply %d, want %d", r, socksUnreachable)
	}
	c, br, r := socks(t, p, "bob", "pw", 1, []byte{127, 0, 0, 1}, port)
	if r != 0 {
		t.Fatalf("IPv4 target: reply %d", r)
	}
	echoes(t, c, br)
	c, br, r = socks(t, p, "bob", "pw", 3, []byte("echo.test"), 80)
	if r != 0 {
		t.Fatalf("name target: reply %d", r)
	}
	echoes(t, c, br)
	if p.Tunnels() != 2 {
		t.Errorf("Tunnels() = %d, want 2", p.Tunnels())
	}
	if u := p.URL("", "").String(); u != "socks5://"+p.Addr() {
		t.Errorf("URL = %s", u)
	}

	open, err := NewSOCKS5(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	c, br, r = socks(t, open, "", "", 1, []byte{127, 0, 0, 1}, port)
	if r != 0 {
		t.Fatalf("without credentials: reply %d", r)
	}
	echoes(t, c, br)
}

func TestHalfClose(t *testing.T) {
	// The server's end of the tunnel ends: the client reads EOF after the data.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("bye"))
			c.Close()
		}
	}()
	p, err := NewConnect(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, br, code := connect(t, p, ln.Addr().String(), "")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	got, err := io.ReadAll(br)
	if err != nil || !bytes.Equal(got, []byte("bye")) {
		t.Errorf("ReadAll = %q, %v", got, err)
	}
}
