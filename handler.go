package wsclient

import (
	"net/http"
	"time"
)

// Handler is the behaviour a user writes. The client calls its methods one at a
// time, never concurrently, in the order the events happened, so the struct that
// implements Handler can keep its state in plain fields without locks.
//
// A non-nil error (or a panic) from OnConnect, HandleFrame or HandleInfo fails the
// current connection with close code 1011 and reaches OnDisconnect as the cause.
// The close frame goes out after any frame another goroutine is writing; frames
// that still arrive from the server meanwhile are not delivered.
type Handler interface {
	// OnConnect runs after every successful handshake, before any frame of the
	// connection is delivered. It may send (subscribe, authenticate); its frames
	// are written before the frames that waited in the outbox.
	OnConnect(c *Conn) error
	// OnDisconnect runs after every lost connection and every failed attempt, once
	// the connection's reader has stopped. Its Decision says what happens next;
	// the zero Decision follows d.Suggested.
	OnDisconnect(d Disconnect) Decision
	// HandleFrame receives every data frame (Text, Binary) whole and in wire order,
	// and the control frames Ping (already answered with a pong) and Pong.
	// f.Data belongs to the handler and may be kept.
	HandleFrame(c *Conn, f Frame) error
	// HandleInfo receives the messages posted with Client.Info, in any state.
	// c is the current connection, or a closed one when none is open (its Send
	// then returns ErrNotConnected).
	HandleInfo(c *Conn, msg any) error
}

// Terminator is implemented by handlers that want to know when Run ends.
// Terminate is called exactly once, on every exit path of Run, with Run's result.
type Terminator interface {
	Terminate(err error)
}

// BaseHandler gives no-op defaults; embed it and override what you need.
type BaseHandler struct{}

// OnConnect does nothing.
func (BaseHandler) OnConnect(*Conn) error { return nil }

// OnDisconnect follows the suggested decision.
func (BaseHandler) OnDisconnect(d Disconnect) Decision { return d.Suggested }

// HandleFrame ignores the frame.
func (BaseHandler) HandleFrame(*Conn, Frame) error { return nil }

// HandleInfo ignores the message.
func (BaseHandler) HandleInfo(*Conn, any) error { return nil }

// MessageType is the type of a frame. The values are those of RFC 6455 opcodes.
type MessageType int

// Frame types.
const (
	Text   MessageType = 1
	Binary MessageType = 2
	Ping   MessageType = 9
	Pong   MessageType = 10
)

func (t MessageType) String() string {
	switch t {
	case Text:
		return "text"
	case Binary:
		return "binary"
	case Ping:
		return "ping"
	case Pong:
		return "pong"
	}
	return "invalid"
}

// Frame is one whole message, or one control frame.
type Frame struct {
	Type MessageType
	Data []byte
}

// TextFrame returns a Text frame holding s.
func TextFrame(s string) Frame { return Frame{Type: Text, Data: []byte(s)} }

// BinaryFrame returns a Binary frame holding b.
func BinaryFrame(b []byte) Frame { return Frame{Type: Binary, Data: b} }

// Disconnect tells OnDisconnect why a connection ended or an attempt failed.
type Disconnect struct {
	// Err is the cause: a *CloseError for a close frame sent or received
	// (including the 1002/1007/1009/1011 the client sent when it failed the
	// connection), a *HandshakeError for a non-101 answer, ErrKeepaliveTimeout,
	// a *TLSError, a dial or network error, or the error a callback returned.
	Err error
	// Attempt counts consecutive failures, this one included (1 for the first).
	// It goes back to zero once a connection stays open for Options.StableAfter.
	// A disconnect that is no failure (Client.Close, the end of Run's ctx, the
	// handler's own Conn.Close) leaves it as it was: 0 when nothing failed.
	Attempt int
	// Uptime is how long the lost connection was open; zero for a failed attempt.
	Uptime time.Duration
	// Connected is true when a connection had been open (the loss of a
	// connection), false for an attempt that never got through the handshake.
	Connected bool
	// Suggested is what the default policy would do, with its delay.
	Suggested Decision
	// Final is true when the client is closing anyway (Client.Close or the end
	// of Run's ctx): the returned Decision is ignored.
	Final bool
}

type action uint8

const (
	actFollow action = iota // the zero Decision: follow Suggested
	actReconnect
	actReconnectAfter
	actStop
)

// Decision is what OnDisconnect returns: reconnect (after the policy's delay or a
// given one) or stop. It may carry a new URL or headers for the following attempts.
// The zero Decision means "follow Disconnect.Suggested".
type Decision struct {
	act    action
	delay  time.Duration
	url    string
	header http.Header
}

// Reconnect reconnects after the backoff policy's next delay.
func Reconnect() Decision { return Decision{act: actReconnect} }

// ReconnectAfter reconnects after d (zero or negative: at once).
func ReconnectAfter(d time.Duration) Decision {
	return Decision{act: actReconnectAfter, delay: max(d, 0)}
}

// Stop ends Run.
func Stop() Decision { return Decision{act: actStop} }

// WithURL returns d with a new URL for the following attempts (a redirect's
// Location, another endpoint). An invalid URL ends Run with the error.
func (d Decision) WithURL(u string) Decision { d.url = u; return d }

// WithHeader returns d with headers that replace Options.Header for the
// following attempts (a refreshed token).
func (d Decision) WithHeader(h http.Header) Decision { d.header = h.Clone(); return d }

// IsStop reports whether d stops the client.
func (d Decision) IsStop() bool { return d.act == actStop }

// Delay is the wait before the next attempt for a reconnect decision made by the
// policy or by ReconnectAfter; zero for Reconnect(), whose delay is the backoff's.
func (d Decision) Delay() time.Duration { return d.delay }

func (d Decision) String() string {
	switch d.act {
	case actStop:
		return "stop"
	case actReconnect:
		return "reconnect"
	case actReconnectAfter:
		return "reconnect after " + d.delay.String()
	}
	return "follow suggested"
}
