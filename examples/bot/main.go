// Command bot is a reconnecting bot: it subscribes in OnConnect (again after every
// reconnect), sends a heartbeat on a ticker through HandleInfo, and fetches a fresh
// token for every attempt. By default it runs against an embedded echo server that
// drops every connection every few seconds, and prints each reconnect.
//
//	go run ./examples/bot                       # embedded flaky server, 20 s
//	go run ./examples/bot -url wss://host/feed -duration 0
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"time"

	"github.com/ff42ae21/wsclient"
	"github.com/ff42ae21/wsclient/examples/internal/echo"
)

// tick is the message the ticker posts to HandleInfo.
type tick struct{ at time.Time }

type bot struct {
	wsclient.BaseHandler
	channels []string
	sent     int
	received int
}

func (b *bot) OnConnect(c *wsclient.Conn) error {
	fmt.Printf("connected (connection #%d); subscribing to %v\n", c.Generation(), b.channels)
	for _, ch := range b.channels {
		if err := c.SendText(`{"op":"subscribe","channel":"` + ch + `"}`); err != nil {
			return err
		}
	}
	return nil
}

func (b *bot) HandleFrame(_ *wsclient.Conn, f wsclient.Frame) error {
	if f.Type == wsclient.Text {
		b.received++
	}
	return nil
}

func (b *bot) HandleInfo(c *wsclient.Conn, msg any) error {
	t, ok := msg.(tick)
	if !ok {
		return nil
	}
	err := c.SendText(fmt.Sprintf(`{"op":"heartbeat","at":%q}`, t.at.Format(time.RFC3339Nano)))
	if err != nil {
		fmt.Println("heartbeat skipped:", err) // not connected right now: nothing is lost silently
		return nil
	}
	b.sent++
	return nil
}

func (b *bot) OnDisconnect(d wsclient.Disconnect) wsclient.Decision {
	if !d.Final {
		fmt.Printf("disconnected after %v (attempt %d): %v; %v\n",
			d.Uptime.Round(time.Millisecond), d.Attempt, d.Err, d.Suggested)
	}
	return d.Suggested
}

func (b *bot) Terminate(err error) {
	fmt.Printf("bot stopped (%v): %d heartbeats sent, %d messages received\n", err, b.sent, b.received)
}

func main() {
	url := flag.String("url", "", "ws:// or wss:// URL (default: an embedded server that drops connections)")
	dropEvery := flag.Duration("drop", 3*time.Second, "how often the embedded server drops connections")
	duration := flag.Duration("duration", 20*time.Second, "how long to run (0: until interrupted)")
	flag.Parse()
	if err := run(*url, *dropEvery, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "bot:", err)
		os.Exit(1)
	}
}

func run(url string, dropEvery, duration time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	if url == "" {
		srv, err := echo.Start("127.0.0.1:0")
		if err != nil {
			return err
		}
		defer srv.Close()
		url = srv.URL
		go func() {
			t := time.NewTicker(dropEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					fmt.Printf("server: dropping %d connection(s)\n", srv.Drop())
				}
			}
		}()
	}

	var tokens atomic.Int64
	c, err := wsclient.New(url, &bot{channels: []string{"trades", "orders"}}, &wsclient.Options{
		// A fresh token for every attempt, as if from an auth service.
		HeaderFunc: func(context.Context) (http.Header, error) {
			return http.Header{"Authorization": {fmt.Sprintf("Bearer token-%d", tokens.Add(1))}}, nil
		},
		PingInterval: 5 * time.Second,
		PongTimeout:  3 * time.Second,
		Backoff:      wsclient.Backoff{Initial: 200 * time.Millisecond, Max: 5 * time.Second},
		StableAfter:  2 * time.Second,
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				if err := c.Info(ctx, tick{at: now}); err != nil {
					return
				}
			}
		}
	}()
	err = c.Run(ctx)
	if err == context.DeadlineExceeded {
		return nil // the -duration ran out: a normal end
	}
	return err
}
