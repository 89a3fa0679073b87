package wstest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ff42ae21/wsclient"
	"github.com/ff42ae21/wsclient/wstest"
)

// subscriber subscribes in OnConnect, so it subscribes again on every
// reconnect.
type subscriber struct{ wsclient.BaseHandler }

func (subscriber) OnConnect(c *wsclient.Conn) error {
	return c.SendText(`{"op":"subscribe","channel":"trades"}`)
}

// start runs a client until the returned stop is called.
func start(url string, h wsclient.Handler, o *wsclient.Options) (c *wsclient.Client, stop func()) {
	o.Logger = slog.New(slog.DiscardHandler)
	o.Backoff = wsclient.Backoff{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond}
	c, err := wsclient.New(url, h, o)
	if err != nil {
		panic(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(context.Background()) }()
	return c, func() { _ = c.Close(context.Background(), wsclient.CloseNormal, ""); <-done }
}

// A handler re-subscribes after the server restarts.
func Example_resubscribeAfterRestart() {
	srv, _ := wstest.NewServer(nil) // in a test: srv := wstest.Start(t, nil)
	defer srv.Close()
	_, stop := start(srv.URL(), subscriber{}, &wsclient.Options{})
	defer stop()
	ctx := context.Background()

	c, _ := srv.NextConn(ctx)
	first, _ := c.ReadText(ctx)
	srv.Restart(20 * time.Millisecond) // drops it, refuses for 20 ms, comes back

	c, err := srv.NextConn(ctx) // the client reconnected
	if err != nil {
		fmt.Println(err)
		return
	}
	again, _ := c.ReadText(ctx)
	fmt.Println(first)
	fmt.Println(again)
	// Output:
	// {"op":"subscribe","channel":"trades"}
	// {"op":"subscribe","channel":"trades"}
}

// refresher fetches a new token when the server answers 401.
type refresher struct {
	wsclient.BaseHandler
	token func() string
}

func (r refresher) OnDisconnect(d wsclient.Disconnect) wsclient.Decision {
	var he *wsclient.HandshakeError
	if errors.As(d.Err, &he) && he.StatusCode == http.StatusUnauthorized {
		return wsclient.Reconnect().WithHeader(http.Header{"Authorization": {"Bearer " + r.token()}})
	}
	return d.Suggested
}

// A handler refreshes its token after a 401 and reconnects.
func Example_tokenRefreshAfter401() {
	srv, _ := wstest.NewServer(&wstest.Options{
		Check: func(r *http.Request) *wstest.Response {
			if r.Header.Get("Authorization") != "Bearer fresh" {
				return &wstest.Response{Status: http.StatusUnauthorized, Body: "token expired"}
			}
			return nil // upgrade
		},
	})
	defer srv.Close()
	h := refresher{token: func() string { return "fresh" }}
	_, stop := start(srv.URL(), h, &wsclient.Options{Header: http.Header{"Authorization": {"Bearer stale"}}})
	defer stop()

	if _, err := srv.NextConn(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range srv.Requests() {
		fmt.Println(r.Header.Get("Authorization"))
	}
	// Output:
	// Bearer stale
	// Bearer fresh
}

// The client waits out a 429's Retry-After before it tries again.
func Example_retryAfter429() {
	srv, _ := wstest.NewServer(nil)
	defer srv.Close()
	srv.Enqueue(wstest.Response{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"1"}}})
	_, stop := start(srv.URL(), wsclient.BaseHandler{}, &wsclient.Options{})
	defer stop()

	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := srv.NextConn(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("attempts:", srv.Stats().Requests)
	fmt.Println("waited the Retry-After:", time.Since(t0) >= time.Second)
	// Output:
	// attempts: 2
	// waited the Retry-After: true
}

// deadPeer reports why the connection was lost, and stops.
type deadPeer struct {
	wsclient.BaseHandler
	lost chan error
}

func (d deadPeer) OnDisconnect(dis wsclient.Disconnect) wsclient.Decision {
	d.lost <- dis.Err
	return wsclient.Stop()
}

// The keepalive finds a server that went silent (a half-open connection).
func Example_keepaliveFindsSilentServer() {
	srv, _ := wstest.NewServer(nil)
	defer srv.Close()
	h := deadPeer{lost: make(chan error, 1)}
	_, stop := start(srv.URL(), h, &wsclient.Options{PingInterval: 20 * time.Millisecond, PongTimeout: 50 * time.Millisecond})
	defer stop()

	c, _ := srv.NextConn(context.Background())
	c.Silence() // stops reading and writing; the socket stays open
	select {
	case err := <-h.lost:
		fmt.Println(errors.Is(err, wsclient.ErrKeepaliveTimeout))
	case <-time.After(5 * time.Second):
		fmt.Println("not found")
	}
	// Output: true
}

// lossNotifier tells when a connection was lost.
type lossNotifier struct {
	wsclient.BaseHandler
	lost chan struct{}
}

func (l lossNotifier) OnDisconnect(d wsclient.Disconnect) wsclient.Decision {
	select {
	case l.lost <- struct{}{}:
	default:
	}
	return d.Suggested
}

// Frames sent while the server is down wait in the outbox and go out after
// the reconnect.
func Example_outboxFlushedAfterReconnect() {
	srv, _ := wstest.NewServer(nil)
	defer srv.Close()
	h := lossNotifier{lost: make(chan struct{}, 1)}
	cl, stop := start(srv.URL(), h, &wsclient.Options{OutboxSize: 8})
	defer stop()
	ctx := context.Background()

	_, _ = srv.NextConn(ctx) // the first connection
	srv.Down()               // every connection dropped, new ones refused
	<-h.lost
	sent := make(chan error, 2)
	for _, s := range []string{"one", "two"} {
		go func() { sent <- cl.Send(ctx, wsclient.TextFrame(s)) }() // waits in the outbox
	}
	srv.Up()

	c, err := srv.NextConn(ctx) // the second

	if err != nil {
		fmt.Println(err)
		return
	}
	for range 2 {
		s, _ := c.ReadText(ctx)
		fmt.Println(s, <-sent)
	}
	// Unordered output:
	// one <nil>
	// two <nil>
}
