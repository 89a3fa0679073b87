package transport

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"ws://example.com/feed", "ws://example.com/feed"},
		{"wss://user:pass@example.com:8443/a/b?token=SECRET&x=1#frag", "wss://example.com:8443/a/b?token=REDACTED&x=REDACTED"},
		{"ws://example.com/?flag&k=v", "ws://example.com/?REDACTED&k=REDACTED"},
		{"ws://example.com/feed?SECRETQ", "ws://example.com/feed?REDACTED"},
		{"ws://example.com/?a=1&&b", "ws://example.com/?a=REDACTED&&REDACTED"},
		{"ws://example.com/p%20q?", "ws://example.com/p%20q?"},
		{"socks5://bob:pw@127.0.0.1:1080", "socks5://127.0.0.1:1080"},
		{"/relative/path?sig=abc", "/relative/path?sig=REDACTED"},
		{"//other.example/x?a=b", "//other.example/x?a=REDACTED"},
		{"mailto:someone@example.com", "mailto:REDACTED"},
	} {
		u, err := url.Parse(tc.in)
		require.NoError(t, err)
		assert.Equal(t, tc.want, Redact(u), tc.in)
	}
	assert.Equal(t, "", Redact(nil))
}

func TestHandshakeErrorRedactsLocation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ loc, want string }{
		{"https://u:pw@login.example/cb?code=SECRET", "wsclient: handshake failed: HTTP 302 to https://login.example/cb?code=REDACTED"},
		{"/other?t=SECRET", "wsclient: handshake failed: HTTP 302 to /other?t=REDACTED"},
		{"http://[::1:bad", "wsclient: handshake failed: HTTP 302 to (a Location that is not a URL)"},
	} {
		e := &HandshakeError{StatusCode: 302, Header: map[string][]string{"Location": {tc.loc}}}
		assert.Equal(t, tc.want, e.Error())
	}
}
