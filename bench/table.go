package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"time"
)

type row struct {
	key, label string
	base       string // the gorilla figure the ratio is taken against (default: key)
	format     func(float64) string
	// target checks wsclient's figure w against gorilla's g; "" when none.
	targetText string
	target     func(w, g float64) bool
	// ratioTarget: the target is on the ratio, checked on the median of the
	// per-run ratios (each run measures both libraries back to back).
	onRatio bool
}

func f0(v float64) string { return fmt.Sprintf("%.0f", v) }
func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }
func fk(v float64) string { return fmt.Sprintf("%.0f k", v/1000) }

func ratioAtLeast(r float64) func(w, g float64) bool {
	return func(w, g float64) bool { return w/g >= r }
}
func ratioAtMost(r float64) func(w, g float64) bool {
	return func(w, g float64) bool { return w/g <= r }
}
func plusOne(w, g float64) bool { return w <= g+1.05 } // 0.05: background noise

var rows = []row{
	{key: "tp64", label: "throughput, 64 B, msg/s", format: fk, targetText: "≥ 0.95", target: ratioAtLeast(0.95), onRatio: true},
	{key: "tp16k", label: "throughput, 16 KiB, msg/s", format: fk, targetText: "≥ 1.0", target: ratioAtLeast(1.0), onRatio: true},
	{key: "cpu64", label: "client CPU per message (send + echo), 64 B, µs", format: f2, targetText: "≤ 1.05", target: ratioAtMost(1.05), onRatio: true},
	{key: "cpu16k", label: "client CPU per message (send + echo), 16 KiB, µs", format: f1},
	{key: "rd64", label: "client read syscalls per message, 64 B", format: f2},
	{key: "rd16k", label: "client read syscalls per message, 16 KiB", format: f2},
	{key: "p50", label: "round trip p50, 64 B, µs: answered where the echo arrives (¹)", format: f1, targetText: "≤ 1.15", target: ratioAtMost(1.15), onRatio: true},
	{key: "p99", label: "round trip p99, 64 B, µs: answered where the echo arrives (¹)", format: f1},
	{key: "p50hop", label: "round trip p50, 64 B, µs: caller sends, reader signals it (²)", format: f1, targetText: "≤ 1.15", target: ratioAtMost(1.15), onRatio: true},
	{key: "p99hop", label: "round trip p99, 64 B, µs: caller sends, reader signals it (²)", format: f1},
	{key: "sa64", label: "allocs / msg sent, 64 B", format: f2, targetText: "≤ gorilla + 1", target: plusOne},
	{key: "sb64", label: "bytes / msg sent, 64 B", format: f0},
	{key: "sa16384", label: "allocs / msg sent, 16 KiB", format: f2, targetText: "≤ gorilla + 1", target: plusOne},
	{key: "sb16384", label: "bytes / msg sent, 16 KiB", format: f0},
	{key: "ra64", label: "allocs / msg received, 64 B", format: f2, targetText: "≤ gorilla + 1", target: plusOne},
	{key: "rb64", label: "bytes / msg received, 64 B", format: f0},
	{key: "ra16384", label: "allocs / msg received, 16 KiB", format: f2, targetText: "≤ gorilla + 1", target: plusOne},
	{key: "rb16384", label: "bytes / msg received, 16 KiB", format: f0},
	{key: "ig", label: "idle: goroutines / conn", format: f2, targetText: "≤ 2", target: func(w, _ float64) bool { return w <= 2.005 }},
	{key: "ih", label: "idle: heap bytes / conn (HeapInuse Δ / N)", format: f0},
	{key: "is", label: "idle: stack bytes / conn (StackInuse Δ / N)", format: f0},
	{key: "ihs", label: "idle: heap + stack bytes / conn", format: f0, targetText: "≤ 1.3", target: ratioAtMost(1.3), onRatio: true},
	{key: "bg", label: "idle after one 40 KiB message: goroutines / conn", format: f2, targetText: "≤ 2", target: func(w, _ float64) bool { return w <= 2.005 }},
	{key: "bh", label: "idle after one 40 KiB message: heap bytes / conn", format: f0},
	{key: "bs", label: "idle after one 40 KiB message: stack bytes / conn", format: f0},
	{key: "bhs", label: "idle after one 40 KiB message: heap + stack bytes / conn", format: f0, targetText: "≤ 1.3", target: ratioAtMost(1.3), onRatio: true},
	{key: "f1hs", label: "fleet: heap + stack bytes / idle client, 1 000 clients", format: f0},
}

