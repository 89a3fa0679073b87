package wsprom

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/ff42ae21/wsclient"
)

// The cause classes, the values of the "cause" label.
const (
	causeClosed    = iota // Client.Close or the end of Run's ctx (a nil cause too)
	causeClose            // a close frame: the server's, or the handler's own Conn.Close
	causeHandshake        // the server answered the upgrade with something else than a valid 101
	causeTLS              // a certificate refused by one side
	causeProxy            // the proxy refused the tunnel
	causeKeepalive        // no frame from the peer within PongTimeout of a ping
	causeNetwork          // dial and socket errors, EOF, timeouts, a connection gone without a close frame (1006)
	causeCallback         // a callback's error or panic (the client failed the connection with 1011)
	causeOther            // anything else (a HeaderFunc or DialLimiter error, a bad URL from a Decision)
	numCauses
)

var causeNames = [numCauses]string{"closed", "close", "handshake", "tls", "proxy", "keepalive", "network", "callback", "other"}

// CauseClass is the class of a disconnect's or failed attempt's cause, as the
// "cause" label has it: one of closed, close, handshake, tls, proxy,
// keepalive, network, callback and other.
func CauseClass(err error) string { return causeNames[causeIndex(err)] }

// causeIndex classifies err as errors.Is and errors.As would, by the first
// rule of the list below that matches anywhere in err's tree, without their
// allocations (it runs in the OnStateChange hook):
//
//	nil, ErrClosed, context.Canceled            closed
//	*PanicError, *CallbackError                 callback
//	ErrKeepaliveTimeout                         keepalive
//	*TLSError, *ProxyError, *HandshakeError     tls, proxy, handshake
//	*CloseError                                 by its fields: 1006 network; a deliberate close this
//	                                            side sent (no Err), or the 1001 sent at Run's
//	                                            deadline, closed; any other close
//	net.Error, io.EOF, io.ErrUnexpectedEOF,
//	context.DeadlineExceeded                    network
//	anything else                               other
func causeIndex(err error) int {
	if err == nil {
		return causeClosed
	}
	best, class := levelOther, causeOther
	visit(err, &best, &class)
	return class
}

// The ranks of the rules of causeIndex, first first.
const (
	levelClosed = iota
	levelPanic
	levelKeepalive
	levelTLS
	levelProxy
	levelHandshake
	levelCloseFrame
	levelNetwork
	levelOther
)

// visit ranks err and every error it wraps, keeping the first rule matched.
func visit(err error, best, class *int) {
	for err != nil && *best > levelClosed {
		if l, c := rank(err); l < *best {
			*best, *class = l, c
		}
		if ce, ok := err.(*wsclient.CloseError); ok && ce == nil {
			return // its Unwrap would panic
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				visit(e, best, class)
			}
			return
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		default:
			return
		}
	}
}

// rank is the first rule of causeIndex that err itself (not what it wraps) matches.
func rank(err error) (level, class int) {
	switch e := err.(type) {
	case *wsclient.PanicError, *wsclient.CallbackError:
		return levelPanic, causeCallback
	case *wsclient.TLSError:
		return levelTLS, causeTLS
	case *wsclient.ProxyError:
		return levelProxy, causeProxy
	case *wsclient.HandshakeError:
		return levelHandshake, causeHandshake
	case *wsclient.CloseError:
		if e == nil {
			break
		}
		switch {
		case e.Code == wsclient.CloseAbnormal:
			return levelCloseFrame, causeNetwork
		case e.Local && e.Err == nil:
			return levelCloseFrame, causeClosed // a deliberate close: Client.Close, Conn.Close
		case e.Local && e.Code == wsclient.CloseGoingAway && errors.Is(e.Err, context.DeadlineExceeded):
			return levelCloseFrame, causeClosed // Run's ctx reached its deadline
		}
		return levelCloseFrame, causeClose
	}
	switch {
	case is(err, wsclient.ErrClosed), is(err, context.Canceled):
		return levelClosed, causeClosed
	case is(err, wsclient.ErrKeepaliveTimeout):
		return levelKeepalive, causeKeepalive
	case is(err, io.EOF), is(err, io.ErrUnexpectedEOF), is(err, context.DeadlineExceeded):
		return levelNetwork, causeNetwork
	}
	if _, ok := err.(net.Error); ok {
		return levelNetwork, causeNetwork
	}
	return levelOther, causeOther
}

// is is one step of errors.Is: err itself is target, or says so.
func is(err, target error) bool {
	if err == target {
		return true
	}
	x, ok := err.(interface{ Is(error) bool })
	return ok && x.Is(target)
}

// The close-code classes, the values of the "code" label: the codes of RFC
// 6455 and the IANA registry one by one, the application ranges as one value
// each, "none" for a cause without a close code.
var codeNames = []string{"none",
	"1000", "1001", "1002", "1003", "1005", "1006", "1007", "1008",
	"1009", "1010", "1011", "1012", "1013", "1014", "3xxx", "4xxx", "other"}

const (
	codeNone  = 0
	code3xxx  = 15
	code4xxx  = 16
	codeOther = 17
	numCodes  = 18
)

// CloseCodeClass is the class of a close code, as the "code" label has it:
// "none" for no code (a negative one, what wsclient.CloseStatus returns for a
// cause without a close frame), the registered codes 1000-1003 and 1005-1014
// as themselves, "3xxx" and "4xxx" for the two application ranges, "other"
// for the rest.
func CloseCodeClass(code int) string { return codeNames[codeIndex(code)] }

func codeIndex(code int) int {
	switch {
	case code < 0:
		return codeNone
	case code >= 1000 && code <= 1003:
		return 1 + code - 1000
	case code >= 1005 && code <= 1014:
		return 5 + code - 1005
	case code >= 3000 && code <= 3999:
		return code3xxx
	case code >= 4000 && code <= 4999:
		return code4xxx
	}
	return codeOther
}

// closeCode is wsclient.CloseStatus without its allocation: the code of the
// first *CloseError in err's tree (depth first, as errors.As looks), or -1.
func closeCode(err error) int {
	for err != nil {
		if ce, ok := err.(*wsclient.CloseError); ok {
			if ce == nil {
				return -1 // as CloseStatus has it
			}
			return ce.Code
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if code := closeCode(e); code >= 0 {
					return code
				}
			}
			return -1
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		default:
			return -1
		}
	}
	return -1
}
