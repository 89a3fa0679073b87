package wsclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/internal/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// probe is a handler that calls one Client method from inside one of the
// user's functions, once, and reports what it returned.
type probe struct {
	c      *Client
	at     string
	call   func(c *Client) error
	once   sync.Once
	result chan error
	events chan string
}

func newProbe(at string, call func(*Client) error) *probe {
	return &probe{at: at, call: call, result: make(chan error, 1), events: make(chan string, 100)}
}

func (p *probe) hit(where string) {
	if where == p.at {
		p.once.Do(func() { p.result <- p.call(p.c) })
	}
	p.events <- where
}

func (p *probe) OnConnect(*Conn) error { p.hit("OnConnect"); return nil }
func (p *probe) HandleFrame(*Conn, Frame) error {
	p.hit("HandleFrame")
	return nil
}
func (p *probe) HandleInfo(c *Conn, msg any) error {
	if c.w == nil {
		p.hit("HandleInfo/detached")
	} else {
		p.hit("HandleInfo/open")
	}
	return nil
}
func (p *probe) OnDisconnect(d Disconnect) Decision { p.hit("OnDisconnect"); return d.Suggested }
func (p *probe) Terminate(error)                    { p.hit("Terminate") }

// wait waits for the callback where, or for Run to end (a Close from inside).
func (p *probe) wait(t *testing.T, where string) bool {
	t.Helper()
	timeout := time.After(3 * time.Second)
	for {
		select {
		case e := <-p.events:
			if e == where {
				return true
			}
		case <-p.c.Done():
			return false
		case <-timeout:
			t.Errorf("no %s within 3s", where)
			return false
		}
	}
}

// TestClientMethodsInsideCallbacks calls every Client method from inside every
// function of the user's that the client calls, with a ctx that never ends:
// none may deadlock (each must return within seconds), and each must give
// the documented answer.
func TestClientMethodsInsideCallbacks(t *testing.T) {
	bg := context.Background()
	methods := map[string]func(c *Client) error{
		"Send":     func(c *Client) error { return c.Send(bg, TextFrame("inside")) },
		"Info":     func(c *Client) error { return c.Info(bg, "from inside") },
		"Close":    func(c *Client) error { return c.Close(bg, CloseNormal, "inside") },
		"WaitOpen": func(c *Client) error { return c.WaitOpen(bg) },
		"Run":      func(c *Client) error { return c.Run(bg) },
		"State":    func(c *Client) error { _ = c.State(); return nil },
	}
	callbacks := []string{"OnStateChange", "HeaderFunc", "Proxy", "OnConnect", "HandleFrame",
		"HandleInfo/open", "OnDisconnect", "HandleInfo/detached", "Terminate"}
	for name, call := range methods {
		for _, at := range callbacks {
			t.Run(name+"/"+at, func(t *testing.T) {
				t.Parallel()
				p := newProbe(at, call)
				o := testOptions()
				o.OutboxSize = 4 // the outbox is what makes a Send wait
				o.InfoQueueSize = 1
				var hooks sync.Once
				o.OnStateChange = func(StateChange) { hooks.Do(func() { p.hit("OnStateChange") }) }
				o.HeaderFunc = func(context.Context) (http.Header, error) { p.hit("HeaderFunc"); return nil, nil }
				o.Proxy = func(*http.Request) (*urlT, error) { p.hit("Proxy"); return nil, nil }
				c, n, _ := fakeClient(t, p, o)
				p.c = c
				w := n.accept()
				runFake(t, c)
				script := func() {
					if !p.wait(t, "OnConnect") {
						return
					}
					w.send(transport.OpText, "hello")
					if !p.wait(t, "HandleFrame") {
						return
					}
					if c.Info(bg, "while open") != nil || !p.wait(t, "HandleInfo/open") {
						return
					}
					w.fail(&CloseError{Code: CloseServiceRestart})
					if !p.wait(t, "OnDisconnect") {
						return
					}
					waitFor(t, "reconnecting", func() bool { return c.State() == Reconnecting || c.State() == Closed })
					if c.Info(bg, "while down") != nil {
						return
					}
					p.wait(t, "HandleInfo/detached")
				}
				script()
				_ = c.Close(ctxTimeout(t, 3*time.Second), CloseNormal, "")
				select {
				case <-c.Done():
				case <-time.After(3 * time.Second):
					t.Fatal("Run did not end")
				}
				var got error
				select {
				case got = <-p.result:
				case <-time.After(3 * time.Second):
					t.Fatalf("%s inside %s did not return: deadlock", name, at)
				}
				check := expectInside[name]
				if check != nil {
					check(t, at, got)
				}
			})
		}
	}
}

