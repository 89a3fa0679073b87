package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
)

// ProxyError is a proxy that refused to open the tunnel: an HTTP CONNECT
// answered with a status other than 200 (StatusCode, Header), or a SOCKS5
// proxy that refused the credentials, the methods offered or the CONNECT
// (SOCKSReply, RFC 1928 6). Auth is true when the refusal is about
// credentials: HTTP 407, or a SOCKS5 proxy refusing the username/password or
// requiring a method this client does not offer.
type ProxyError struct {
	StatusCode int         // the CONNECT answer's status; 0 for SOCKS5
	Header     http.Header // the CONNECT answer's headers (Proxy-Authenticate); nil for SOCKS5
	SOCKSReply int         // the SOCKS5 reply code when the CONNECT was refused; 0 otherwise
	Auth       bool
	socks      string // what a SOCKS5 proxy refused
}

func (e *ProxyError) Error() string {
	if e.StatusCode != 0 {
		s := strconv.Itoa(e.StatusCode)
		if t := http.StatusText(e.StatusCode); t != "" {
			s += " " + t
		}
		return "proxy refused CONNECT: " + s
	}
	return "socks5 proxy refused " + e.socks
}

// proxyDefaultPort is the port of a proxy URL without one.
var proxyDefaultPort = map[string]string{"http": "80", "https": "443", "socks5": "1080", "socks5h": "1080"}

// proxyRootCAs verifies an https:// proxy (nil: the system roots). Tests set it.
var proxyRootCAs *x509.CertPool

// proxyAddr is the address to dial for proxy u.
func proxyAddr(u *url.URL) (string, error) {
	port, ok := proxyDefaultPort[u.Scheme]
	if !ok {
		return "", fmt.Errorf("unsupported proxy scheme %q (http, https, socks5, socks5h)", shorten(u.Scheme))
	}
	if u.Hostname() == "" {
		return "", errors.New("proxy URL has no host")
	}
	if p := u.Port(); p != "" {
		port = p
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// tunnel opens a tunnel to target (host:port) through proxy u over conn (a
// socket to the proxy). It returns the connection to read and write the
// tunnel with: conn itself, TLS to an https:// proxy, or either with bytes the
// proxy sent past its answer put first.
func tunnel(ctx context.Context, conn net.Conn, u *url.URL, target string) (net.Conn, error) {
	switch u.Scheme {
	case "https":
		tc := tls.Client(conn, &tls.Config{ServerName: u.Hostname(), RootCAs: proxyRootCAs, MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("TLS to the proxy: %w", err)
		}
		return httpConnect(tc, u, target)
	case "http":
		return httpConnect(conn, u, target)
	default: // socks5, socks5h
		return conn, socks5Connect(conn, u, target)
	}
}

// httpConnect asks an HTTP proxy for a tunnel (RFC 9110 9.3.6), with
// Proxy-Authorization: Basic from the proxy URL's userinfo.
func httpConnect(conn net.Conn, u *url.URL, target string) (net.Conn, error) {
	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: target},
		Host:   target,
		Header: http.Header{},
	}
	if u.User != nil {
		pass, _ := u.User.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pass)))
	}
	if err := req.Write(conn); err != nil {
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, fmt.Errorf("reading the proxy's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &ProxyError{StatusCode: resp.StatusCode, Header: resp.Header, Auth: resp.StatusCode == http.StatusProxyAuthRequired}
	}
	if n := br.Buffered(); n > 0 {
		early, _ := br.Peek(n)
		return &prefixConn{Conn: conn, r: io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn)}, nil
	}
	return conn, nil
}

// prefixConn reads bytes already read from Conn first.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// SOCKS5 (RFC 1928) and its username/password method (RFC 1929).
const (
	socksVersion     = 5
	socksNoAuth      = 0
	socksUserPass    = 2
	socksNoMethod    = 0xff
	socksCmdConnect  = 1
	socksATYPIPv4    = 1
	socksATYPName    = 3
	socksATYPIPv6    = 4
	socksAuthVersion = 1
)

var socksReplies = map[byte]string{
	1: "general SOCKS server failure",
	2: "connection not allowed by ruleset",
	3: "network unreachable",
	4: "host unreachable",
	5: "connection refused",
	6: "TTL expired",
	7: "command not supported",
	8: "address type not supported",
}

