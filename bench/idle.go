package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// idleResult is what one idle child process measured, per connection.
type idleResult struct {
	Lib        string  `json:"lib"`
	Conns      int     `json:"conns"`
	Goroutines float64 `json:"goroutines"`
	Heap       float64 `json:"heap"`  // HeapInuse delta / conns
	Stack      float64 `json:"stack"` // StackInuse delta / conns
	DialSecs   float64 `json:"dial_secs"`
	Big        int     `json:"big,omitempty"` // each connection received one message of this size first
	Err        string  `json:"err,omitempty"`
}

// runIdleChild opens n connections with keepalive on, lets them settle, and
// prints the per-connection cost as JSON. It runs in a process of its own so
// that every measurement starts from the same clean heap; it exits without
// closing (the kernel closes the sockets).
//
// With big > 0, each connection first receives one message of big bytes (from
// /flood, after sending it one small message) and the measurement is taken
// once every connection has received it: what an idle connection keeps of
// past traffic.
func runIdleChild(name string, port, nAddrs, n, big int) {
	l := libByName(name)
	srv := &serverProc{port: port, nAddrs: nAddrs}
	res := idleResult{Lib: name, Conns: n, Big: big}
	out := func() {
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
		os.Exit(0)
	}
	if l == nil {
		res.Err = "unknown lib"
		out()
	}
	if *flagMemProfile != "" {
		runtime.MemProfileRate = 1
	}
	var m0, m1 runtime.MemStats
	settle(&m0)
	g0 := runtime.NumGoroutine()

	sessions := make([]session, n)
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	var got atomic.Int64 // big messages received
	path := "/echo"
	if big > 0 {
		path = fmt.Sprintf("/flood?n=1&size=%d", big)
	}
	start := time.Now()
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || firstErr.Load() != nil {
					return
				}
				s, err := l.dial(srv.url(i, path), dialOpts{keepalive: true, onMsg: func(p []byte) {
					if big > 0 && len(p) == big {
						got.Add(1)
					}
				}})
				if err != nil {
					firstErr.CompareAndSwap(nil, fmt.Sprintf("conn %d: %v", i, err))
					return
				}
				sessions[i] = s
				if big > 0 {
					if err := s.send([]byte("go")); err != nil {
						firstErr.CompareAndSwap(nil, fmt.Sprintf("conn %d: send: %v", i, err))
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	res.DialSecs = time.Since(start).Seconds()
	if e := firstErr.Load(); e != nil {
		res.Err = e.(string)
		out()
	}
	if big > 0 {
		if err := waitFor(func() bool { return got.Load() == int64(n) }, waitLimit); err != nil {
			res.Err = fmt.Sprintf("%d of %d connections received the %d-byte message: %v", got.Load(), n, big, err)
			out()
		}
	}
	time.Sleep(time.Second) // every reader parked, every dial goroutine gone
	settle(&m1)
	g1 := runtime.NumGoroutine()
	res.Goroutines = float64(g1-g0) / float64(n)
	res.Heap = (float64(m1.HeapInuse) - float64(m0.HeapInuse)) / float64(n)
	res.Stack = (float64(m1.StackInuse) - float64(m0.StackInuse)) / float64(n)
	if *flagMemProfile != "" {
		f, err := os.Create(*flagMemProfile)
		if err == nil {
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	runtime.KeepAlive(sessions)
	out()
}

// idleRun starts an idle child for lib and returns what it measured.
// With big > 0, each connection first receives one message of big bytes.
func idleRun(name string, srv *serverProc, n, big int) (idleResult, error) {
	var r idleResult
	err := runChild("idle child "+name, 2*time.Minute, &r, "-idle-child", name,
		"-port", strconv.Itoa(srv.port), "-addrs", strconv.Itoa(srv.nAddrs), "-conns", strconv.Itoa(n),
		"-idle-big", strconv.Itoa(big))
	if err == nil && r.Err != "" {
		err = fmt.Errorf("idle child %s: %s", name, r.Err)
	}
	return r, err
}

// runChild runs this program again with args, as a child process stopped by its
// PID after limit, and decodes the JSON it prints into v.
func runChild(what string, limit time.Duration, v any, args ...string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	done := make(chan struct{})
	var out []byte
	go func() { out, err = cmd.Output(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		if cmd.Process != nil {
			cmd.Process.Kill() // by its PID
		}
		<-done
		return fmt.Errorf("%s: %w", what, errTimeout)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("%s: %q: %w", what, out, err)
	}
	return nil
}

func libByName(name string) *lib {
	for _, l := range allLibs {
		if l.name == name {
			return l
		}
	}
	return nil
}

// settle collects until the heap and the stacks stop shrinking: each GC may
// halve a goroutine stack that uses under a quarter of it, so one GC is not
// enough for stacks that grew during the dial.
func settle(m *runtime.MemStats) {
	runtime.GC()
	runtime.ReadMemStats(m)
	for i := 0; i < 10; i++ {
		prev := m.HeapInuse + m.StackInuse
		runtime.GC()
		runtime.ReadMemStats(m)
		if os.Getenv("SETTLEDEBUG") != "" {
			fmt.Fprintln(os.Stderr, "settle", i, m.HeapInuse, m.StackInuse)
		}
		if m.HeapInuse+m.StackInuse >= prev {
			return
		}
	}
}
