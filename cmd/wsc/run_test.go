package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/wstest"
)

// run in-process: the same code as the binary, under the race detector.
func TestRunInProcess(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, &wstest.Options{Echo: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	stdout, stderr := &syncBuf{}, &syncBuf{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"--slash", srv.URL()}, stdinR, stdout, stderr) }()

	c, err := srv.NextConn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	go io.WriteString(stdinW, "one\ntwo\n/stats\n")
	eventually(t, "the echo", func() bool { return stdout.String() == "one\ntwo\n" })
	eventually(t, "the stats", func() bool { return strings.Contains(stderr.String(), "stats: open") })
	cancel() // Ctrl-C
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d, want 0\n%s", code, stderr)
		}
	case <-time.After(waitFor):
		t.Fatal("run did not return after ctx ended")
	}
	if code, _, _ := c.WaitClosed(t.Context()); code != 1000 {
		t.Fatalf("close %d, want 1000", code)
	}
	if !strings.Contains(stderr.String(), "interrupted: closing") {
		t.Fatalf("stderr:\n%s", stderr)
	}
}

func TestRunUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--nope"}, {"-x"}, {"--outbox", "-1", "ws://h/"}, {"-c", "ws://a/", "ws://b/"}, {"--cert", "c.pem", "ws://h/"}} {
		var out, errb strings.Builder
		if code := run(context.Background(), args, strings.NewReader(""), &out, &errb); code != exitUsage {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
		if !strings.HasPrefix(errb.String(), "wsc: ") {
			t.Errorf("%v: stderr %q", args, errb.String())
		}
	}
	// Flags after the URL, -c, and "--".
	for _, args := range [][]string{{"ws://h/", "-H", "A: b"}, {"-c", "ws://h/", "-k"}, {"--", "ws://h/"}} {
		cfg, err := parseArgs(args)
		if err != nil || cfg.url != "ws://h/" {
			t.Errorf("%v: %v, %+v", args, err, cfg)
		}
	}
	cfg, err := parseArgs([]string{"-H", "A: 1", "--header", "B: 2", "-s", "p1", "--subprotocol", "p2", "-x", "m1", "--execute", "m2", "ws://h/"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.headers, ",") != "A: 1,B: 2" || strings.Join(cfg.subprotocols, ",") != "p1,p2" || strings.Join(cfg.exec, ",") != "m1,m2" {
		t.Fatalf("repeatable flags: %+v", cfg)
	}
}

func TestDescribeDelay(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{1300 * time.Millisecond: "1.3s", 1349 * time.Millisecond: "1.3s",
		450 * time.Millisecond: "450ms", 0: "0s", 90 * time.Second: "1m30s"} {
		if got := fmtDelay(d); got != want {
			t.Errorf("fmtDelay(%v) = %q, want %q", d, got, want)
		}
	}
	if got := closeText(1012, ""); got != "close 1012 (service restart)" {
		t.Errorf("closeText = %q", got)
	}
}