type urlT = url.URL

// expectInside checks the documented answers of a method called from inside a callback.
var expectInside = map[string]func(t *testing.T, at string, err error){
	"Send": func(t *testing.T, at string, err error) {
		switch at {
		case "OnConnect", "HandleFrame", "HandleInfo/open":
			assert.NoError(t, err, "a Send on an open connection is written")
		case "Terminate":
			assert.ErrorIs(t, err, ErrClosed)
		default: // no connection: a callback cannot wait for the next one
			assert.ErrorIs(t, err, ErrNotConnected)
		}
	},
	"Info": func(t *testing.T, at string, err error) {
		if at == "Terminate" {
			assert.ErrorIs(t, err, ErrClosed)
			return
		}
		if err != nil {
			assert.ErrorIs(t, err, ErrInfoQueueFull)
		}
	},
	"Close": func(t *testing.T, at string, err error) { assert.NoError(t, err) },
	"Run":   func(t *testing.T, at string, err error) { assert.ErrorIs(t, err, ErrAlreadyRunning) },
	"WaitOpen": func(t *testing.T, at string, err error) {
		switch at {
		case "OnConnect", "HandleFrame", "HandleInfo/open":
			assert.NoError(t, err)
		case "Terminate":
			assert.ErrorIs(t, err, ErrClosed)
		default:
			assert.Error(t, err)
		}
	},
}

// TestSendInsideOnConnectIsOneOfItsFrames: a Client.Send made inside
// OnConnect is written at once, in order with OnConnect's own frames and
// before the frames that waited in the outbox.
func TestSendInsideOnConnectIsOneOfItsFrames(t *testing.T) {
	o := testOptions()
	o.OutboxSize = 8
	var c *Client
	rec := newRecorder()
	rec.onConnect = func(conn *Conn) error {
		require.NoError(t, conn.SendText("conn 1"))
		require.NoError(t, c.Send(context.Background(), TextFrame("client 2")))
		return conn.SendText("conn 3")
	}
	c, n, _ := fakeClient(t, rec, o)
	queued := make(chan error, 1)
	go func() { queued <- c.Send(context.Background(), TextFrame("outbox 4")) }()
	waitFor(t, "the outbox frame", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.outbox) == 1 })
	w := n.accept()
	runFake(t, c)
	require.NoError(t, <-queued)
	assert.Equal(t, []string{"conn 1", "client 2", "conn 3", "outbox 4"}, w.texts())
}

// TestStopDecisionNeverReportsReconnecting: a Stop decision goes Open ->
// Closed; Reconnecting is reported only when a retry is scheduled.
func TestStopDecisionNeverReportsReconnecting(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cause error
		want  []State
	}{
		{"stop", &CloseError{Code: CloseProtocolError}, []State{Connecting, Open, Closed}},
		{"reconnect", &CloseError{Code: CloseServiceRestart}, []State{Connecting, Open, Reconnecting}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions()
			var mu sync.Mutex
			var states []State
			o.OnStateChange = func(sc StateChange) { mu.Lock(); states = append(states, sc.To); mu.Unlock() }
			rec := newRecorder()
			c, n, clk := fakeClient(t, rec, o)
			w := n.accept()
			runFake(t, c)
			rec.next(t, "connect")
			w.fail(tc.cause)
			rec.next(t, "disconnect")
			if tc.name == "reconnect" {
				clk.waitTimers(t, 1) // the retry is scheduled
			} else {
				<-c.Done()
			}
			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, tc.want, states)
		})
	}
}

