package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ff42ae21/wsclient"
)

var closeNames = map[int]string{
	1000: "normal closure", 1001: "going away", 1002: "protocol error", 1003: "unsupported data",
	1005: "no status", 1006: "abnormal closure", 1007: "invalid payload", 1008: "policy violation",
	1009: "message too big", 1010: "mandatory extension", 1011: "internal error",
	1012: "service restart", 1013: "try again later", 1014: "bad gateway", 1015: "TLS handshake",
}

// closeText is "close 1012 (service restart)", with the reason when there is one.
func closeText(code int, reason string) string {
	s := "close " + strconv.Itoa(code)
	if n, ok := closeNames[code]; ok {
		s += " (" + n + ")"
	}
	if reason != "" {
		s += " " + strconv.Quote(reason)
	}
	return s
}

// describe says in a few words why a connection ended or an attempt failed.
func describe(err error) string {
	var (
		ce  *wsclient.CloseError
		he  *wsclient.HandshakeError
		tle *wsclient.TLSError
		pe  *wsclient.ProxyError
		ne  *net.OpError
	)
	switch {
	case err == nil:
		return "no error"
	case errors.Is(err, wsclient.ErrKeepaliveTimeout) && !errors.As(err, &ce):
		return trim(err.Error())
	case errors.As(err, &ce):
		switch {
		case ce.Code == wsclient.CloseAbnormal:
			if ce.Err != nil {
				return "connection lost: " + describe(ce.Err)
			}
			return "connection lost"
		case ce.Local && ce.Err != nil:
			return describe(ce.Err) + "; sent " + closeText(ce.Code, ce.Reason)
		case ce.Local:
			return closeText(ce.Code, ce.Reason) + " sent"
		}
		return closeText(ce.Code, ce.Reason)
	case errors.As(err, &he):
		if he.StatusCode == http.StatusSwitchingProtocols {
			return "bad handshake: " + trim(fmt.Sprint(he.Err))
		}
		s := strconv.Itoa(he.StatusCode)
		if t := http.StatusText(he.StatusCode); t != "" {
			s += " " + t
		}
		if ra := he.Header.Get("Retry-After"); ra != "" {
			s += " (Retry-After: " + ra + ")"
		}
		if he.StatusCode >= 300 && he.StatusCode < 400 {
			// The library's message carries the Location without secrets.
			if _, loc, ok := strings.Cut(he.Error(), " to "); ok {
				s += " to " + strings.SplitN(loc, ": ", 2)[0]
			}
		}
		return s
	case errors.As(err, &tle):
		if tle.Remote {
			return "certificate error: the server refused our certificate: " + trim(tle.Err.Error())
		}
		return "certificate error: " + trim(tle.Err.Error())
	case errors.As(err, &pe):
		return trim(pe.Error())
	case errors.As(err, &ne):
		return trim(ne.Error()) // "dial tcp 127.0.0.1:8080: connect: connection refused"
	}
	return trim(err.Error())
}

// trim drops the library's "wsclient: " prefixes.
func trim(s string) string { return strings.ReplaceAll(s, "wsclient: ", "") }

// fmtDelay is a delay for people: 1.3s, 450ms, 2m0s.
func fmtDelay(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(time.Millisecond).String()
	}
	return d.String()
}

// fmtRTT is a round trip: 0.41ms, 12.3ms.
func fmtRTT(d time.Duration) string {
	return strconv.FormatFloat(ms(d), 'f', -1, 64) + "ms"
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
