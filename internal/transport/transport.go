// Package transport is the one place that speaks RFC 6455 (and RFC 7692): it
// dials (TCP, an HTTP CONNECT or SOCKS5 proxy, TLS, the upgrade, extension
// negotiation), reads and writes frames, validates close frames, UTF-8 and
// limits, and turns every protocol failure into a *CloseError or a typed
// error. The same code runs on every path (ws, wss, either through a proxy):
// the frame codec sits on top of whatever net.Conn the dial produced.
//
// It knows nothing of the client package: it takes a Config and returns its
// own values. The client package re-exports the error types users see.
//
// Concurrency: one goroutine reads (ReadMessage); any number may write
// (WriteMessage serializes them, fairly, on a mutex); Ping, Close and the
// answers to the peer's pings never wait for a data write: they are queued and
// written between two frames by whoever holds the frame lock, so the reader
// and the keepalive never block on a stuck socket.
package transport

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// Opcode is an RFC 6455 frame opcode.
type Opcode byte

// Opcodes of RFC 6455 section 5.2.
const (
	OpContinuation Opcode = 0
	OpText         Opcode = 1
	OpBinary       Opcode = 2
	OpClose        Opcode = 8
	OpPing         Opcode = 9
	OpPong         Opcode = 10
)

// IsControl reports whether op is a control opcode (close, ping, pong).
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

// Message is a whole data message (Text, Binary) or one control frame (Ping,
// Pong). Data belongs to the receiver.
type Message struct {
	Op   Opcode
	Data []byte
}

// Close codes (RFC 6455 7.4.1 and the IANA registry).
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001
	CloseProtocolError   = 1002
	CloseUnsupportedData = 1003
	CloseNoStatus        = 1005
	CloseAbnormal        = 1006
	CloseInvalidPayload  = 1007
	ClosePolicyViolation = 1008
	CloseMessageTooBig   = 1009
	CloseMandatoryExt    = 1010
	CloseInternalError   = 1011
	CloseServiceRestart  = 1012
	CloseTryAgainLater   = 1013
	CloseBadGateway      = 1014
	CloseTLSHandshake    = 1015
)

// ValidCloseCode reports whether code may appear in a close frame (RFC 6455
// 7.4.1, 7.4.2, IANA registrations 1012-1014): the same set may be sent and
// received.
func ValidCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003,
		code >= 1007 && code <= 1014,
		code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// MaxCloseReason is the longest close reason in bytes (125 - 2 for the code).
const MaxCloseReason = 123

// MaxControlPayload is the largest control frame payload (RFC 6455 5.5).
const MaxControlPayload = 125

// CloseError is a close frame sent or received. Local is true when this side
// sent it: a deliberate close, or this side failing the connection over a
// protocol violation (1002, 1007, 1009, ...), in which case Err says why.
// Code 1006 (never on the wire) means the connection ended without a close
// frame; Err then holds the network error.
type CloseError struct {
	Local  bool
	Code   int
	Reason string
	Err    error
}

func (e *CloseError) Error() string {
	who := "server"
	if e.Local {
		who = "client"
	}
	var s string
	if e.Code == CloseAbnormal {
		s = "wsclient: connection closed without a close frame (1006)"
	} else {
		s = fmt.Sprintf("wsclient: %s closed with %d", who, e.Code)
	}
	if e.Reason != "" {
		s += " " + strconv.Quote(e.Reason)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *CloseError) Unwrap() error { return e.Err }

// HandshakeError is a handshake answered with something other than a valid
// 101. Header holds the response headers (Location of a redirect,
// Retry-After); Body holds up to 1 KiB of the response body. StatusCode is 101
// when the answer was a 101 that broke the rules (a bad accept key, a
// subprotocol or extension not offered): Err says which.
type HandshakeError struct {
	StatusCode int
	Header     http.Header
	Body       []byte
	Err        error
}

func (e *HandshakeError) Error() string {
	s := fmt.Sprintf("wsclient: handshake failed: HTTP %d", e.StatusCode)
	if e.StatusCode >= 300 && e.StatusCode < 400 {
		if loc := e.Header.Get("Location"); loc != "" {
			s += " to " + redactLocation(loc) // no userinfo or query values in errors
		}
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *HandshakeError) Unwrap() error { return e.Err }

// TLSError is a certificate that one side refused during the TLS handshake:
// the server's certificate failed this client's verification, or the server
// refused this client's certificate (Remote), by a TLS alert or, when it had
// asked for a certificate, perhaps by dropping the connection (ErrCertDropped).
type TLSError struct {
	Err    error
	Remote bool
}

func (e *TLSError) Error() string {
	if errors.Is(e.Err, ErrCertDropped) {
		// Also what a restart or a load balancer's drop looks like.
		return fmt.Sprintf("wsclient: TLS: %v (perhaps a refused client certificate; "+
			"retried by default, and stopped after %d such drops in a row)", e.Err, CertDropsBeforeStop)
	}
	what := "TLS certificate verification failed"
	if e.Remote {
		what = "TLS: the server refused this client's certificate"
	}
	return "wsclient: " + what + " (not retried by default: certificate errors do not heal by retrying): " + e.Err.Error()
}

func (e *TLSError) Unwrap() error { return e.Err }

// Errors of the handshake, inside a *HandshakeError (StatusCode 101) or a
// dial error. Each means "retrying the same way cannot help" except
// ErrHandshakeTooLarge.
var (
	ErrBadSubprotocol = errors.New("server chose a subprotocol that was not offered")
	ErrBadExtension   = errors.New("server chose an extension that was not offered")
	// ErrCompression: the server's permessage-deflate answer is one this
	// client cannot use (context takeover on the server's side, window bits
	// it did not offer, an unknown parameter).
	ErrCompression       = errors.New("unusable permessage-deflate answer")
	ErrBadAccept         = errors.New("invalid upgrade response (Upgrade, Connection or Sec-WebSocket-Accept)")
	ErrHandshakeTooLarge = errors.New("handshake response over 1 MiB")
)

// Errors of writes.
var (
	// ErrClosed: the connection has ended (or is ending); nothing of the
	// message was written.
	ErrClosed = errors.New("wsclient: connection closed")
	// ErrCloseSent: a close frame was sent; nothing of the message was written.
	ErrCloseSent = errors.New("wsclient: close frame sent")
)
