package wstest_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fastOptions are client options with millisecond timings.
func fastOptions() *wsclient.Options {
	return &wsclient.Options{
		HandshakeTimeout: 2 * time.Second,
		PingInterval:     -1,
		CloseTimeout:     time.Second,
		Backoff:          wsclient.Backoff{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond, Multiplier: 2},
		StableAfter:      time.Hour,
		Logger:           quiet,
		Proxy:            wsclient.NoProxy,
	}
}

// recorder is a Handler that reports its callbacks on channels.
type recorder struct {
	wsclient.BaseHandler
	connects    chan *wsclient.Conn
	frames      chan wsclient.Frame
	disconnects chan wsclient.Disconnect
	decide      func(d wsclient.Disconnect) wsclient.Decision
}

func newRecorder() *recorder {
	return &recorder{
		connects:    make(chan *wsclient.Conn, 100),
		frames:      make(chan wsclient.Frame, 1000),
		disconnects: make(chan wsclient.Disconnect, 100),
	}
}

func (r *recorder) OnConnect(c *wsclient.Conn) error { r.connects <- c; return nil }

// HandleFrame records the data messages (not pings and pongs).
func (r *recorder) HandleFrame(_ *wsclient.Conn, f wsclient.Frame) error {
	if f.Type == wsclient.Text || f.Type == wsclient.Binary {
		r.frames <- f
	}
	return nil
}

func (r *recorder) OnDisconnect(d wsclient.Disconnect) wsclient.Decision {
	r.disconnects <- d
	if r.decide != nil {
		return r.decide(d)
	}
	return wsclient.Decision{}
}

// receive takes the next value of ch or fails the test after 5 s.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s within 5s", what)
		var zero T
		return zero
	}
}

// run starts a client on url and stops it at cleanup.
func run(t *testing.T, url string, h wsclient.Handler, o *wsclient.Options) *wsclient.Client {
	t.Helper()
	c, err := wsclient.New(url, h, o)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = c.Run(context.Background())
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(ctx, wsclient.CloseNormal, "")
		wg.Wait()
	})
	return c
}

// opened waits for the client's next OnConnect. (Not Client.WaitOpen: it can
// miss the moment its connection becomes current, and wait for ever.)
func opened(t *testing.T, rec *recorder) {
	t.Helper()
	receive(t, rec.connects, "OnConnect")
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
