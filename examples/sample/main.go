// Command sample is the Go twin of websocket_client's sample handler: it sends
// "message 1", prints every echo, answers "hello, this is message #N" up to
// message 4, and on the fifth state closes with 1000 and stops.
//
// With no -url it starts its own echo server on 127.0.0.1, so it needs no network:
//
//	go run ./examples/sample
//	go run ./examples/sample -url wss://example.com/echo
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/ff42ae21/wsclient"
	"github.com/ff42ae21/wsclient/examples/internal/echo"
)

// sample is the behaviour. Its state is a plain field: callbacks never overlap.
type sample struct {
	wsclient.BaseHandler
	state int
	delay time.Duration
}

func (h *sample) OnConnect(c *wsclient.Conn) error {
	h.state = 2
	return c.SendText("message 1")
}

func (h *sample) HandleFrame(c *wsclient.Conn, f wsclient.Frame) error {
	if f.Type != wsclient.Text {
		return nil // pings are answered by the client; pongs need nothing
	}
	fmt.Printf("Received msg %q\n", f.Data)
	if h.state == 5 {
		return c.Close(wsclient.CloseNormal, "done")
	}
	time.Sleep(h.delay)
	reply := fmt.Sprintf("hello, this is message #%d", h.state)
	h.state++
	return c.SendText(reply)
}

func (h *sample) OnDisconnect(d wsclient.Disconnect) wsclient.Decision {
	if wsclient.CloseStatus(d.Err) == wsclient.CloseNormal {
		return wsclient.Stop()
	}
	fmt.Printf("Disconnected (%v); %v\n", d.Err, d.Suggested)
	return d.Suggested
}

func (h *sample) Terminate(err error) {
	fmt.Printf("Websocket closed in state %d with reason %v\n", h.state, err)
}

func main() {
	url := flag.String("url", "", "ws:// or wss:// URL of an echo server (default: start one on 127.0.0.1)")
	delay := flag.Duration("delay", time.Second, "pause before each reply, as in the original")
	flag.Parse()
	if err := run(*url, *delay); err != nil {
		fmt.Fprintln(os.Stderr, "sample:", err)
		os.Exit(1)
	}
}

func run(url string, delay time.Duration) error {
	if url == "" {
		srv, err := echo.Start("127.0.0.1:0")
		if err != nil {
			return err
		}
		defer srv.Close()
		url = srv.URL
		fmt.Println("started a local echo server at", url)
	}
	c, err := wsclient.New(url, &sample{delay: delay}, &wsclient.Options{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return c.Run(ctx)
}
