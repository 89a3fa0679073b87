// Command bench measures wsclient against raw gorilla/websocket (and, for
// comparison, coder/websocket and lxzan/gws) on one common echo server that runs
// in a process of its own, and prints one table.
//
//	cd bench && go run .            # the full run, 4–5.5 minutes on 2 cores
//	cd bench && go run . -h         # sizes, counts, sections
//
// Every figure is the median of -runs runs, libraries alternating within each
// run (the order rotates from run to run). Traffic goes to loopback only.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

var (
	flagServer     = flag.Bool("server", false, "internal: run the echo server")
	flagIdleChild  = flag.String("idle-child", "", "internal: run one idle measurement for this library")
	flagMemProfile = flag.String("idle-memprofile", "", "internal: heap profile of an idle child")
	flagPort       = flag.Int("port", 0, "internal: server port (0: any)")
	flagAddrs      = flag.Int("addrs", 8, "server addresses 127.0.0.1..127.0.0.N (spreads ephemeral ports)")
	flagIdleBig    = flag.Int("idle-big", 0, "internal: an idle child's connections each receive one message of this size first")

	flagRuns     = flag.Int("runs", 5, "runs per figure (the median is reported)")
	flagTPRuns   = flag.Int("tp-runs", 15, "runs of the 16 KiB throughput pair")
	flagTP64Runs = flag.Int("tp64-runs", 100, "runs of the 64 B throughput pair (its rates swing 2x from run to run on 2 cores: see BENCHMARKS.md)")
	flagLibs     = flag.String("libs", "wsclient,gorilla,coder,gws", "libraries (wsclient and gorilla are always included)")
	flagOnly     = flag.String("only", "throughput,latency,allocs,idle,idle40k,fleet,storm,deadpeer", "sections to run")
	flagN64      = flag.Int("n64", 100000, "messages per throughput run, 64 B (0: skip the 64 B pair)")
	flagN16k     = flag.Int("n16k", 10000, "messages per throughput run, 16 KiB (0: skip the 16 KiB pair)")
	flagRTT      = flag.Int("rtt", 5000, "round trips per latency run")
	flagAllocN   = flag.Int("allocn", 20000, "messages per allocation run")
	flagConns    = flag.Int("conns", 10000, "idle connections per idle run")
	flagIdleRuns = flag.Int("idle-runs", 5, "idle runs for wsclient and gorilla")
	flagIdleOth  = flag.Int("idle-runs-others", 2, "idle runs for the other libraries")
	flagBig      = flag.Int("big", 40<<10, "idle40k: the size of the one message each idle connection receives")
	flagBigConns = flag.Int("big-conns", 2000, "idle40k: connections per run (each receives one -big message)")
	flagBigRuns  = flag.Int("big-runs", 3, "idle40k: runs, wsclient and gorilla")
	flagFleet    = flag.Int("fleet-runs", 3, "fleet: runs of 1 000 idle clients (10 000: the idle section's figures)")
	flagLimRate  = flag.Float64("storm-rate", 500, "storm: the shared DialLimiter's rate, dials per second (rate.Limiter)")
	flagLimBurst = flag.Int("storm-burst", 10, "storm: the shared DialLimiter's burst")
	flagStorm    = flag.Int("storm", 1000, "clients in the reconnect storm")
	flagStormRun = flag.Int("storm-runs", 5, "reconnect storm runs")
	flagVerbose  = flag.Bool("v", false, "print every run's figures too")
	flagCPUProf  = flag.String("cpuprofile", "", "write a CPU profile of the client process")
	flagDead     = flag.Int("deadpeer", 20, "clients in the dead-peer test (one sample each)")
)