type table struct {
	libs               []*lib
	loadStart, loadEnd string
	vals               map[string]map[string][]float64 // key -> lib -> runs
}

func newTable(libs []*lib) *table {
	return &table{libs: libs, vals: map[string]map[string][]float64{}}
}

func (t *table) add(key string, l *lib, v float64) {
	if t.vals[key] == nil {
		t.vals[key] = map[string][]float64{}
	}
	t.vals[key][l.name] = append(t.vals[key][l.name], v)
}

// pairedRatio is the median of wsclient/gorilla over the runs, each run's two
// figures taken back to back; the ratio of the medians when they do not pair.
func (t *table) pairedRatio(key, base string) float64 {
	if r := t.perRunRatios(key, base); r != nil {
		return median(r)
	}
	return median(t.vals[key]["wsclient"]) / median(t.vals[base]["gorilla"])
}

// perRunRatios is wsclient/gorilla of each run, sorted; nil when the runs do
// not pair.
func (t *table) perRunRatios(key, base string) []float64 {
	w, g := t.vals[key]["wsclient"], t.vals[base]["gorilla"]
	if len(w) != len(g) || len(w) == 0 {
		return nil
	}
	r := make([]float64, len(w))
	for i := range w {
		r[i] = w[i] / g[i]
	}
	slices.Sort(r)
	return r
}

// bootstrapMedian is a 90 % percentile-bootstrap interval for the median of
// v (2 000 resamples, a fixed seed: the same figures give the same interval).
func bootstrapMedian(v []float64) (lo, hi float64) {
	rng := rand.New(rand.NewPCG(1, 2))
	meds := make([]float64, 2000)
	s := make([]float64, len(v))
	for i := range meds {
		for j := range s {
			s[j] = v[rng.IntN(len(v))]
		}
		meds[i] = median(s)
	}
	slices.Sort(meds)
	return percentileF(meds, 0.05), percentileF(meds, 0.95)
}

// geomean is the geometric mean of positive values: for ratios, the ratio of
// the two libraries' geometric-mean rates.
func geomean(v []float64) float64 {
	var sum float64
	for _, x := range v {
		sum += math.Log(x)
	}
	return math.Exp(sum / float64(len(v)))
}

func (t *table) med(key, lib string) (float64, bool) {
	v := t.vals[key][lib]
	return median(v), len(v) > 0
}

func (t *table) render(storms []stormResult, dead []time.Duration, took time.Duration) string {
	var b strings.Builder
	others := t.libs[2:]
	fmt.Fprintf(&b, "\n%s %s/%s, %d cores (GOMAXPROCS %d); medians of %d runs (throughput: %d at 64 B, %d at 16 KiB; idle: %d runs of %d connections, %d for coder and gws); took %v; load average %s at the start, %s at the end\n\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), *flagRuns, *flagTP64Runs, *flagTPRuns, *flagIdleRuns, *flagConns, *flagIdleOth, took.Round(time.Second), t.loadStart, t.loadEnd)
	fmt.Fprintf(&b, "| figure | wsclient | gorilla | wsclient / gorilla | target | met |")
	for _, l := range others {
		fmt.Fprintf(&b, " %s |", l.name)
	}
	b.WriteString("\n|---|--:|--:|--:|---|---|")
	for range others {
		b.WriteString("--:|")
	}
	b.WriteString("\n")
	any := false
	for _, r := range rows {
		if _, ok := t.med(r.key, "wsclient"); ok {
			any = true
		}
	}
	if !any {
		b.Reset()
	}
	for _, r := range rows {
		w, ok := t.med(r.key, "wsclient")
		if !ok {
			continue
		}
		base := r.base
		if base == "" {
			base = r.key
		}
		g, gok := t.med(base, "gorilla")
		gs, ratio, met := "–", "–", ""
		if gok {
			gs = r.format(g)
			rv := math.NaN()
			if g != 0 {
				rv = w / g
				if r.onRatio {
					rv = t.pairedRatio(r.key, base)
				}
				ratio = fmt.Sprintf("%.2f", rv)
			} else if w == 0 {
				ratio = "1.00"
			}
			if r.target != nil {
				ok := r.target(w, g)
				if r.onRatio {
					ok = r.target(rv, 1)
				}
				met = "yes"
				if !ok {
					met = "**no**"
				}
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |", r.label, r.format(w), gs, ratio, r.targetText, met)
		for _, l := range others {
			if v, ok := t.med(r.key, l.name); ok {
				fmt.Fprintf(&b, " %s |", r.format(v))
			} else {
				b.WriteString(" – |")
			}
		}
		b.WriteString("\n")
	}
	if *flagVerbose && any {
		b.WriteString("\nPer-run figures:\n")
		for _, r := range rows {
			for _, l := range t.libs {
				if v := t.vals[r.key][l.name]; len(v) > 0 {
					fmt.Fprintf(&b, "  %-8s %-8s", r.key, l.name)
					for _, x := range v {
						fmt.Fprintf(&b, " %s", r.format(x))
					}
					b.WriteString("\n")
				}
			}
		}
	}
	if any {
		b.WriteString("\nRatios with a target on the ratio are the median of the per-run ratios (both libraries measured back to back in each run).\n")
	}
	for _, k := range []struct{ key, label string }{{"tp64", "64 B"}, {"tp16k", "16 KiB"}} {
		if r := t.perRunRatios(k.key, k.key); len(r) > 0 {
			lo, hi := bootstrapMedian(r)
			fmt.Fprintf(&b, "Throughput %s, per-run ratios wsclient / gorilla (%d runs): min %.2f, quartiles %.2f / %.2f / %.2f, max %.2f; median's 90 %% bootstrap interval [%.2f, %.2f]; geometric mean %.2f.\n",
				k.label, len(r), r[0], percentileF(r, 0.25), percentileF(r, 0.5), percentileF(r, 0.75), r[len(r)-1], lo, hi, geomean(r))
		}
	}
	if _, ok := t.med("p50", "wsclient"); ok {
		b.WriteString("(¹) wsclient answers each echo with Conn.Send inside HandleFrame, gws inside OnMessage; gorilla and coder write then read on one goroutine.\n")
		b.WriteString("(²) the caller's goroutine sends, then waits on a channel that HandleFrame (wsclient, gws: the callback; gorilla, coder: the reader goroutine) signals.\n")
	}
	for _, limited := range []bool{false, true} {
		var ss []stormResult
		for _, s := range storms {
			if s.limited == limited {
				ss = append(ss, s)
			}
		}
		if len(ss) == 0 {
			continue
		}
		var back, down, frac []float64
		for _, s := range ss {
			back = append(back, s.allBack.Seconds())
			down = append(down, s.downtime.Seconds())
			frac = append(frac, float64(s.maxWindow)/float64(max(s.dials, 1)))
		}
		what := "no DialLimiter (the default backoff with jitter only)"
		if limited {
			what = fmt.Sprintf("one shared DialLimiter (rate.Limiter, %.0f/s, burst %d)", *flagLimRate, *flagLimBurst)
		}
		fmt.Fprintf(&b, "\nReconnect storm, %d clients, server killed (SIGKILL) and restarted at once, %s, %d runs:\n", ss[0].clients, what, len(ss))
		fmt.Fprintf(&b, "all back after %.2f s median (min %.2f, max %.2f; server down %.0f ms median); largest share of the dials in any 100 ms: %.0f %% median, %.0f %% worst; per run: ",
			median(back), slices.Min(back), slices.Max(back), 1000*median(down), 100*median(frac), 100*slices.Max(frac))
		for i, s := range ss {
			if i > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "%d dials, max %d in 100 ms (%.0f %%), back in %.2f s", s.dials, s.maxWindow, 100*float64(s.maxWindow)/float64(max(s.dials, 1)), s.allBack.Seconds())
		}
		b.WriteString(".\n")
	}
	if v, ok := t.med("ihs", "wsclient"); ok && *flagConns == 10000 {
		f1, ok1 := t.med("f1hs", "wsclient")
		if ok1 {
			fmt.Fprintf(&b, "\nFleet: heap + stack per idle wsclient client: %.0f B at 1 000 clients, %.0f B at 10 000 (gorilla connections: see the table).\n", f1, v)
		}
	}
	if len(dead) > 0 {
		worst := slices.Max(dead)
		met := "yes"
		if worst > 2200*time.Millisecond {
			met = "**no**"
		}
		ds := make([]float64, len(dead))
		for i, d := range dead {
			ds[i] = d.Seconds()
		}
		fmt.Fprintf(&b, "\nDead peer (PingInterval 1 s, PongTimeout 1 s, blackhole proxy), %d clients at even ping phases:\n", len(dead))
		fmt.Fprintf(&b, "blackhole to OnDisconnect: min %.2f s, median %.2f s, max %.2f s (target ≤ 2.2 s: %s).\n",
			slices.Min(ds), median(ds), worst.Seconds(), met)
	}
	return b.String()
}
