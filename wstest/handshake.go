package wstest

import (
	"bufio"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed
		}
		s.mu.Lock()
		select {
		case <-s.closing:
			s.mu.Unlock()
			nc.Close()
			return
		default:
		}
		s.sockets[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(nc)
	}
}

// forget removes an accepted socket from the handshakes in progress.
func (s *Server) forget(nc net.Conn) {
	s.mu.Lock()
	delete(s.sockets, nc)
	s.mu.Unlock()
}

// sleep waits d; false if the server closed first or the socket must go.
func (s *Server) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.closing:
		return false
	}
}

// serve runs one accepted socket: TLS, the handshake, then the connection.
func (s *Server) serve(tcp net.Conn) {
	defer s.wg.Done()
	var nc net.Conn = tcp
	upgraded := false
	defer func() {
		if !upgraded {
			nc.Close()
		}
		s.forget(tcp)
	}()
	_ = tcp.SetDeadline(time.Now().Add(s.timeout))
	if s.pki != nil {
		tc := tls.Server(tcp, s.pki.server)
		if err := tc.Handshake(); err != nil {
			return
		}
		nc = tc
	}
	br := bufio.NewReaderSize(nc, 4096)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	_ = tcp.SetDeadline(time.Time{})
	seen := req.Clone(req.Context())
	seen.Body = http.NoBody
	if tc, ok := nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		seen.TLS = &st
	}

	var ans *Response
	s.mu.Lock()
	if !s.opts.Forget {
		s.requests = append(s.requests, seen)
	}
	s.st.Requests++
	if len(s.queue) > 0 {
		ans = &s.queue[0]
		s.queue = s.queue[1:]
	}
	s.bumpLocked()
	s.mu.Unlock()
	if ans == nil && s.opts.Check != nil {
		s.user(func() { ans = s.opts.Check(seen) })
	}
	if ans == nil {
		ans = &Response{}
	}
	if !s.sleep(ans.Delay) {
		return
	}
	if ans.Raw != nil {
		s.user(func() { ans.Raw(seen, &rawWriter{tcp: tcp, w: nc, timeout: s.timeout}) })
	}
	if ans.Stall {
		_, _ = io.Copy(io.Discard, br) // until the client or Close ends it
		return
	}
	if ans.Raw != nil {
		return // hang up
	}
	if ans.Status != 0 && ans.Status != http.StatusSwitchingProtocols {
		writeAnswer(nc, ans.Status, ans.Header, ans.Body)
		return
	}
	key, status, problem := checkUpgrade(req)
	if problem != "" {
		h := http.Header{}
		if status == http.StatusUpgradeRequired {
			h.Set("Sec-WebSocket-Version", "13")
		}
		writeAnswer(nc, status, h, "wstest: "+problem)
		return
	}
	h := http.Header{}
	h.Set("Upgrade", "websocket")
	h.Set("Connection", "Upgrade")
	h.Set("Sec-WebSocket-Accept", AcceptKey(key))
	if p := pickSubprotocol(req.Header, s.opts.Subprotocols); p != "" {
		h.Set("Sec-WebSocket-Protocol", p)
	}
	if s.opts.Compression && offersDeflate(req.Header) {
		h.Set("Sec-WebSocket-Extensions", "permessage-deflate; server_no_context_takeover; client_no_context_takeover")
	}
	for k, v := range ans.Header {
		switch http.CanonicalHeaderKey(k) {
		case "Sec-Websocket-Protocol", "Sec-Websocket-Extensions":
			h[http.CanonicalHeaderKey(k)] = v
		default:
			h[k] = append(h[k], v...)
		}
	}
	var b strings.Builder
	b.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	_ = h.Write(&b)
	b.WriteString("\r\n")
	_ = tcp.SetWriteDeadline(time.Now().Add(s.timeout))
	if _, err := io.WriteString(nc, b.String()); err != nil {
		return
	}
	_ = tcp.SetWriteDeadline(time.Time{})
	if ans.Drop {
		return
	}
	upgraded = true
	s.forget(tcp)
	s.run(newConn(s, seen, tcp, nc, br, h))
}

// writeAnswer writes a complete non-101 HTTP answer.
func writeAnswer(w io.Writer, status int, h http.Header, body string) {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	h.Set("Connection", "close")
	if h.Get("Content-Type") == "" && body != "" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	_ = h.Write(&b)
	b.WriteString("\r\n")
	b.WriteString(body)
	_, _ = io.WriteString(w, b.String())
}

// checkUpgrade checks an upgrade request (RFC 6455 4.2.1); problem says
// what is wrong, with the status to answer.
func checkUpgrade(r *http.Request) (key string, status int, problem string) {
	switch {
	case r.Method != http.MethodGet:
		return "", http.StatusMethodNotAllowed, "the method is " + r.Method + ", not GET"
	case !hasToken(r.Header, "Connection", "upgrade"):
		return "", http.StatusBadRequest, "no Connection: Upgrade"
	case !hasToken(r.Header, "Upgrade", "websocket"):
		return "", http.StatusBadRequest, "no Upgrade: websocket"
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		return "", http.StatusUpgradeRequired, fmt.Sprintf("Sec-WebSocket-Version %q, not 13", r.Header.Get("Sec-WebSocket-Version"))
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return "", http.StatusBadRequest, fmt.Sprintf("%d Sec-WebSocket-Key headers, not 1", len(keys))
	}
	if raw, err := base64.StdEncoding.DecodeString(keys[0]); err != nil || len(raw) != 16 {
		return "", http.StatusBadRequest, fmt.Sprintf("Sec-WebSocket-Key %q is not 16 bytes in base64", keys[0])
	}
	return keys[0], 0, ""
}

// AcceptKey is the Sec-WebSocket-Accept that answers a Sec-WebSocket-Key
// (RFC 6455 section 4.2.2): the base64 of the SHA-1 of the key and the
// protocol's GUID. In a Response.Raw answer,
// AcceptKey(r.Header.Get("Sec-WebSocket-Key")) is the valid value; the
// AcceptKey of any other key is a wrong one.
func AcceptKey(key string) string {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// rawWriter is the w of Response.Raw: each Write goes to the socket, within
// the wait timeout.
type rawWriter struct {
	tcp     net.Conn // for the deadline
	w       io.Writer
	timeout time.Duration
}

func (w *rawWriter) Write(p []byte) (int, error) {
	_ = w.tcp.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.w.Write(p)
}

// hasToken reports whether a comma-separated header holds token.
func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// pickSubprotocol is the first subprotocol the client offers that the
// server accepts.
func pickSubprotocol(h http.Header, accepted []string) string {
	for _, v := range h.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			for _, a := range accepted {
				if p == a {
					return p
				}
			}
		}
	}
	return ""
}

// offersDeflate reports whether the client offers permessage-deflate.
func offersDeflate(h http.Header) bool {
	for _, v := range h.Values("Sec-WebSocket-Extensions") {
		for _, e := range strings.Split(v, ",") {
			name, _, _ := strings.Cut(e, ";")
			if strings.EqualFold(strings.TrimSpace(name), "permessage-deflate") {
				return true
			}
		}
	}
	return false
}

// usesDeflate reports whether the 101's extensions answer turns on
// permessage-deflate.
func usesDeflate(h http.Header) bool { return offersDeflate(h) }
