// Command fleet runs many clients in one process, as bot fleets and feed
// aggregators do: they share one dial limiter, and their Stats are summed
// once a second while the local server is killed and restarted on the same
// address. It needs no network and ends by itself.
//
//	go run ./examples/fleet [-clients 1000] [-rate 500] [-down 1s] [-duration 8s]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/ff42ae21/wsclient"
	"github.com/ff42ae21/wsclient/examples/internal/echo"
)

// limiter is a token bucket shared by every client: at most rate dials a
// second, in bursts of at most burst. (*rate.Limiter of golang.org/x/time/rate
// does the same and satisfies wsclient.DialLimiter too.)
type limiter struct {
	mu     sync.Mutex
	rate   float64 // tokens a second
	burst  float64
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

// Wait takes a token, waiting for one when none is left; ctx cuts it short.
func (l *limiter) Wait(ctx context.Context) error {
	l.mu.Lock()
	now := time.Now()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	l.tokens-- // reserve: a negative balance is the queue
	wait := time.Duration(-l.tokens / l.rate * float64(time.Second))
	l.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		l.tokens++ // give the reservation back
		l.mu.Unlock()
		return ctx.Err()
	}
}

// member is each client's handler: it subscribes on every connect.
type member struct {
	wsclient.BaseHandler
	id int
}

func (m *member) OnConnect(c *wsclient.Conn) error {
	return c.SendText(fmt.Sprintf(`{"op":"subscribe","member":%d}`, m.id))
}

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

// lockedWriter lets the restart goroutine and the printer share out.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// run is the program: it returns the exit code.
func run(args []string, w io.Writer) int {
	out := &lockedWriter{w: w}
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	n := fs.Int("clients", 1000, "clients in the fleet")
	rate := fs.Float64("rate", 500, "dials per second the shared limiter allows (0: no limiter)")
	down := fs.Duration("down", time.Second, "how long the server stays down")
	duration := fs.Duration("duration", 8*time.Second, "run time")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *n <= 0 || *duration <= 0 || *down < 0 || *rate < 0 {
		fmt.Fprintln(os.Stderr, "fleet: -clients and -duration must be positive, -down and -rate not negative")
		return 2
	}
	srv, err := echo.Start()
	if err != nil {
		log.Print(err)
		return 1
	}
	defer srv.Close()

	opts := &wsclient.Options{
		PingInterval: 5 * time.Second,
		Backoff:      wsclient.Backoff{Initial: 200 * time.Millisecond, Max: 2 * time.Second},
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Proxy:        wsclient.NoProxy,
	}
	if *rate > 0 {
		opts.DialLimiter = newLimiter(*rate, max(1, int(*rate/10)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	clients := make([]*wsclient.Client, *n)
	var wg sync.WaitGroup
	for i := range clients {
		c, err := wsclient.New(srv.URL(), &member{id: i}, opts)
		if err != nil {
			log.Print(err)
			return 1
		}
		clients[i] = c
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.Run(ctx) }()
	}

	// Kill the server a third of the way in, bring it back after -down.
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		select {
		case <-time.After(*duration / 3):
		case <-ctx.Done():
			return
		}
		fmt.Fprintf(out, "-- server killed; back in %v on %s\n", *down, srv.Addr())
		srv.Down()        // every connection dropped, new ones refused
		time.Sleep(*down) // the outage itself: the server is away
		srv.Up()          // on the same address
		fmt.Fprintln(out, "-- server back")
	}()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	start := time.Now()
	for done := false; !done; {
		select {
		case <-tick.C:
		case <-ctx.Done():
			done = true
		}
		printSum(out, time.Since(start), clients)
	}
	wg.Wait()
	<-restarted
	return 0
}

// printSum prints the fleet's Stats, summed.
func printSum(out io.Writer, at time.Duration, clients []*wsclient.Client) {
	var open, connects, disconnects, sent, received uint64
	var waiting int
	for _, c := range clients {
		s := c.Stats()
		if s.State == wsclient.Open {
			open++
		}
		connects += s.Connects
		disconnects += s.Disconnects
		sent += s.Sent.Messages()
		received += s.Received.Messages()
		waiting += s.Outbox
	}
	fmt.Fprintf(out, "%5.1fs open %4d/%d  connects %5d  disconnects %5d  sent %5d  received %5d  outbox %d\n",
		at.Seconds(), open, len(clients), connects, disconnects, sent, received, waiting)
}