// socks5Connect opens a tunnel to target through a SOCKS5 proxy: the host name
// goes to the proxy (ATYP 3, an IP address as ATYP 1 or 4), which resolves it;
// username and password from the URL when it has them (RFC 1929).
func socks5Connect(conn net.Conn, u *url.URL, target string) error {
	host, portStr, err := net.SplitHostPort(target)
	if err != nil {
		return err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return fmt.Errorf("socks5: bad port in %q", target)
	}
	methods := []byte{socksNoAuth}
	if u.User != nil {
		methods = []byte{socksNoAuth, socksUserPass}
	}
	if _, err := conn.Write(append([]byte{socksVersion, byte(len(methods))}, methods...)); err != nil {
		return fmt.Errorf("socks5: %w", err)
	}
	var b [2]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		return fmt.Errorf("socks5: reading the method choice: %w", err)
	}
	if b[0] != socksVersion {
		return fmt.Errorf("socks5: the proxy answered with version %d", b[0])
	}
	switch b[1] {
	case socksNoAuth:
	case socksUserPass:
		if u.User == nil {
			return errors.New("socks5: the proxy chose username/password, which was not offered")
		}
		if err := socks5Auth(conn, u.User); err != nil {
			return err
		}
	case socksNoMethod:
		what := "connections without authentication"
		if u.User != nil {
			what = "username/password authentication"
		}
		return &ProxyError{Auth: true, socks: what + " (no acceptable method)"}
	default:
		return fmt.Errorf("socks5: the proxy chose method %d, which was not offered", b[1])
	}

	req := []byte{socksVersion, socksCmdConnect, 0}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Is4() || ip.Is4In6() {
			a := ip.Unmap().As4()
			req = append(append(req, socksATYPIPv4), a[:]...)
		} else {
			a := ip.As16()
			req = append(append(req, socksATYPIPv6), a[:]...)
		}
	} else {
		if len(host) > 255 {
			return errors.New("socks5: host name longer than 255 bytes")
		}
		req = append(append(req, socksATYPName, byte(len(host))), host...)
	}
	req = append(req, byte(port>>8), byte(port))
	if _, err := conn.Write(req); err != nil {
		return fmt.Errorf("socks5: %w", err)
	}
	var head [4]byte
	if _, err := io.ReadFull(conn, head[:]); err != nil {
		return fmt.Errorf("socks5: reading the CONNECT reply: %w", err)
	}
	if head[0] != socksVersion {
		return fmt.Errorf("socks5: the proxy answered with version %d", head[0])
	}
	if head[1] != 0 {
		why, ok := socksReplies[head[1]]
		if !ok {
			why = "unknown reply"
		}
		return &ProxyError{SOCKSReply: int(head[1]), socks: fmt.Sprintf("CONNECT: %s (reply %d)", why, head[1])}
	}
	var skip int
	switch head[3] {
	case socksATYPIPv4:
		skip = 4
	case socksATYPIPv6:
		skip = 16
	case socksATYPName:
		var l [1]byte
		if _, err := io.ReadFull(conn, l[:]); err != nil {
			return fmt.Errorf("socks5: reading the CONNECT reply: %w", err)
		}
		skip = int(l[0])
	default:
		return fmt.Errorf("socks5: bad address type %d in the CONNECT reply", head[3])
	}
	if _, err := io.ReadFull(conn, make([]byte, skip+2)); err != nil {
		return fmt.Errorf("socks5: reading the CONNECT reply: %w", err)
	}
	return nil
}

// socks5Auth runs the RFC 1929 username/password subnegotiation.
func socks5Auth(conn net.Conn, user *url.Userinfo) error {
	name := user.Username()
	pass, _ := user.Password()
	if len(name) == 0 || len(name) > 255 || len(pass) > 255 {
		return errors.New("socks5: username must be 1 to 255 bytes, password at most 255")
	}
	msg := []byte{socksAuthVersion, byte(len(name))}
	msg = append(msg, name...)
	msg = append(msg, byte(len(pass)))
	msg = append(msg, pass...)
	if _, err := conn.Write(msg); err != nil {
		return fmt.Errorf("socks5: %w", err)
	}
	var b [2]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		return fmt.Errorf("socks5: reading the authentication status: %w", err)
	}
	if b[0] != socksAuthVersion {
		return fmt.Errorf("socks5: the proxy answered the authentication with version %d", b[0])
	}
	if b[1] != 0 {
		return &ProxyError{Auth: true, socks: fmt.Sprintf("the username/password (RFC 1929 status %d)", b[1])}
	}
	return nil
}