func main() {
	flag.Parse()
	switch {
	case *flagServer:
		if err := runServer(*flagPort, *flagAddrs); err != nil {
			fmt.Fprintln(os.Stderr, "server:", err)
			os.Exit(1)
		}
		return
	case *flagIdleChild != "":
		runIdleChild(*flagIdleChild, *flagPort, *flagAddrs, *flagConns, *flagIdleBig)
		return
	case *flagTPChild != "":
		runTPChild(*flagTPChild, *flagTPURL, *flagTPN, *flagTPSize)
		return
	}
	if *flagCPUProf != "" {
		f, err := os.Create(*flagCPUProf)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if err := run(); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func section(name string) bool {
	return slices.Contains(strings.Split(*flagOnly, ","), name)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func run() error {
	begin := time.Now()
	libs := []*lib{libByName("wsclient"), libByName("gorilla")}
	for _, name := range strings.Split(*flagLibs, ",") {
		if l := libByName(name); l != nil && !slices.Contains(libs, l) {
			libs = append(libs, l)
		} else if l == nil && name != "" {
			return fmt.Errorf("unknown library %q", name)
		}
	}
	srv, err := startServer(*flagPort, *flagAddrs)
	if err != nil {
		return err
	}
	defer srv.kill()
	t := newTable(libs)
	t.loadStart = loadavg()
	logf("server pid %d on 127.0.0.1..%d:%d; %s, GOMAXPROCS %d", srv.pid(), srv.nAddrs, srv.port, runtime.Version(), runtime.GOMAXPROCS(0))

	rotated := func(r int) []*lib {
		out := slices.Clone(libs)
		k := r % len(out)
		return append(out[k:], out[:k]...)
	}
	echoURL := srv.url(0, "/echo")
	type test struct {
		section string
		runs    int // 0: -runs
		run     func(l *lib) error
	}
	tests := []test{
		{"throughput", *flagTP64Runs * min(*flagN64, 1), func(l *lib) error {
			r, err := throughputRun(l, echoURL, *flagN64, 64)
			if err != nil {
				return fmt.Errorf("%s throughput 64 B: %w", l.name, err)
			}
			t.add("tp64", l, r.Rate)
			t.add("cpu64", l, r.CPU)
			t.add("rd64", l, r.Reads)
			return nil
		}},
		{"throughput", *flagTPRuns * min(*flagN16k, 1), func(l *lib) error {
			r, err := throughputRun(l, echoURL, *flagN16k, 16<<10)
			if err != nil {
				return fmt.Errorf("%s throughput 16 KiB: %w", l.name, err)
			}
			t.add("tp16k", l, r.Rate)
			t.add("cpu16k", l, r.CPU)
			t.add("rd16k", l, r.Reads)
			return nil
		}},
		{"latency", 0, func(l *lib) error {
			rtts, err := latency(l, echoURL, *flagRTT)
			if err != nil {
				return fmt.Errorf("%s latency: %w", l.name, err)
			}
			t.add("p50", l, us(percentile(rtts, 0.50)))
			t.add("p99", l, us(percentile(rtts, 0.99)))
			return nil
		}},
		{"latency", 0, func(l *lib) error {
			rtts, err := latencyHop(l, echoURL, *flagRTT)
			if err != nil {
				return fmt.Errorf("%s latency with a hop: %w", l.name, err)
			}
			t.add("p50hop", l, us(percentile(rtts, 0.50)))
			t.add("p99hop", l, us(percentile(rtts, 0.99)))
			return nil
		}},
		{"allocs", 0, func(l *lib) error {
			for _, size := range []int{64, 16 << 10} {
				a, err := sendAllocs(l, srv, *flagAllocN, size)
				if err != nil {
					return fmt.Errorf("%s send allocs: %w", l.name, err)
				}
				t.add(fmt.Sprintf("sa%d", size), l, a.allocs)
				t.add(fmt.Sprintf("sb%d", size), l, a.bytes)
				a, err = recvAllocs(l, srv, *flagAllocN, size)
				if err != nil {
					return fmt.Errorf("%s receive allocs: %w", l.name, err)
				}
				t.add(fmt.Sprintf("ra%d", size), l, a.allocs)
				t.add(fmt.Sprintf("rb%d", size), l, a.bytes)
			}
			return nil
		}},
	}
	// Test-major within a run, libraries back to back: a paired comparison, so
	// that load from elsewhere on the machine hits both sides alike.
	for i := range tests {
		if tests[i].runs == 0 && tests[i].section != "throughput" {
			tests[i].runs = *flagRuns
		}
	}
	runs := 0
	for _, tc := range tests {
		if section(tc.section) {
			runs = max(runs, tc.runs)
		}
	}
	for r := 0; r < runs; r++ {
		for _, tc := range tests {
			if !section(tc.section) || r >= tc.runs {
				continue
			}
			for _, l := range rotated(r) {
				if err := tc.run(l); err != nil {
					return err
				}
			}
		}
		logf("run %d/%d done (load %s)", r+1, runs, loadavg())
	}
	if section("idle") {
		for r := 0; r < max(*flagIdleRuns, *flagIdleOth); r++ {
			for _, l := range rotated(r) {
				main := l.name == "wsclient" || l.name == "gorilla"
				if main && r >= *flagIdleRuns || !main && r >= *flagIdleOth {
					continue
				}
				res, err := idleRun(l.name, srv, *flagConns, 0)
				if err != nil {
					return err
				}
				logf("idle %s: %d conns in %.1fs: %.2f goroutines, %.0f B heap, %.0f B stack per conn",
					l.name, res.Conns, res.DialSecs, res.Goroutines, res.Heap, res.Stack)
				t.add("ig", l, res.Goroutines)
				t.add("ih", l, res.Heap)
				t.add("is", l, res.Stack)
				t.add("ihs", l, res.Heap+res.Stack)
			}
		}
	}
	if section("idle40k") {
		for r := 0; r < *flagBigRuns; r++ {
			for _, l := range rotatedMain(libs, r) {
				res, err := idleRun(l.name, srv, *flagBigConns, *flagBig)
				if err != nil {
					return err
				}
				logf("idle after one %d-byte message, %s: %d conns: %.2f goroutines, %.0f B heap, %.0f B stack per conn",
					*flagBig, l.name, res.Conns, res.Goroutines, res.Heap, res.Stack)
				t.add("bg", l, res.Goroutines)
				t.add("bh", l, res.Heap)
				t.add("bs", l, res.Stack)
				t.add("bhs", l, res.Heap+res.Stack)
			}
		}
	}
	if section("fleet") {
		for r := 0; r < *flagFleet; r++ {
			for _, l := range rotatedMain(libs, r) {
				res, err := idleRun(l.name, srv, 1000, 0)
				if err != nil {
					return err
				}
				logf("fleet: 1000 idle %s clients: %.2f goroutines, %.0f B heap, %.0f B stack per client",
					l.name, res.Goroutines, res.Heap, res.Stack)
				t.add("f1hs", l, res.Heap+res.Stack)
			}
		}
	}
	var storms []stormResult
	if section("storm") {
		for r := 0; r < 2*(*flagStormRun); r++ {
			var lim *rate.Limiter
			if r%2 == 1 { // alternating: without, with a shared limiter
				lim = rate.NewLimiter(rate.Limit(*flagLimRate), *flagLimBurst)
			}
			res, err := storm(srv, *flagStorm, lim)
			if err != nil {
				return err
			}
			logf("storm (limiter %v): %d clients back in %v (server down %v), %d dials, max %d in 100 ms, %d failed attempts",
				lim != nil, res.clients, res.allBack.Round(time.Millisecond), res.downtime.Round(time.Millisecond), res.dials, res.maxWindow, res.firstFails)
			if *flagVerbose {
				logf("storm: dials per 100 ms after the kill: %v", res.hist)
				logf("storm: losses per 100 ms after the kill: %v", res.lostHist)
			}
			storms = append(storms, res)
		}
	}
	var dead []time.Duration
	if section("deadpeer") {
		dead, err = deadPeer(srv, *flagDead)
		if err != nil {
			return err
		}
		logf("dead peer: %v", dead)
	}
	t.loadEnd = loadavg()
	fmt.Print(t.render(storms, dead, time.Since(begin)))
	return nil
}

// rotatedMain is wsclient and gorilla, in an order that alternates with r.
func rotatedMain(libs []*lib, r int) []*lib {
	if r%2 == 1 {
		return []*lib{libs[1], libs[0]}
	}
	return []*lib{libs[0], libs[1]}
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// loadavg is the machine's 1-minute load average: other work on the machine
// makes every figure noisier.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}
