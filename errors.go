package wsclient

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// Sentinel errors. Compare with errors.Is.
var (
	// ErrNotConnected: a Send while no connection is open and the outbox is off,
	// or a Send on a Conn whose connection has ended.
	ErrNotConnected = errors.New("wsclient: not connected")
	// ErrOutboxFull: a Send while not connected found the outbox full.
	ErrOutboxFull = errors.New("wsclient: outbox full")
	// ErrKeepaliveTimeout: no frame arrived within PongTimeout after a ping.
	ErrKeepaliveTimeout = errors.New("wsclient: keepalive timeout: no frame from the peer after ping")
	// ErrClosed: the client has been closed (or Run has ended); nothing more is sent.
	ErrClosed = errors.New("wsclient: client closed")
	// ErrAlreadyRunning: Run was called twice on one Client.
	ErrAlreadyRunning = errors.New("wsclient: Run already called")
	// ErrInvalidUTF8: a Text frame to send does not hold valid UTF-8.
	ErrInvalidUTF8 = errors.New("wsclient: text frame is not valid UTF-8")
)

// Close codes of RFC 6455 section 7.4.1 that the client uses.
const (
	CloseNormal           = 1000
	CloseGoingAway        = 1001
	CloseProtocolError    = 1002
	CloseUnsupportedData  = 1003
	CloseNoStatus         = 1005
	CloseAbnormal         = 1006
	CloseInvalidPayload   = 1007
	ClosePolicyViolation  = 1008
	CloseMessageTooBig    = 1009
	CloseMandatoryExt     = 1010
	CloseInternalError    = 1011
	CloseServiceRestart   = 1012
	CloseTryAgainLater    = 1013
	CloseBadGateway       = 1014
	closeTLSHandshakeFail = 1015
)

// CloseError is a close frame sent or received. Local is true when the client sent
// it: a deliberate Close, or the client failing the connection (1002, 1007, 1009,
// 1011). Err, when set, is what made the client fail the connection.
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
	s := fmt.Sprintf("wsclient: %s closed with %d", who, e.Code)
	if e.Reason != "" {
		s += " " + strconv.Quote(e.Reason)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *CloseError) Unwrap() error { return e.Err }

// CloseStatus returns the close code in err's chain, or -1 when there is none.
func CloseStatus(err error) int {
	var ce *CloseError
	if errors.As(err, &ce) && ce != nil {
		return ce.Code
	}
	return -1
}

// HandshakeError is a handshake answered with something other than a valid 101.
// Header holds the response headers (Location of a redirect, Retry-After); Body
// holds up to 1 KiB of the response body, for diagnosis.
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
			s += " to " + loc
		}
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *HandshakeError) Unwrap() error { return e.Err }

// callbackError is a callback's error or recovered panic.
type callbackError struct {
	callback string
	err      error
}

func (e *callbackError) Error() string { return "wsclient: " + e.callback + ": " + e.err.Error() }
func (e *callbackError) Unwrap() error { return e.err }

// PanicError is a panic recovered from a callback; Stack is the goroutine's stack.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }
