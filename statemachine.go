package wsclient

import (
	"log/slog"
	"sync/atomic"
)

// State is where the client is in its life.
type State int32

const (
	// Idle: created, Run not called yet.
	Idle State = iota
	// Connecting: dialing, TLS and the upgrade handshake are under way.
	Connecting
	// Open: the connection is up; Send writes.
	Open
	// Closing: a close frame was sent; waiting for the server's close.
	Closing
	// Reconnecting: no connection; waiting for the next attempt (or for
	// OnDisconnect to decide).
	Reconnecting
	// Closed: Run has ended or is ending. Final.
	Closed
)

func (s State) String() string {
	switch s {
	case Idle:
		return "idle"
	case Connecting:
		return "connecting"
	case Open:
		return "open"
	case Closing:
		return "closing"
	case Reconnecting:
		return "reconnecting"
	case Closed:
		return "closed"
	}
	return "invalid"
}

// event is what moves the state machine.
type event uint8

const (
	evRun       event = iota // Run was called
	evConnected              // handshake done
	evFailed                 // attempt failed
	evClosing                // a close frame was sent (Client.Close, Conn.Close)
	evLost                   // the open connection ended and the client may reconnect
	evRetry                  // the backoff wait is over
	evStop                   // stop for good: a Stop decision, Close, ctx end
)

var eventNames = [...]string{"run", "connected", "failed", "closing", "lost", "retry", "stop"}

func (e event) String() string { return eventNames[e] }

// transitions is the whole state machine. A (state, event) pair that is not in
// the table cannot happen in that state: it is ignored and logged.
var transitions = map[State]map[event]State{
	Idle:         {evRun: Connecting, evStop: Closed},
	Connecting:   {evConnected: Open, evFailed: Reconnecting, evStop: Closed},
	Open:         {evClosing: Closing, evLost: Reconnecting, evStop: Closed},
	Closing:      {evLost: Reconnecting, evStop: Closed},
	Reconnecting: {evRetry: Connecting, evStop: Closed},
	Closed:       {},
}

// StateChange is passed to Options.OnStateChange.
type StateChange struct {
	From, To State
	// Cause is the error that led to the change, if any.
	Cause error
	// Generation numbers the connections: it grows by one per attempt.
	Generation uint64
}

// machine holds the state. Only the client's owner goroutine calls fire; any
// goroutine may read the state.
type machine struct {
	state  atomic.Int32
	log    *slog.Logger
	notify func(StateChange)
}

func (m *machine) current() State { return State(m.state.Load()) }

// fire is the one function that writes the state. It reports whether ev applied.
func (m *machine) fire(ev event, gen uint64, cause error) bool {
	from := m.current()
	to, ok := transitions[from][ev]
	if !ok {
		m.log.Debug("wsclient: event ignored", "state", from, "event", ev, "generation", gen)
		return false
	}
	if to == from {
		return true
	}
	m.state.Store(int32(to))
	attrs := []any{"from", from, "to", to, "event", ev, "generation", gen}
	if cause != nil {
		attrs = append(attrs, "cause", cause)
	}
	m.log.Debug("wsclient: state", attrs...)
	if m.notify != nil {
		m.notify(StateChange{From: from, To: to, Cause: cause, Generation: gen})
	}
	return true
}
