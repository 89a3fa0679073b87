package transport

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// acceptGUID is the GUID of RFC 6455 4.2.2, step 5.4.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// deflateOffer is the permessage-deflate offer: no context takeover either way,
// so that neither side keeps a compressor's window between messages.
const deflateOffer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

// maxErrorBody is how much of a refused handshake's body HandshakeError keeps.
const maxErrorBody = 1024

// newChallengeKey returns a Sec-WebSocket-Key: 16 random bytes, base64.
func newChallengeKey() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return base64.StdEncoding.EncodeToString(b[:])
}

// acceptKey is the Sec-WebSocket-Accept expected for key.
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + acceptGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// upgradeRequest builds the upgrade request for cfg with the challenge key.
// The handshake's own headers are set with the capitalization of RFC 6455's
// examples (some servers depend on it); cfg.Header comes after them, and a
// "Host" in it replaces the URL's host.
func upgradeRequest(cfg *Config, key string) *http.Request {
	u := *cfg.URL
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	if u.Scheme == "wss" {
		u.Scheme = "https"
	} else {
		u.Scheme = "http"
	}
	req := &http.Request{
		Method:     http.MethodGet,
		URL:        &u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{},
		Host:       u.Host,
	}
	req.Header["Upgrade"] = []string{"websocket"}
	req.Header["Connection"] = []string{"Upgrade"}
	req.Header["Sec-WebSocket-Key"] = []string{key}
	req.Header["Sec-WebSocket-Version"] = []string{"13"}
	if len(cfg.Subprotocols) > 0 {
		req.Header["Sec-WebSocket-Protocol"] = []string{strings.Join(cfg.Subprotocols, ", ")}
	}
	if cfg.Compression {
		req.Header["Sec-WebSocket-Extensions"] = []string{deflateOffer}
	}
	for k, vs := range cfg.Header {
		if http.CanonicalHeaderKey(k) == "Host" {
			if len(vs) > 0 {
				req.Host = vs[0]
			}
			continue
		}
		req.Header[k] = slices.Clone(vs)
	}
	return req
}

// handshakeResult is what a valid 101 agreed on.
type handshakeResult struct {
	resp        *http.Response
	subprotocol string
	compression bool
}

// checkResponse validates the answer to req (sent with key). A refusal (not
// 101) reads up to maxErrorBody of the body into the HandshakeError.
func checkResponse(resp *http.Response, cfg *Config, key string) (*handshakeResult, error) {
	if resp.StatusCode != http.StatusSwitchingProtocols {
		he := &HandshakeError{StatusCode: resp.StatusCode, Header: resp.Header}
		if resp.Body != nil {
			he.Body, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			if len(he.Body) == 0 {
				he.Body = nil
			}
		}
		return nil, he
	}
	fail := func(err error) (*handshakeResult, error) {
		return nil, &HandshakeError{StatusCode: resp.StatusCode, Header: resp.Header, Err: err}
	}
	switch {
	case !headerHasToken(resp.Header, "Upgrade", "websocket"):
		return fail(fmt.Errorf("%w: no Upgrade: websocket", ErrBadAccept))
	case !headerHasToken(resp.Header, "Connection", "upgrade"):
		return fail(fmt.Errorf("%w: no Connection: Upgrade", ErrBadAccept))
	case resp.Header.Get("Sec-Websocket-Accept") == "":
		return fail(fmt.Errorf("%w: no Sec-WebSocket-Accept", ErrBadAccept))
	case len(resp.Header.Values("Sec-Websocket-Accept")) != 1 ||
		strings.TrimSpace(resp.Header.Get("Sec-Websocket-Accept")) != acceptKey(key):
		return fail(fmt.Errorf("%w: Sec-WebSocket-Accept does not match the key", ErrBadAccept))
	}
	res := &handshakeResult{resp: resp}
	if vs := resp.Header.Values("Sec-Websocket-Protocol"); len(vs) > 0 {
		p := strings.TrimSpace(strings.Join(vs, ", "))
		if p != "" && (len(vs) > 1 || !slices.Contains(cfg.Subprotocols, p)) {
			return fail(fmt.Errorf("%w: %q", ErrBadSubprotocol, shorten(p)))
		}
		res.subprotocol = p
	}
	compression, err := negotiateExtensions(resp.Header.Values("Sec-Websocket-Extensions"), cfg.Compression)
	if err != nil {
		return fail(err)
	}
	res.compression = compression
	return res, nil
}

