package main

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ff42ae21/wsclient"
	"golang.org/x/time/rate"
)

type stormResult struct {
	clients    int
	limited    bool          // the clients shared one DialLimiter
	downtime   time.Duration // kill to the restarted server's READY
	allBack    time.Duration // kill to the last client open again
	dials      int           // TCP connects after the kill
	maxWindow  int           // the most attempts in any 100 ms window
	firstFails int           // attempts that failed (server still down)
	hist       []int         // dials per 100 ms after the kill
	lostHist   []int         // losses seen (OnDisconnect) per 100 ms after the kill
}

// stormHandler follows the library's default policy (zero Decision) and counts
// open connections.
type stormHandler struct {
	wsclient.BaseHandler
	open, lost, failed *atomic.Int64
	mu                 *sync.Mutex
	lostAt             *[]time.Time
}

func (h *stormHandler) OnConnect(*wsclient.Conn) error { h.open.Add(1); return nil }

func (h *stormHandler) OnDisconnect(d wsclient.Disconnect) wsclient.Decision {
	if d.Connected {
		h.mu.Lock()
		*h.lostAt = append(*h.lostAt, time.Now())
		h.mu.Unlock()
		h.open.Add(-1)
		h.lost.Add(1)
	} else {
		h.failed.Add(1)
	}
	return wsclient.Decision{}
}

// storm connects n clients with the default options (backoff with jitter), kills
// the server process, restarts it at once on the same port, and measures how the
// clients come back. With lim, all clients share it as Options.DialLimiter.
func storm(srv *serverProc, n int, lim *rate.Limiter) (stormResult, error) {
	res := stormResult{clients: n, limited: lim != nil}
	var open, lost, failed atomic.Int64
	var mu sync.Mutex
	var dials, lostAt []time.Time
	// A dial is a TCP connect: counted in NetDialContext, after the limiter's
	// wait (a transition to Connecting comes before it).
	var nd net.Dialer
	netDial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dials = append(dials, time.Now())
		mu.Unlock()
		return nd.DialContext(ctx, network, addr)
	}
	clients := make([]*wsclient.Client, n)
	var runs sync.WaitGroup
	defer func() {
		var wg sync.WaitGroup
		for _, c := range clients {
			if c == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				c.Close(ctx, wsclient.CloseNormal, "")
			}()
		}
		wg.Wait()
		runs.Wait()
	}()
	for i := range clients {
		opts := wsOptions()
		opts.NetDialContext = netDial
		if lim != nil {
			opts.DialLimiter = lim
		}
		c, err := wsclient.New(srv.url(i, "/echo"), &stormHandler{open: &open, lost: &lost, failed: &failed, mu: &mu, lostAt: &lostAt}, opts)
		if err != nil {
			return res, err
		}
		clients[i] = c
		runs.Add(1)
		go func() { defer runs.Done(); c.Run(context.Background()) }()
	}
	if err := waitFor(func() bool { return open.Load() == int64(n) }, 30*time.Second); err != nil {
		return res, fmt.Errorf("storm: %d of %d open before the kill: %w", open.Load(), n, err)
	}
	time.Sleep(200 * time.Millisecond)
	failed.Store(0)
	lost.Store(0)
	kill := time.Now()
	srv.kill()
	if err := srv.start(); err != nil {
		return res, err
	}
	res.downtime = time.Since(kill)
	// Wait for everyone to see the loss and come back.
	if err := waitFor(func() bool { return lost.Load() == int64(n) && open.Load() == int64(n) }, 60*time.Second); err != nil {
		return res, fmt.Errorf("storm: %d of %d open again: %w", open.Load(), n, err)
	}
	res.allBack = time.Since(kill)
	res.firstFails = int(failed.Load())
	mu.Lock()
	for _, t := range lostAt {
		if t.After(kill) {
			i := int(t.Sub(kill) / (100 * time.Millisecond))
			for len(res.lostHist) <= i {
				res.lostHist = append(res.lostHist, 0)
			}
			res.lostHist[i]++
		}
	}
	var after []time.Time
	for _, t := range dials {
		if t.After(kill) {
			after = append(after, t)
		}
	}
	mu.Unlock()
	slices.SortFunc(after, func(a, b time.Time) int { return a.Compare(b) })
	res.dials = len(after)
	for _, t := range after {
		i := int(t.Sub(kill) / (100 * time.Millisecond))
		for len(res.hist) <= i {
			res.hist = append(res.hist, 0)
		}
		res.hist[i]++
	}
	for i, j := 0, 0; i < len(after); i++ {
		for after[i].Sub(after[j]) >= 100*time.Millisecond {
			j++
		}
		res.maxWindow = max(res.maxWindow, i-j+1)
	}
	return res, nil
}

func waitFor(cond func() bool, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return errTimeout
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}
