// Command metrics runs a wsclient client against an embedded echo server that
// ends its connection every few seconds (a close 1012, then a dropped socket,
// in turn), and serves the client's Prometheus metrics on /metrics. When
// -duration is over it prints its own /metrics (the wsclient series) and exits.
//
//	go run ./examples/metrics                          # 10 s, /metrics on 127.0.0.1:2112
//	go run ./examples/metrics -duration 0 -addr 127.0.0.1:9100   # until Ctrl-C
//	curl -s 127.0.0.1:2112/metrics | grep example_websocket_
//
// Flags: -addr (where /metrics listens), -duration (0: until interrupted),
// -drop (how often the embedded server ends the connection).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/ff42ae21/wsclient"
	"github.com/ff42ae21/wsclient/wsprom"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:2112", "address for /metrics")
	duration := flag.Duration("duration", 10*time.Second, "how long to run (0: until interrupted)")
	drop := flag.Duration("drop", 2*time.Second, "how often the embedded server ends the connection")
	flag.Parse()
	if err := run(*addr, *duration, *drop); err != nil {
		log.Fatal(err)
	}
}

func run(addr string, duration, drop time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}

	srv, err := startEcho(drop)
	if err != nil {
		return err
	}
	defer srv.close()

	// The collector, on a registry of its own (prometheus.MustRegister(col)
	// puts it on the default one).
	col := wsprom.NewCollector(wsprom.Options{Namespace: "example", Label: "feed"})
	reg := prometheus.NewRegistry()
	reg.MustRegister(col)

	opts := &wsclient.Options{
		PingInterval: 500 * time.Millisecond,
		PongTimeout:  time.Second,
		Backoff:      wsclient.Backoff{Initial: 100 * time.Millisecond, Max: time.Second},
		Proxy:        wsclient.NoProxy,
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	opts.OnStateChange = col.Observe("echo", opts.OnStateChange) // before New
	client, err := wsclient.New(srv.url, wsclient.BaseHandler{}, opts)
	if err != nil {
		return err
	}
	col.Track("echo", client) // after New

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	metricsURL := "http://" + ln.Addr().String() + "/metrics"
	fmt.Printf("serving %s; the client talks to %s", metricsURL, srv.url)
	if duration > 0 {
		fmt.Printf(" for %v", duration)
	}
	fmt.Println()

	runDone := make(chan error, 1)
	go func() { runDone <- client.Run(context.Background()) }()
	// Traffic: a text message every 100 ms, a binary one every 500 ms.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ctx.Err() == nil; n++ {
		select {
		case <-ctx.Done():
		case <-tick.C:
			f := wsclient.TextFrame(fmt.Sprintf("hello %d", n))
			if n%5 == 0 {
				f = wsclient.BinaryFrame(make([]byte, 256))
			}
			if err := client.Send(ctx, f); err != nil && !errors.Is(err, wsclient.ErrNotConnected) && ctx.Err() == nil {
				return err
			}
		}
	}

	closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Close(closeCtx, wsclient.CloseNormal, "done"); err != nil {
		return err
	}
	if err := <-runDone; err != nil {
		return err
	}
	return printMetrics(metricsURL)
}

// printMetrics scrapes /metrics as Prometheus would and prints the client's series.
func printMetrics(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	fmt.Println("\nfinal scrape:")
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "example_websocket_") && !strings.Contains(line, "_bucket{") {
			fmt.Println("  " + line)
		}
	}
	return sc.Err()
}

// echo is the embedded server: it echoes, and every drop period ends its
// connections, with a close frame (1012, service restart) and by dropping the
// socket in turn.
type echo struct {
	url  string
	srv  *http.Server
	quit chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	live map[*websocket.Conn]bool
}

func startEcho(drop time.Duration) (*echo, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &echo{url: "ws://" + ln.Addr().String() + "/", quit: make(chan struct{}), live: map[*websocket.Conn]bool{}}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	e.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		e.mu.Lock()
		e.live[ws] = true
		e.mu.Unlock()
		defer func() {
			e.mu.Lock()
			delete(e.live, ws)
			e.mu.Unlock()
			ws.Close()
		}()
		for {
			mt, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if err := ws.WriteMessage(mt, data); err != nil {
				return
			}
		}
	})}
	e.wg.Add(2)
	go func() { defer e.wg.Done(); _ = e.srv.Serve(ln) }()
	go func() {
		defer e.wg.Done()
		t := time.NewTicker(drop)
		defer t.Stop()
		for n := 0; ; n++ {
			select {
			case <-e.quit:
				return
			case <-t.C:
			}
			e.mu.Lock()
			for ws := range e.live {
				if n%2 == 0 {
					_ = ws.WriteControl(websocket.CloseMessage,
						websocket.FormatCloseMessage(websocket.CloseServiceRestart, "restart"), time.Now().Add(time.Second))
				} else {
					ws.NetConn().Close()
				}
			}
			e.mu.Unlock()
		}
	}()
	return e, nil
}

func (e *echo) close() {
	close(e.quit)
	_ = e.srv.Close()
	e.mu.Lock()
	for ws := range e.live {
		ws.NetConn().Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
}
