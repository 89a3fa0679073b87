package wsclient_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/ff42ae21/wsclient"
	"github.com/gorilla/websocket"
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

// printer prints what it receives and tells got.
type printer struct {
	wsclient.BaseHandler
	got chan struct{}
}

func (p printer) HandleFrame(c *wsclient.Conn, f wsclient.Frame) error {
	fmt.Printf("%s: %s\n", f.Type, f.Data)
	p.got <- struct{}{}
	return nil
}

// The package doc's snippet, against a local echo server: Run on a goroutine,
// WaitOpen, Send, Close.
func ExampleClient_WaitOpen() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			mt, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			_ = ws.WriteMessage(mt, data)
		}
	}))
	defer srv.Close()

	h := printer{got: make(chan struct{}, 1)}
	c, err := wsclient.New("ws"+strings.TrimPrefix(srv.URL, "http"), h, nil)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go c.Run(ctx)
	if err := c.WaitOpen(ctx); err != nil {
		log.Fatal(err)
	}
	if err := c.Send(ctx, wsclient.TextFrame("hi")); err != nil {
		log.Fatal(err)
	}
	<-h.got // the echo
	if err := c.Close(ctx, wsclient.CloseNormal, "bye"); err != nil {
		log.Fatal(err)
	}
	<-c.Done()
	fmt.Println(c.State())
	// Output:
	// text: hi
	// closed
}