// TestCloseAlwaysEnds: Close with an invalid code or reason reports it and
// still ends the client, with 1000 and a valid reason on the wire.
func TestCloseAlwaysEnds(t *testing.T) {
	long := string(make([]byte, 200))
	for _, tc := range []struct {
		code   int
		reason string
		want   int
	}{
		{1005, "", 1000}, {999, "", 1000}, {5000, "", 1000}, {1006, "", 1000}, {1015, "", 1000}, {0, "", 1000},
		{1000, long, 1000}, {4000, "bad \xff utf8", 4000},
	} {
		rec := newRecorder()
		c, n, _ := fakeClient(t, rec, nil)
		w := n.accept()
		res := runFake(t, c)
		rec.next(t, "connect")
		errc := make(chan error, 1)
		go func() { errc <- c.Close(context.Background(), tc.code, tc.reason) }()
		waitFor(t, "the close frame", func() bool { sent, _, _ := w.closeFrame(); return sent })
		_, code, reason := w.closeFrame()
		assert.Equal(t, tc.want, code, "code sent for Close(%d)", tc.code)
		assert.LessOrEqual(t, len(reason), 123)
		assert.Error(t, <-errc, "Close(%d, %d bytes) reports the bad argument", tc.code, len(tc.reason))
		require.NoError(t, <-res)
		assert.Equal(t, Closed, c.State())
	}
}

// TestNilContextsNeverPanic: every method taking a ctx treats nil as
// Background (Run refuses it with an error).
func TestNilContextsNeverPanic(t *testing.T) {
	rec := newRecorder()
	o := testOptions()
	o.OutboxSize = 1
	c, n, _ := fakeClient(t, rec, o)
	//lint:ignore SA1012 a nil ctx is what this test is about
	assert.Error(t, c.Run(nil)) //nolint:staticcheck
	w := n.accept()
	runFake(t, c)
	//lint:ignore SA1012 a nil ctx is what this test is about
	require.NoError(t, c.WaitOpen(nil)) //nolint:staticcheck
	//lint:ignore SA1012 a nil ctx is what this test is about
	require.NoError(t, c.Send(nil, TextFrame("x"))) //nolint:staticcheck
	//lint:ignore SA1012 a nil ctx is what this test is about
	require.NoError(t, c.Info(nil, 1)) //nolint:staticcheck
	rec.next(t, "info")
	_ = w
	//lint:ignore SA1012 a nil ctx is what this test is about
	require.NoError(t, c.Close(nil, CloseNormal, "")) //nolint:staticcheck
	<-c.Done()
}

// TestWaitOpenAndDone: the package doc's snippet works: Run on a goroutine,
// WaitOpen, then Send; Done closes when Run returns.
func TestWaitOpenAndDone(t *testing.T) {
	rec := newRecorder()
	c, n, _ := fakeClient(t, rec, nil)
	ctx := ctxTimeout(t, 5*time.Second)
	res := runFake(t, c)
	waitErr := make(chan error, 1)
	go func() { waitErr <- c.WaitOpen(ctx) }()
	w := n.accept()
	require.NoError(t, <-waitErr)
	require.NoError(t, c.Send(ctx, TextFrame("hi")))
	assert.Equal(t, []string{"hi"}, w.texts())
	select {
	case <-c.Done():
		t.Fatal("Done closed while running")
	default:
	}
	require.NoError(t, c.Close(ctx, CloseNormal, ""))
	<-c.Done()
	<-res
	assert.ErrorIs(t, c.WaitOpen(ctx), ErrClosed)
}

// TestBackoffMaxBoundsTheJitter: no delay ever exceeds Backoff.Max, and the
// jitter spreads below it.
func TestBackoffMaxBoundsTheJitter(t *testing.T) {
	p := newBackoff(Backoff{Initial: 500 * time.Millisecond, Max: 2 * time.Second, Multiplier: 2, Jitter: 1})
	for _, r := range []float64{0.999999, 0.5, 0, 0.999999, 0.999999, 0.999999, 0.25} {
		p.rand = func() float64 { return r }
		d := p.next()
		assert.LessOrEqual(t, d, 2*time.Second)
	}
	p.rand = func() float64 { return 0.5 }
	assert.Equal(t, time.Second, p.next(), "at Max, the jitter spreads over [0, Max]")
}

