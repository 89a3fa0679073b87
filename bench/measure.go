package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ff42ae21/wsclient"
)

// waitLimit bounds every wait of a measurement.
const waitLimit = 60 * time.Second

// throughput: one connection, one goroutine sends n messages of size bytes as
// fast as it can; the reader (or handler) receives the n echoes. The figure is
// messages per second, from the first send to the last echo, after a warm-up.
func throughput(l *lib, url string, n, size int) (rate, cpu, reads float64, err error) {
	warm := max(n/10, 100)
	warmDone, done := make(chan struct{}), make(chan struct{})
	var count int // touched only by the reader
	s, err := l.dial(url, dialOpts{onMsg: func([]byte) {
		count++
		switch count {
		case warm:
			close(warmDone)
		case warm + n:
			close(done)
		}
	}})
	if err != nil {
		return 0, 0, 0, err
	}
	defer s.close()
	msg := make([]byte, size)
	for i := 0; i < warm; i++ {
		if err := s.send(msg); err != nil {
			return 0, 0, 0, err
		}
	}
	if err := wait(warmDone); err != nil {
		return 0, 0, 0, err
	}
	cpu0, reads0, writes0 := cpuTime(), readSyscalls(), ioCount("syscw: ")
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := s.send(msg); err != nil {
			return 0, 0, 0, err
		}
	}
	if err := wait(done); err != nil {
		return 0, 0, 0, err
	}
	elapsed := time.Since(start)
	if *flagVerbose {
		logf("%s %d B: %.2f write syscalls per message", l.name, size, float64(ioCount("syscw: ")-writes0)/float64(n))
	}
	return float64(n) / elapsed.Seconds(), us(cpuTime()-cpu0) / float64(n), float64(readSyscalls()-reads0) / float64(n), nil
}

// readSyscalls is the number of read system calls this process made so far
// (Linux: syscr in /proc/self/io; 0 elsewhere).
func readSyscalls() int64 { return ioCount("syscr: ") }

// ioCount is one counter of /proc/self/io (Linux; 0 elsewhere).
func ioCount(prefix string) int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// cpuTime is the CPU time (user + system) of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// latency: n sequential round trips of a 64-byte message, each answered where
// the echo arrives, with no hop to another goroutine: sequential libraries
// (gorilla, coder) write and read on one goroutine; callback libraries send the
// next message from inside their receive callback (wsclient: Conn.Send in
// HandleFrame). Each figure is one send-to-echo time.
func latency(l *lib, url string, n int) ([]time.Duration, error) {
	const warm = 200
	msg := make([]byte, 64)
	rtts := make([]time.Duration, 0, n)
	if l.name == "wsclient" {
		return latencyInHandler(url, n)
	}
	if l.sequential {
		s, err := l.dial(url, dialOpts{})
		if err != nil {
			return nil, err
		}
		defer s.close()
		for i := 0; i < warm+n; i++ {
			t := time.Now()
			if err := s.send(msg); err != nil {
				return nil, err
			}
			if err := s.readOne(); err != nil {
				return nil, err
			}
			if i >= warm {
				rtts = append(rtts, time.Since(t))
			}
		}
		return rtts, nil
	}
	var (
		s     session
		sent  time.Time
		serr  error
		left  = warm
		ready = make(chan struct{})
		done  = make(chan struct{})
	)
	s, err := l.dial(url, dialOpts{onMsg: func([]byte) {
		<-ready
		if left > 0 {
			left--
		} else {
			rtts = append(rtts, time.Since(sent))
			if len(rtts) == n {
				close(done)
				return
			}
		}
		sent = time.Now()
		if serr = s.send(msg); serr != nil {
			close(done)
		}
	}})
	if err != nil {
		return nil, err
	}
	defer s.close()
	sent = time.Now()
	close(ready)
	if err := s.send(msg); err != nil {
		return nil, err
	}
	if err := wait(done); err != nil {
		return nil, err
	}
	return rtts, serr
}

// latencyHop: n sequential round trips of a 64-byte message sent by the
// caller's goroutine, which then waits until the reader goroutine (wsclient:
// HandleFrame) signals the echo: request/response from outside the handler.
func latencyHop(l *lib, url string, n int) ([]time.Duration, error) {
	const warm = 200
	msg := make([]byte, 64)
	rtts := make([]time.Duration, 0, n)
	got := make(chan struct{}, 1)
	s, err := l.dial(url, dialOpts{onMsg: func([]byte) { got <- struct{}{} }})
	if err != nil {
		return nil, err
	}
	defer s.close()
	limit := time.After(waitLimit)
	for i := 0; i < warm+n; i++ {
		t := time.Now()
		if err := s.send(msg); err != nil {
			return nil, err
		}
		select {
		case <-got:
		case <-limit:
			return nil, errTimeout
		}
		if i >= warm {
			rtts = append(rtts, time.Since(t))
		}
	}
	return rtts, nil
}

