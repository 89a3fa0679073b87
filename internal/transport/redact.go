package transport

import (
	"net/url"
	"strings"
)

// Redact returns u for error messages and logs: scheme, host and path, with
// the query's keys but none of its values (key=REDACTED), and neither the
// userinfo nor the fragment. A query part without "=" (?TOKEN) is all value
// as far as anyone can tell, so it is REDACTED whole. A relative URL (a Location header) keeps what it
// has of these.
func Redact(u *url.URL) string {
	if u == nil {
		return ""
	}
	var b strings.Builder
	if u.Scheme != "" {
		b.WriteString(u.Scheme)
		b.WriteString(":")
	}
	if u.Host != "" || u.Scheme != "" && u.Opaque == "" {
		b.WriteString("//")
		b.WriteString(u.Host)
	}
	if u.Opaque != "" {
		// scheme:opaque holds no host: it may hold anything, so none of it.
		b.WriteString("REDACTED")
	} else {
		b.WriteString(u.EscapedPath())
	}
	if u.RawQuery != "" || u.ForceQuery {
		b.WriteString("?")
		for i, part := range strings.Split(u.RawQuery, "&") {
			if i > 0 {
				b.WriteString("&")
			}
			key, _, hasValue := strings.Cut(part, "=")
			switch {
			case hasValue:
				b.WriteString(key)
				b.WriteString("=REDACTED")
			case part != "":
				b.WriteString("REDACTED")
			}
		}
	}
	return b.String()
}

// redactLocation is a Location header as Redact shows it.
func redactLocation(loc string) string {
	u, err := url.Parse(loc)
	if err != nil {
		return "(a Location that is not a URL)"
	}
	return Redact(u)
}
