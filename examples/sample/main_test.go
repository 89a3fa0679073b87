package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient"
	"github.com/ff42ae21/wsclient/examples/internal/echo"
)

// output is an io.Writer the test can read while the client writes to it.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// lines returns the lines of out that start with prefix.
func lines(out, prefix string) []string {
	var got []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			got = append(got, l)
		}
	}
	return got
}

func startEcho(t *testing.T) *echo.Server {
	t.Helper()
	srv, err := echo.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestSample runs main's logic, with its own echo server, as `go run . -delay 10ms`.
func TestSample(t *testing.T) {
	var out output
	begin := time.Now()
	if err := runMain(testContext(t), []string{"-delay", "10ms"}, &out); err != nil {
		t.Fatalf("runMain: %v\n%s", err, out.String())
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("took %v with -delay 10ms", d)
	}
	want := []string{
		`Received msg "message 1"`,
		`Received msg "hello, this is message #2"`,
		`Received msg "hello, this is message #3"`,
		`Received msg "hello, this is message #4"`,
		`Websocket closed in state "done" with reason wsclient: client closed with 1000`,
	}
	got := append(lines(out.String(), "Received msg"), lines(out.String(), "Websocket closed")...)
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s\nfull output:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), out.String())
	}
	if !strings.HasPrefix(out.String(), "started a local echo server at ws://127.0.0.1:") {
		t.Errorf("output does not start with the echo server's address:\n%s", out.String())
	}
}

// TestSampleReconnectKeepsState: the server closes the connection (a close
// frame, 1001) when it gets "hello, this is message #3", at state 4. The client
// reconnects, starts again from "message 1" and goes on from state 4.
func TestSampleReconnectKeepsState(t *testing.T) {
	srv := startEcho(t)
	srv.CloseOn("hello, this is message #3", wsclient.CloseGoingAway, "restart")
	var out output
	h, err := run(testContext(t), srv.URL(), 10*time.Millisecond, &out)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	want := []string{
		`Received msg "message 1"`,
		`Received msg "hello, this is message #2"`,
		// #3 was answered with the close: the new connection starts again.
		`Received msg "message 1"`,
		`Received msg "hello, this is message #4"`,
	}
	if got := lines(out.String(), "Received msg"); !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s\nfull output:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), out.String())
	}
	wantDisc := `Disconnected (wsclient: server closed with 1001 "restart"); reconnecting in state 4`
	if got := lines(out.String(), "Disconnected"); !slices.Equal(got, []string{wantDisc}) {
		t.Errorf("disconnect lines %q, want %q", got, wantDisc)
	}
	if h.state != 5 {
		t.Errorf("final state %d, want 5", h.state)
	}
	if got := lines(out.String(), "Websocket closed"); !slices.Equal(got, []string{`Websocket closed in state "done" with reason wsclient: client closed with 1000`}) {
		t.Errorf("terminate lines %q", got)
	}
}

// withStart posts "start" (the Erlang `Pid ! start`) right after the sample's
// own "message 1" cast.
type withStart struct{ *sample }

func (w withStart) OnConnect(c *wsclient.Conn) error {
	if err := w.sample.OnConnect(c); err != nil {
		return err
	}
	return w.client.Info(context.Background(), start)
}

// TestSampleStart: websocket_info(start, ...) replies "erlang message received"
// without changing the state; its echo then counts as a message like any other.
func TestSampleStart(t *testing.T) {
	srv := startEcho(t)
	var out output
	h := newSample(10*time.Millisecond, &out)
	c, err := wsclient.New(srv.URL(), withStart{h}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.client = c
	if err := c.Run(testContext(t)); err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	want := []string{
		`Received msg "message 1"`,
		`Received msg "erlang message received"`,
		`Received msg "hello, this is message #2"`,
		`Received msg "hello, this is message #3"`,
	}
	if got := lines(out.String(), "Received msg"); !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s\nfull output:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), out.String())
	}
}

// TestSampleOnce: init returns {once, _}, so a first dial that fails is not
// retried and Run returns its error.
func TestSampleOnce(t *testing.T) {
	srv := startEcho(t)
	url := srv.URL()
	srv.Close() // nothing listens there now
	var out output
	if _, err := run(testContext(t), url, time.Millisecond, &out); err == nil {
		t.Fatalf("run against a closed port returned nil\n%s", out.String())
	}
	if got := lines(out.String(), "Received msg"); len(got) != 0 {
		t.Errorf("received %q", got)
	}
}