// pingPongHandler measures round trips from inside HandleFrame: each echo is
// answered at once with Conn.Send on the reader goroutine, as a handler that
// replies to the server would. No hop to another goroutine.
type pingPongHandler struct {
	wsclient.BaseHandler
	n, warm int
	msg     []byte
	sent    time.Time
	rtts    []time.Duration
	opened  chan struct{}
	done    chan struct{}
	err     error
}

func (h *pingPongHandler) OnConnect(c *wsclient.Conn) error {
	close(h.opened)
	return nil
}

func (h *pingPongHandler) HandleFrame(c *wsclient.Conn, f wsclient.Frame) error {
	if f.Type != wsclient.Binary {
		return nil
	}
	if h.warm > 0 {
		h.warm--
	} else {
		h.rtts = append(h.rtts, time.Since(h.sent))
		if len(h.rtts) == h.n {
			close(h.done)
			return nil
		}
	}
	h.sent = time.Now()
	if err := c.Send(wsclient.BinaryFrame(h.msg)); err != nil {
		h.err = err
		close(h.done)
	}
	return nil
}

func (h *pingPongHandler) OnDisconnect(wsclient.Disconnect) wsclient.Decision { return wsclient.Stop() }

func latencyInHandler(url string, n int) ([]time.Duration, error) {
	h := &pingPongHandler{n: n, warm: 200, msg: make([]byte, 64), opened: make(chan struct{}), done: make(chan struct{})}
	opts := wsOptions()
	opts.PingInterval = -1
	s, err := startWsclient(url, h, opts, h.opened)
	if err != nil {
		return nil, err
	}
	defer s.close()
	h.sent = time.Now()
	if err := s.c.Send(context.Background(), wsclient.BinaryFrame(h.msg)); err != nil {
		return nil, err
	}
	if err := wait(h.done); err != nil {
		return nil, err
	}
	return h.rtts, h.err
}

type allocStats struct{ allocs, bytes float64 }

func memDelta(a, b *runtime.MemStats, n int) allocStats {
	return allocStats{float64(b.Mallocs-a.Mallocs) / float64(n), float64(b.TotalAlloc-a.TotalAlloc) / float64(n)}
}

// sendAllocs: allocations of the whole client process per message sent, to a
// server that discards (so nothing comes back).
func sendAllocs(l *lib, srv *serverProc, n, size int) (allocStats, error) {
	s, err := l.dial(srv.url(0, "/discard"), dialOpts{onMsg: func([]byte) {}})
	if err != nil {
		return allocStats{}, err
	}
	defer s.close()
	msg := make([]byte, size)
	for i := 0; i < 1000; i++ {
		if err := s.send(msg); err != nil {
			return allocStats{}, err
		}
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for i := 0; i < n; i++ {
		if err := s.send(msg); err != nil {
			return allocStats{}, err
		}
	}
	runtime.ReadMemStats(&m1)
	return memDelta(&m0, &m1, n), nil
}

// recvAllocs: allocations of the whole client process per message received,
// the server flooding n messages of size bytes after a warm-up.
func recvAllocs(l *lib, srv *serverProc, n, size int) (allocStats, error) {
	const warm = 1000
	var m0, m1 runtime.MemStats
	done := make(chan struct{})
	var count int
	s, err := l.dial(srv.url(0, fmt.Sprintf("/flood?n=%d&size=%d", warm+n, size)), dialOpts{onMsg: func([]byte) {
		count++
		switch count {
		case warm:
			runtime.ReadMemStats(&m0)
		case warm + n:
			runtime.ReadMemStats(&m1)
			close(done)
		}
	}})
	if err != nil {
		return allocStats{}, err
	}
	defer s.close()
	if err := s.send([]byte("go")); err != nil {
		return allocStats{}, err
	}
	if err := wait(done); err != nil {
		return allocStats{}, err
	}
	return memDelta(&m0, &m1, n), nil
}

func wait(ch <-chan struct{}) error {
	t := time.NewTimer(waitLimit)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		return errTimeout
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// percentileF is the p-quantile of sorted values, interpolated between the two
// nearest (p = 0.5 is the median).
func percentileF(sorted []float64, p float64) float64 {
	pos := p * float64(len(sorted)-1)
	lo := int(pos)
	if lo+1 >= len(sorted) {
		return sorted[lo]
	}
	return sorted[lo] + (sorted[lo+1]-sorted[lo])*(pos-float64(lo))
}
