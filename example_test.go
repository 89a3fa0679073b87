package wsclient_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/ff42ae21/wsclient"
)

// ticker is a handler that subscribes on every connect and counts what it gets.
type ticker struct {
	wsclient.BaseHandler
	prices int
}

func (t *ticker) OnConnect(c *wsclient.Conn) error {
	return c.SendText(`{"op":"subscribe","channel":"prices"}`)
}

func (t *ticker) HandleFrame(c *wsclient.Conn, f wsclient.Frame) error {
	if f.Type == wsclient.Text {
		t.prices++
	}
	return nil
}

func Example() {
	c, err := wsclient.New("wss://example.com/feed", &ticker{}, &wsclient.Options{
		PingInterval: 15 * time.Second,
		OutboxSize:   64, // Send waits for the next connection instead of failing
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		if err := c.Run(ctx); err != nil {
			log.Print(err)
		}
	}()
	if err := c.Send(ctx, wsclient.TextFrame(`{"op":"ping"}`)); err != nil {
		log.Print(err)
	}
	_ = c.Close(ctx, wsclient.CloseNormal, "bye")
}

// refresher re-authenticates after a 401 instead of stopping.
type refresher struct {
	wsclient.BaseHandler
	token func() string
}

func (r *refresher) OnDisconnect(d wsclient.Disconnect) wsclient.Decision {
	var he *wsclient.HandshakeError
	if errors.As(d.Err, &he) && he.StatusCode == http.StatusUnauthorized && d.Attempt < 3 {
		return wsclient.Reconnect().WithHeader(http.Header{"Authorization": {"Bearer " + r.token()}})
	}
	return d.Suggested
}

func ExampleDecision() {
	h := &refresher{token: func() string { return "fresh" }}
	_, err := wsclient.New("wss://example.com/feed", h, nil)
	fmt.Println(err)
	// Output: <nil>
}

func ExampleNew_badURL() {
	_, err := wsclient.New("http://example.com/feed", wsclient.BaseHandler{}, nil)
	fmt.Println(err)
	// Output: wsclient: bad URL "http://example.com/feed": scheme must be ws or wss
}

func ExampleCloseStatus() {
	err := error(&wsclient.CloseError{Code: wsclient.CloseGoingAway, Reason: "restart"})
	fmt.Println(wsclient.CloseStatus(err), err)
	// Output: 1001 wsclient: server closed with 1001 "restart"
}
