package wsclient

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// State is where the client is in its life.
type State int32

const (
	// Idle: created, Run not called yet.
	Idle State = iota
	// Connecting: dialing, TLS and the upgrade handshake are under way (and,
	// after a failed attempt, OnDisconnect is deciding).
	Connecting
	// Open: the connection is up; Send writes. After the connection was lost,
	// the state stays Open while OnDisconnect decides.
	Open
	// Closing: a close frame was sent; waiting for the server's close.
	Closing
	// Reconnecting: no connection; the next attempt is scheduled.
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

// event is what moves the state machine: something the owner goroutine
// waited for, or a decision one of its actions took.
type event uint8

const (
	evRun          event = iota // Run was called
	evDialed                    // the handshake succeeded
	evDialFailed                // the attempt failed
	evLost                      // the open connection's reader has returned
	evInfo                      // Info messages are queued
	evPing                      // the keepalive timer fired
	evClose                     // Client.Close was called
	evConnClose                 // a close frame went out (Conn.Close, or Client.Close's)
	evCloseTimeout              // no close frame from the server within CloseTimeout
	evAbort                     // Close's ctx ended: drop the socket now
	evCtxDone                   // Run's ctx ended
	evReconnect                 // the decision: try again after a delay
	evStop                      // the decision: stop for good
	evRetry                     // the backoff delay is over
	numEvents
)

var eventNames = [numEvents]string{"run", "dialed", "dial-failed", "lost", "info", "ping", "close",
	"conn-close", "close-timeout", "abort", "ctx-done", "reconnect", "stop", "retry"}

func (e event) String() string {
	if e < numEvents {
		return eventNames[e]
	}
	return "invalid"
}

// transition is one row of the state machine: the state it leads to, and what
// the owner does. The new state is set first, so the action (OnConnect, say)
// sees the state it belongs to.
type transition struct {
	to State
	do func(o *owner, in input)
}

// transitions is the whole behaviour of the owner goroutine. A (state, event)
// pair that is not in the table cannot happen in that state: it is ignored
// and logged at Debug. statemachine_test.go walks every pair.
var transitions = map[State]map[event]transition{
	Idle: {
		evRun:     {Connecting, (*owner).startDial},
		evClose:   {Closed, (*owner).finish},
		evCtxDone: {Closed, (*owner).finish},
	},
	Connecting: {
		evDialed:     {Open, (*owner).opened},
		evDialFailed: {Connecting, (*owner).dialFailed},
		evInfo:       {Connecting, (*owner).infosDetached},
		evClose:      {Connecting, (*owner).cutDial},
		evCtxDone:    {Connecting, (*owner).cutDial},
		evReconnect:  {Reconnecting, (*owner).armRetry},
		evStop:       {Closed, (*owner).finish},
	},
	Open: {
		evInfo:      {Open, (*owner).infosOpen},
		evPing:      {Open, (*owner).keepaliveTick},
		evClose:     {Closing, (*owner).closeStarted},
		evConnClose: {Closing, (*owner).closeStarted},
		evAbort:     {Closing, (*owner).drop},
		evCtxDone:   {Closing, (*owner).goingAway},
		evLost:      {Open, (*owner).lost},
		evReconnect: {Reconnecting, (*owner).armRetry},
		evStop:      {Closed, (*owner).finish},
	},
	Closing: {
		evInfo:         {Closing, (*owner).infosOpen},
		evPing:         {Closing, (*owner).nothing}, // no ping after a close frame
		evClose:        {Closing, (*owner).closeStarted},
		evConnClose:    {Closing, (*owner).closeStarted},
		evCloseTimeout: {Closing, (*owner).closeTimedOut},
		evAbort:        {Closing, (*owner).drop},
		evCtxDone:      {Closing, (*owner).goingAway},
		evLost:         {Closing, (*owner).lost},
		evReconnect:    {Reconnecting, (*owner).armRetry},
		evStop:         {Closed, (*owner).finish},
	},
	Reconnecting: {
		evRetry:   {Connecting, (*owner).startDial},
		evInfo:    {Reconnecting, (*owner).infosDetached},
		evClose:   {Closed, (*owner).finish},
		evCtxDone: {Closed, (*owner).finish},
	},
	Closed: {},
}

// StateChange is passed to Options.OnStateChange: the lifecycle as a stream
// of events, enough for metrics (connection durations, reconnect delays).
type StateChange struct {
	From, To State
	// Cause is the error that led to the change, if any.
	Cause error
	// Generation numbers the connection attempts: it grows by one per attempt.
	Generation uint64
	// Uptime is how long the connection was open, on the change that follows
	// its end (From Open or Closing, To Reconnecting or Closed).
	Uptime time.Duration
	// Delay is the wait before the next attempt, on a change to Reconnecting.
	Delay time.Duration
}

// machine holds the state. Only the owner goroutine sets it; any goroutine may
// read it or wait for a change.
type machine struct {
	c       *Client
	state   atomic.Int32
	since   atomic.Int64 // UnixNano of the last change
	mu      sync.Mutex
	changed chan struct{} // closed and replaced at every change
}

func (m *machine) init(c *Client) {
	m.c, m.changed = c, make(chan struct{})
	m.since.Store(c.clk.Now().UnixNano())
}

func (m *machine) current() State { return State(m.state.Load()) }

// watch returns the state and a channel closed at the next change.
func (m *machine) watch() (State, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.current(), m.changed
}

// wake wakes the watchers without a change of state: the connection they
// wait for (WaitOpen) was set.
func (m *machine) wake() {
	m.mu.Lock()
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

// set is the one function that writes the state. A repeat is a no-op; Closed
// is final. OnStateChange runs under the handler lock, like every callback.
func (m *machine) set(to State, in input, gen uint64, uptime time.Duration) {
	from, ev, cause := m.current(), in.ev, in.err
	if to == from || from == Closed {
		return
	}
	m.mu.Lock()
	m.state.Store(int32(to))
	m.since.Store(m.c.clk.Now().UnixNano())
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
	if log := m.c.logBase.Load(); log.Enabled(context.Background(), slog.LevelDebug) {
		// state: the new one, as on every other line (c.logger's attribute).
		attrs := []any{"generation", gen, "state", to, "from", from, "to", to, "event", ev}
		if cause != nil {
			attrs = append(attrs, "cause", cause)
		}
		log.Debug("wsclient: state", attrs...)
	}
	if notify := m.c.opts.OnStateChange; notify != nil {
		sc := StateChange{From: from, To: to, Cause: cause, Generation: gen}
		if (from == Open || from == Closing) && (to == Reconnecting || to == Closed) {
			sc.Uptime = uptime
		}
		if to == Reconnecting {
			sc.Delay = in.delay
		}
		if err := m.c.callback("OnStateChange", func(Handler) error { notify(sc); return nil }); err != nil {
			m.c.logger().Error("wsclient: OnStateChange failed", "err", err)
		}
	}
}
