// Command bot is a reconnecting bot that speaks JSON: it subscribes in OnConnect
// (again after every reconnect), sends a heartbeat on a ticker through HandleInfo,
// decodes every message it receives, and fetches a fresh token for every attempt.
// By default it runs for 20 s against an embedded echo server that drops every
// connection every 3 s, and prints each reconnect; it then exits by itself.
//
//	go run ./examples/bot                             # embedded flaky server, 20 s
//	go run ./examples/bot -duration 5s -drop 1s       # shorter
//	go run ./examples/bot -url wss://host/feed -duration 0   # a real server, until Ctrl-C
//
// Flags: -url (default: the embedded server), -drop (how often the embedded
// server drops its connections), -duration (0: until interrupted).
package main

import (
	"context"
	"encoding/json"
	"errors"
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

// message is the bot's wire format, both ways. The embedded server echoes what
// the bot sends, so what comes back is a message too.
type message struct {
	Op      string    `json:"op"`                // "subscribe", "heartbeat"
	Channel string    `json:"channel,omitempty"` // subscribe
	Seq     int       `json:"seq,omitempty"`     // heartbeat: its number
	At      time.Time `json:"at,omitzero"`       // heartbeat: when it was sent
}

// tick is the message the ticker posts to HandleInfo.
type tick struct{ at time.Time }

type bot struct {
	wsclient.BaseHandler
	channels []string

	sent, skipped int            // heartbeats written, and skipped while not connected
	received      map[string]int // decoded messages by op
	malformed     int            // text frames that were not a message
	lastRTT       time.Duration  // of the latest heartbeat echoed back
}

// send encodes m and writes it as one text frame.
func send(c *wsclient.Conn, m message) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return c.Send(wsclient.Frame{Type: wsclient.Text, Data: data})
}

func (b *bot) OnConnect(c *wsclient.Conn) error {
	fmt.Printf("connected (connection #%d); subscribing to %v\n", c.Generation(), b.channels)
	for _, ch := range b.channels {
		if err := send(c, message{Op: "subscribe", Channel: ch}); err != nil {
			return fmt.Errorf("subscribing to %s: %w", ch, err)
		}
	}
	return nil
}

func (b *bot) HandleFrame(_ *wsclient.Conn, f wsclient.Frame) error {
	if f.Type != wsclient.Text {
		return nil
	}
	var m message
	if err := json.Unmarshal(f.Data, &m); err != nil || m.Op == "" {
		// A peer's garbage is not worth a reconnect: count it and go on.
		// (Returning the error would fail the connection with 1011.)
		b.malformed++
		return nil
	}
	b.received[m.Op]++
	if m.Op == "heartbeat" && !m.At.IsZero() {
		b.lastRTT = time.Since(m.At)
	}
	return nil
}

func (b *bot) HandleInfo(c *wsclient.Conn, msg any) error {
	t, ok := msg.(tick)
	if !ok {
		return nil
	}
	err := send(c, message{Op: "heartbeat", Seq: b.sent + b.skipped + 1, At: t.at})
	switch {
	case errors.Is(err, wsclient.ErrNotConnected):
		// Between connections: this heartbeat is skipped, not lost silently.
		b.skipped++
		fmt.Println("heartbeat skipped: not connected")
		return nil
	case err != nil:
		return err // fails this connection with 1011; the client reconnects
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
	fmt.Printf("bot stopped (%v): %d heartbeats sent, %d skipped; received %v, %d malformed; last heartbeat round trip %v\n",
		err, b.sent, b.skipped, b.received, b.malformed, b.lastRTT.Round(time.Microsecond))
}

func main() {
	url := flag.String("url", "", "ws:// or wss:// URL (default: an embedded server that drops connections)")
	dropEvery := flag.Duration("drop", 3*time.Second, "how often the embedded server drops connections")
	duration := flag.Duration("duration", 20*time.Second, "how long to run (0: until interrupted)")
	flag.Parse()
	if *dropEvery <= 0 {
		fmt.Fprintln(os.Stderr, "bot: -drop must be positive")
		os.Exit(2)
	}
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
		srv, err := echo.Start()
		if err != nil {
			return err
		}
		defer srv.Close()
		url = srv.URL()
		go dropLoop(ctx, srv, dropEvery)
	}

	var tokens atomic.Int64
	c, err := wsclient.New(url, &bot{channels: []string{"trades", "orders"}, received: map[string]int{}}, &wsclient.Options{
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
	go heartbeats(ctx, c, time.Second)

	err = c.Run(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return nil // the -duration ran out, or Ctrl-C: a normal end
	}
	return err
}

// heartbeats posts a tick to HandleInfo every interval until ctx ends or the
// client is closed.
func heartbeats(ctx context.Context, c *wsclient.Client, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			err := c.Info(ctx, tick{at: now})
			switch {
			case errors.Is(err, wsclient.ErrClosed), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
				return // Run has ended or is ending: nothing more to post
			case err != nil:
				fmt.Fprintln(os.Stderr, "bot: posting a heartbeat:", err)
				return
			}
		}
	}
}

// dropLoop makes the embedded server drop its connections every interval.
func dropLoop(ctx context.Context, srv *echo.Server, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fmt.Printf("server: dropping %d connection(s)\n", srv.Drop())
		}
	}
}