// headerHasToken reports whether a comma-separated header holds token
// (case-insensitive).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// shorten bounds a name taken from the server's answer in an error.
func shorten(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// negotiateExtensions checks the server's Sec-WebSocket-Extensions answer
// (RFC 6455 9.1, RFC 7692 7): only permessage-deflate may come back, only when
// offered, once, and in a form this client can use: the server must not keep
// its context (server_no_context_takeover), and it may not set
// client_max_window_bits (not offered). client_no_context_takeover may be
// absent (the client resets its compressor for every message anyway), and
// server_max_window_bits=8..15 may be present (a 15-bit window inflates any
// smaller one). It reports whether compression is on.
func negotiateExtensions(values []string, offered bool) (bool, error) {
	exts, err := parseExtensions(values)
	if err != nil {
		return false, err
	}
	compression := false
	for _, ext := range exts {
		if !offered || !strings.EqualFold(ext.name, "permessage-deflate") {
			return false, fmt.Errorf("%w: %q", ErrBadExtension, shorten(ext.name))
		}
		if ext.err != nil {
			return false, fmt.Errorf("%w: %w", ErrCompression, ext.err)
		}
		if compression {
			return false, fmt.Errorf("%w: two permessage-deflate answers", ErrCompression)
		}
		if err := checkDeflateParams(ext.params); err != nil {
			return false, fmt.Errorf("%w: %w", ErrCompression, err)
		}
		compression = true
	}
	return compression, nil
}

func checkDeflateParams(params []extParam) error {
	seen := map[string]bool{}
	for _, p := range params {
		name := strings.ToLower(p.name)
		if seen[name] {
			return fmt.Errorf("parameter %s given twice", shorten(name))
		}
		seen[name] = true
		switch name {
		case "server_no_context_takeover", "client_no_context_takeover":
			if p.hasValue {
				return fmt.Errorf("parameter %s takes no value", name)
			}
		case "server_max_window_bits":
			if !p.hasValue || !validWindowBits(p.value) {
				return errors.New("parameter server_max_window_bits needs a value of 8 to 15")
			}
		case "client_max_window_bits":
			return errors.New("the server set client_max_window_bits, which was not offered")
		default:
			return fmt.Errorf("unknown parameter %q", shorten(p.name))
		}
	}
	if !seen["server_no_context_takeover"] {
		return errors.New("the server keeps its compression context between messages (no server_no_context_takeover), which was not offered")
	}
	return nil
}

// validWindowBits: 1*DIGIT, no leading zero, 8..15 (RFC 7692 7.1.2).
func validWindowBits(v string) bool {
	if v == "" || v[0] == '0' || len(v) > 2 {
		return false
	}
	n, err := strconv.Atoi(v)
	return err == nil && n >= 8 && n <= 15
}

type extParam struct {
	name, value string
	hasValue    bool
}

type extension struct {
	name   string
	params []extParam
	err    error // a malformed parameter list
}

// parseExtensions parses Sec-WebSocket-Extensions values (RFC 6455 9.1):
// a comma-separated list of extension tokens, each with ";"-separated
// parameters, a parameter's value a token or a quoted string. A malformed
// parameter list is kept in the extension's err, so that the error names the
// extension; a malformed extension name fails the whole answer.
func parseExtensions(values []string) ([]extension, error) {
	var exts []extension
	for _, v := range values {
		s := v
		for {
			s = skipSpace(s)
			if s == "" {
				break
			}
			if s[0] == ',' {
				s = s[1:]
				continue
			}
			var ext extension
			ext.name, s = token(s)
			if ext.name == "" {
				return nil, fmt.Errorf("%w: malformed Sec-WebSocket-Extensions", ErrBadExtension)
			}
			s, ext.params, ext.err = parseParams(s)
			exts = append(exts, ext)
		}
	}
	return exts, nil
}

// parseParams parses "; name[=value]..." up to the next "," at the top level.
// On a syntax error it skips to that comma.
func parseParams(s string) (rest string, params []extParam, err error) {
	for {
		s = skipSpace(s)
		if s == "" || s[0] == ',' {
			return s, params, nil
		}
		if s[0] != ';' {
			return skipElement(s), nil, errors.New("malformed parameters")
		}
		s = skipSpace(s[1:])
		var p extParam
		p.name, s = token(s)
		if p.name == "" {
			return skipElement(s), nil, errors.New("malformed parameters")
		}
		s = skipSpace(s)
		if s != "" && s[0] == '=' {
			p.hasValue = true
			s = skipSpace(s[1:])
			if s != "" && s[0] == '"' {
				var ok bool
				p.value, s, ok = quoted(s)
				if !ok {
					return skipElement(s), nil, fmt.Errorf("malformed value of parameter %s", shorten(p.name))
				}
			} else {
				p.value, s = token(s)
				if p.value == "" {
					return skipElement(s), nil, fmt.Errorf("malformed value of parameter %s", shorten(p.name))
				}
			}
		}
		params = append(params, p)
	}
}

func skipSpace(s string) string { return strings.TrimLeft(s, " \t") }

// skipElement skips to the next top-level comma (outside quotes).
func skipElement(s string) string {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == ',':
			return s[i:]
		}
	}
	return ""
}

// token returns the RFC 7230 token at the start of s.
func token(s string) (string, string) {
	i := 0
	for i < len(s) && isTokenChar(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

// quoted parses a quoted-string at the start of s (which begins with '"').
func quoted(s string) (value, rest string, ok bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:], true
		case '\\':
			if i+1 == len(s) {
				return "", "", false
			}
			i++
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}

func isTokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// responseForConn is resp as the Conn keeps it: status and headers, no body,
// no request (its URL, headers and context would live as long as the
// connection).
func responseForConn(resp *http.Response) *http.Response {
	r := *resp
	r.Body = http.NoBody
	r.Request = nil
	r.TLS = resp.TLS
	return &r
}