// TestNewRejectsBadInput: bad ports and typed-nil handlers fail in New.
func TestNewRejectsBadPortsAndTypedNil(t *testing.T) {
	for _, u := range []string{"ws://host:99999/", "ws://host:0/", "ws://host:-1/", "ws://host:/", "ws://host:x/"} {
		_, err := New(u, &BaseHandler{}, nil)
		assert.Error(t, err, u)
	}
	var typedNil *recorder
	_, err := New("ws://host/", typedNil, nil)
	assert.Error(t, err, "a typed nil handler")
	_, err = New("ws://host:8080/", &BaseHandler{}, nil)
	assert.NoError(t, err)
}

var _ = errors.New

// TestSendsWaitForOnConnect: a Send from another goroutine while OnConnect
// runs waits for it, so OnConnect's frames (an authentication) go first.
func TestSendsWaitForOnConnect(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	rec := newRecorder()
	rec.onConnect = func(conn *Conn) error {
		close(entered)
		<-release
		return conn.SendText("auth")
	}
	c, n, _ := fakeClient(t, rec, nil)
	w := n.accept()
	runFake(t, c)
	<-entered
	sent := make(chan error, 1)
	go func() { sent <- c.Send(context.Background(), TextFrame("other")) }()
	select {
	case err := <-sent:
		t.Fatalf("Send returned during OnConnect: %v", err)
	case <-time.After(50 * time.Millisecond): // it must still be waiting: nothing lets it go
	}
	close(release)
	require.NoError(t, <-sent)
	assert.Equal(t, []string{"auth", "other"}, w.texts())
}

// TestWaitOpenWakesWhenTheConnectionIsSet: the state turns Open a moment
// before the connection is set; a WaitOpen that looked in between still
// returns (it once waited for another state change that never came).
func TestWaitOpenWakesWhenTheConnectionIsSet(t *testing.T) {
	waited := make(chan error, 1)
	o := testOptions()
	var c *Client
	o.OnStateChange = func(sc StateChange) {
		if sc.To == Open { // the state is Open, the connection not yet set
			go func() { waited <- c.WaitOpen(context.Background()) }()
			time.Sleep(20 * time.Millisecond) // let it look now, not after
		}
	}
	c, n, _ := fakeClient(t, newRecorder(), o)
	n.accept()
	runFake(t, c)
	select {
	case err := <-waited:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("WaitOpen never returned")
	}
}

// TestNoFrameAfterTheConnectionFailed: once a callback's error failed the
// connection (1011), frames that still arrive before its socket drops are not
// handed to HandleFrame.
func TestNoFrameAfterTheConnectionFailed(t *testing.T) {
	rec := newRecorder()
	rec.onInfo = func(*Conn, any) error { return errors.New("boom") }
	c, n, _ := fakeClient(t, rec, testOptions())
	w := n.accept()
	w.ignoreClose = true
	w.beforeAbort = func() {
		// The server still sends while the close frame goes out; the reader
		// takes all of it before the socket drops.
		for i := range 20 {
			w.send(transport.OpText, fmt.Sprint("late ", i))
		}
		deadline := time.Now().Add(2 * time.Second)
		for len(w.in) > 0 && time.Now().Before(deadline) {
			runtime.Gosched()
		}
	}
	runFake(t, c)
	rec.next(t, "connect")
	require.NoError(t, c.Info(context.Background(), "fail"))
	for {
		ev := rec.next(t, "info", "frame", "disconnect")
		if ev.kind == "frame" {
			t.Fatalf("HandleFrame(%q) after the connection failed", ev.frame.Data)
		}
		if ev.kind == "disconnect" {
			assert.Equal(t, CloseInternalError, CloseStatus(ev.disc.Err))
			return
		}
	}
}
