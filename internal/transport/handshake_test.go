package transport

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAcceptKeyRFC6455(t *testing.T) {
	t.Parallel()
	// RFC 6455 1.3.
	assert.Equal(t, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", acceptKey("dGhlIHNhbXBsZSBub25jZQ=="))
	k1, k2 := newChallengeKey(), newChallengeKey()
	assert.NotEqual(t, k1, k2)
	b, err := decodeKey(k1)
	require.NoError(t, err)
	assert.Len(t, b, 16)
}

func TestUpgradeRequest(t *testing.T) {
	t.Parallel()
	cfg := &Config{
		URL:          &url.URL{Scheme: "wss", Host: "h.example:8443", Path: "/p", RawQuery: "a=1", User: url.UserPassword("u", "p"), Fragment: "f"},
		Header:       http.Header{"X-A": {"1"}, "Host": {"v.example"}},
		Subprotocols: []string{"a", "b"},
		Compression:  true,
	}
	req := upgradeRequest(cfg, "KEY")
	h := map[string][]string(req.Header) // the names as RFC 6455 writes them
	assert.Equal(t, "GET", req.Method)
	assert.Equal(t, "/p?a=1", req.URL.RequestURI())
	assert.Nil(t, req.URL.User)
	assert.Equal(t, "v.example", req.Host)
	assert.Equal(t, []string{"websocket"}, req.Header["Upgrade"])
	assert.Equal(t, []string{"Upgrade"}, req.Header["Connection"])
	assert.Equal(t, []string{"KEY"}, h["Sec-WebSocket-Key"])
	assert.Equal(t, []string{"13"}, h["Sec-WebSocket-Version"])
	assert.Equal(t, []string{"a, b"}, h["Sec-WebSocket-Protocol"])
	assert.Equal(t, []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"}, h["Sec-WebSocket-Extensions"])
	assert.Equal(t, []string{"1"}, req.Header["X-A"])
	assert.NotContains(t, req.Header, "Host")
	assert.Equal(t, "wss", cfg.URL.Scheme, "cfg untouched")

	req = upgradeRequest(&Config{URL: &url.URL{Scheme: "ws", Host: "h"}}, "K")
	assert.Equal(t, "/", req.URL.RequestURI())
	assert.Equal(t, "h", req.Host)
	assert.NotContains(t, req.Header, "Sec-WebSocket-Protocol")
	assert.NotContains(t, req.Header, "Sec-WebSocket-Extensions")
}

func TestNegotiateExtensions(t *testing.T) {
	t.Parallel()
	const pmd = "permessage-deflate"
	for _, tc := range []struct {
		name    string
		values  []string
		offered bool
		want    bool
		err     error  // nil: accepted
		msg     string // in the error
	}{
		{name: "none, not offered", offered: false},
		{name: "none, offered (server declined)", offered: true},
		{name: "empty header", values: []string{""}, offered: true},
		{name: "both no_context_takeover", values: []string{pmd + "; server_no_context_takeover; client_no_context_takeover"}, offered: true, want: true},
		{name: "server_no_context_takeover only", values: []string{pmd + "; server_no_context_takeover"}, offered: true, want: true},
		{name: "case and spaces", values: []string{" Permessage-Deflate ;Server_No_Context_Takeover ; client_no_context_takeover "}, offered: true, want: true},
		{name: "empty list elements", values: []string{", " + pmd + "; server_no_context_takeover ,"}, offered: true, want: true},
		{name: "server_max_window_bits=8", values: []string{pmd + "; server_no_context_takeover; server_max_window_bits=8"}, offered: true, want: true},
		{name: "server_max_window_bits=15", values: []string{pmd + "; server_no_context_takeover; server_max_window_bits=15"}, offered: true, want: true},
		{name: "server_max_window_bits quoted", values: []string{pmd + `; server_no_context_takeover; server_max_window_bits="10"`}, offered: true, want: true},

		{name: "not offered", values: []string{pmd + "; server_no_context_takeover"}, err: ErrBadExtension, msg: `"permessage-deflate"`},
		{name: "another extension", values: []string{"x-webkit-deflate-frame"}, offered: true, err: ErrBadExtension, msg: `"x-webkit-deflate-frame"`},
		{name: "another extension beside", values: []string{pmd + "; server_no_context_takeover, foo"}, offered: true, err: ErrBadExtension, msg: `"foo"`},
		{name: "malformed name", values: []string{"; server_no_context_takeover"}, offered: true, err: ErrBadExtension, msg: "malformed"},
		{name: "server context takeover", values: []string{pmd}, offered: true, err: ErrCompression, msg: "no server_no_context_takeover"},
		{name: "client_no_context_takeover only", values: []string{pmd + "; client_no_context_takeover"}, offered: true, err: ErrCompression, msg: "no server_no_context_takeover"},
		{name: "client_max_window_bits", values: []string{pmd + "; server_no_context_takeover; client_max_window_bits"}, offered: true, err: ErrCompression, msg: "client_max_window_bits"},
		{name: "client_max_window_bits=10", values: []string{pmd + "; server_no_context_takeover; client_max_window_bits=10"}, offered: true, err: ErrCompression, msg: "client_max_window_bits"},
		{name: "server_max_window_bits=7", values: []string{pmd + "; server_no_context_takeover; server_max_window_bits=7"}, offered: true, err: ErrCompression, msg: "8 to 15"},
		{name: "server_max_window_bits=16", values: []string{pmd + "; server_no_context_takeover; server_max_window_bits=16"}, offered: true, err: ErrCompression, msg: "8 to 15"},
		{name: "server_max_window_bits=08", values: []string{pmd + "; server_no_context_takeover; server_max_window_bits=08"}, offered: true, err: ErrCompression, msg: "8 to 15"},
		{name: "server_max_window_bits no value", values: []string{pmd + "; server_no_context_takeover; server_max_window_bits"}, offered: true, err: ErrCompression, msg: "8 to 15"},
		{name: "server_max_window_bits empty", values: []string{pmd + "; server_no_context_takeover; server_max_window_bits="}, offered: true, err: ErrCompression, msg: "malformed value"},
		{name: "server_max_window_bits word", values: []string{pmd + "; server_no_context_takeover; server_max_window_bits=abc"}, offered: true, err: ErrCompression, msg: "8 to 15"},
		{name: "unterminated quote", values: []string{pmd + `; server_no_context_takeover; server_max_window_bits="10`}, offered: true, err: ErrCompression, msg: "malformed value"},
		{name: "duplicate server_no_context_takeover", values: []string{pmd + "; server_no_context_takeover; server_no_context_takeover"}, offered: true, err: ErrCompression, msg: "twice"},
		{name: "duplicate client_no_context_takeover", values: []string{pmd + "; server_no_context_takeover; client_no_context_takeover; client_no_context_takeover"}, offered: true, err: ErrCompression, msg: "twice"},
		{name: "duplicate server_max_window_bits", values: []string{pmd + "; server_no_context_takeover; server_max_window_bits=9; server_max_window_bits=9"}, offered: true, err: ErrCompression, msg: "twice"},
		{name: "value on a flag", values: []string{pmd + "; server_no_context_takeover=1"}, offered: true, err: ErrCompression, msg: "takes no value"},
		{name: "unknown parameter", values: []string{pmd + "; server_no_context_takeover; foo=1"}, offered: true, err: ErrCompression, msg: `unknown parameter "foo"`},
		{name: "empty parameter", values: []string{pmd + ";; server_no_context_takeover"}, offered: true, err: ErrCompression, msg: "malformed"},
		{name: "garbage after name", values: []string{pmd + " x"}, offered: true, err: ErrCompression, msg: "malformed"},
		{name: "two answers, one header", values: []string{pmd + "; server_no_context_takeover, " + pmd + "; server_no_context_takeover"}, offered: true, err: ErrCompression, msg: "two permessage-deflate answers"},
		{name: "two answers, two headers", values: []string{pmd + "; server_no_context_takeover", pmd + "; server_no_context_takeover"}, offered: true, err: ErrCompression, msg: "two permessage-deflate answers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := negotiateExtensions(tc.values, tc.offered)
			if tc.err == nil {
				require.NoError(t, err)
				assert.Equal(t, tc.want, got)
				return
			}
			require.ErrorIs(t, err, tc.err)
			assert.False(t, got)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}

// TestDialNegotiation runs the negotiation through Dial: the answer reaches
// Compressed, a refusal is a *HandshakeError{101}.
func TestDialNegotiation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ext  string
		want bool
		err  error
	}{
		{"permessage-deflate; server_no_context_takeover; client_no_context_takeover", true, nil},
		{"permessage-deflate; server_no_context_takeover; server_max_window_bits=10", true, nil},
		{"", false, nil},
		{"permessage-deflate; client_no_context_takeover", false, ErrCompression},
		{"permessage-deflate; server_no_context_takeover; client_max_window_bits=9", false, ErrCompression},
	} {
		t.Run(tc.ext, func(t *testing.T) {
			srv := newRawServerWith101(t, tc.ext)
			c, err := dialT(t, &Config{URL: &url.URL{Scheme: "ws", Host: srv.addr()}, Compression: true})
			if tc.err != nil {
				var he *HandshakeError
				require.ErrorAs(t, err, &he)
				assert.Equal(t, 101, he.StatusCode)
				assert.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, c.Compressed())
		})
	}
}
