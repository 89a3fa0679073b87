package wsclient

import (
	"errors"
	"fmt"

	"github.com/ff42ae21/wsclient/internal/transport"
)

// Sentinel errors. Compare with errors.Is.
var (
	// ErrNotConnected: a Send while no connection is open and the outbox is off,
	// a Send on a Conn whose connection has ended, or a Send from inside a
	// callback that would have to wait for the next connection (a callback
	// cannot wait for it: the next connection comes after the callback returns).
	ErrNotConnected = errors.New("wsclient: not connected")
	// ErrOutboxFull: a Send while not connected found the outbox full.
	ErrOutboxFull = errors.New("wsclient: outbox full")
	// ErrInfoQueueFull: an Info from inside a callback found the Info queue
	// full (from any other goroutine, Info waits for room instead).
	ErrInfoQueueFull = errors.New("wsclient: Info queue full")
	// ErrKeepaliveTimeout: no frame arrived within PongTimeout after a ping.
	ErrKeepaliveTimeout = errors.New("wsclient: keepalive timeout: no frame from the peer after ping")
	// ErrClosed: the client has been closed (or Run has ended); nothing more is sent.
	ErrClosed = errors.New("wsclient: client closed")
	// ErrAlreadyRunning: Run was called twice on one Client.
	ErrAlreadyRunning = errors.New("wsclient: Run already called")
	// ErrInvalidUTF8: a Text frame to send does not hold valid UTF-8.
	ErrInvalidUTF8 = errors.New("wsclient: text frame is not valid UTF-8")
	// ErrBadSubprotocol: the server chose a subprotocol that was not offered
	// (inside a *HandshakeError).
	ErrBadSubprotocol = transport.ErrBadSubprotocol
	// ErrBadExtension: the server accepted an extension that was not offered
	// (inside a *HandshakeError).
	ErrBadExtension = transport.ErrBadExtension
	// ErrCompression: the server's permessage-deflate answer is one this
	// client cannot use (inside a *HandshakeError); the policy stops.
	ErrCompression = transport.ErrCompression
	// ErrCertDropped: the server asked for a client certificate and then
	// closed the connection before any answer, without a TLS alert (inside
	// a *TLSError with Remote set). Some servers refuse a certificate so, but
	// a restart looks the same: the policy retries it, and stops when it
	// comes three times in a row.
	ErrCertDropped = transport.ErrCertDropped
)

// Close codes of RFC 6455 section 7.4.1 and the IANA registry.
const (
	CloseNormal          = transport.CloseNormal
	CloseGoingAway       = transport.CloseGoingAway
	CloseProtocolError   = transport.CloseProtocolError
	CloseUnsupportedData = transport.CloseUnsupportedData
	CloseNoStatus        = transport.CloseNoStatus
	CloseAbnormal        = transport.CloseAbnormal
	CloseInvalidPayload  = transport.CloseInvalidPayload
	ClosePolicyViolation = transport.ClosePolicyViolation
	CloseMessageTooBig   = transport.CloseMessageTooBig
	CloseMandatoryExt    = transport.CloseMandatoryExt
	CloseInternalError   = transport.CloseInternalError
	CloseServiceRestart  = transport.CloseServiceRestart
	CloseTryAgainLater   = transport.CloseTryAgainLater
	CloseBadGateway      = transport.CloseBadGateway
)

// CloseError is a close frame sent or received. Local is true when the client
// sent it: a deliberate Close, or the client failing the connection (1002,
// 1007, 1009, 1011). Err, when set, is what made the client fail the
// connection. Code 1006 (CloseAbnormal, never sent on the wire) means the
// connection ended without a close frame; Err then holds the network error.
//
//	type CloseError struct {
//		Local  bool
//		Code   int
//		Reason string
//		Err    error
//	}
type CloseError = transport.CloseError

// HandshakeError is a handshake answered with something other than a valid 101.
// Header holds the response headers (Location of a redirect, Retry-After); Body
// holds up to 1 KiB of the response body, for diagnosis. StatusCode 101 with
// Err set is a 101 that broke the rules (ErrBadSubprotocol, ErrBadExtension,
// ErrCompression, a wrong Sec-WebSocket-Accept).
//
//	type HandshakeError struct {
//		StatusCode int
//		Header     http.Header
//		Body       []byte
//		Err        error
//	}
type HandshakeError = transport.HandshakeError

// TLSError is a certificate that one side refused during the TLS handshake: the
// server's certificate failed this client's verification (unknown authority,
// wrong host name, expired, ...), or the server refused this client's
// certificate (Remote): with a TLS alert, or by dropping the connection after
// it asked for a certificate (ErrCertDropped). The default policy does not
// retry it: a wrong, expired or unknown certificate does not heal by
// retrying. ErrCertDropped is the exception, because a server's restart
// looks the same: it is retried, and stops after three in a row. An OnDisconnect
// that expects a rotation on disk (Options.TLSFiles) may return Reconnect.
//
//	type TLSError struct {
//		Err    error
//		Remote bool
//	}
type TLSError = transport.TLSError

// ProxyError is a proxy that refused to open the tunnel (a CONNECT answered
// with another status than 200, 407 for missing or wrong credentials, or a
// SOCKS5 refusal).
//
//	type ProxyError struct {
//		StatusCode int         // the CONNECT answer's status; 0 for SOCKS5
//		Header     http.Header // the CONNECT answer's headers (Proxy-Authenticate); nil for SOCKS5
//		SOCKSReply int         // the SOCKS5 reply code when the CONNECT was refused; 0 otherwise
//		Auth       bool        // about credentials: HTTP 407, or SOCKS5 refusing them or needing a method not offered
//	}
type ProxyError = transport.ProxyError

// CloseStatus returns the close code in err's chain, or -1 when there is none.
func CloseStatus(err error) int {
	var ce *CloseError
	if errors.As(err, &ce) && ce != nil {
		return ce.Code
	}
	return -1
}

// CallbackError is the error a callback of yours returned, or its recovered
// panic (Err is then a *PanicError), with the callback's name ("OnConnect",
// "HandleFrame", "HandleInfo", ...). It reaches OnDisconnect inside the
// *CloseError of the 1011 the client sent.
type CallbackError struct {
	Callback string
	Err      error
}

func (e *CallbackError) Error() string { return "wsclient: " + e.Callback + ": " + e.Err.Error() }
func (e *CallbackError) Unwrap() error { return e.Err }

// PanicError is a panic recovered from a callback; Stack is the goroutine's stack.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }
