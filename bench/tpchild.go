package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"time"
)

var (
	flagTPChild     = flag.String("tp-child", "", "internal: run one throughput measurement for this library")
	flagTPSize      = flag.Int("tp-size", 64, "internal: message size of a throughput child")
	flagTPN         = flag.Int("tp-n", 100000, "internal: messages of a throughput child")
	flagTPURL       = flag.String("tp-url", "", "internal: echo URL of a throughput child")
	flagTPInProcess = flag.Bool("tp-inprocess", false, "run the throughput section in this process (for -cpuprofile) instead of a fresh child process per run")
)

// tpResult is what one throughput run measured.
type tpResult struct {
	Rate  float64 `json:"rate"`  // messages per second
	CPU   float64 `json:"cpu"`   // client CPU µs per message
	Reads float64 `json:"reads"` // read syscalls per message
	Err   string  `json:"err,omitempty"`
}

// runTPChild measures one throughput run and prints it as JSON. Each run has a
// process of its own: the figures of one library do not carry the heap, the
// GC pacing, the pools or the threads that another library's run left behind.
func runTPChild(name, url string, n, size int) {
	var res tpResult
	if l := libByName(name); l == nil {
		res.Err = "unknown lib"
	} else if rate, cpu, reads, err := throughput(l, url, n, size); err != nil {
		res.Err = err.Error()
	} else {
		res = tpResult{Rate: rate, CPU: cpu, Reads: reads}
	}
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
}

// throughputRun is one throughput measurement of l: in a child process, or in
// this one with -tp-inprocess.
func throughputRun(l *lib, url string, n, size int) (tpResult, error) {
	if *flagTPInProcess {
		rate, cpu, reads, err := throughput(l, url, n, size)
		return tpResult{Rate: rate, CPU: cpu, Reads: reads}, err
	}
	args := []string{"-tp-child", l.name, "-tp-url", url, "-tp-n", strconv.Itoa(n), "-tp-size", strconv.Itoa(size)}
	if *flagVerbose {
		args = append(args, "-v")
	}
	var r tpResult
	err := runChild("throughput child "+l.name, waitLimit+30*time.Second, &r, args...)
	if err == nil && r.Err != "" {
		err = fmt.Errorf("throughput child %s: %s", l.name, r.Err)
	}
	return r, err
}
