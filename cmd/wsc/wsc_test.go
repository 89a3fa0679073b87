package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/wstest"
)

func TestEcho(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, &wstest.Options{Echo: true})
	p := startWsc(t, srv.URL())
	p.waitStderr(`(?m)^connected$`, 1)
	p.send("hello", "wörld", "")
	p.waitStdout(`(?m)^hello\nwörld\n\n$`, 1)
	c, err := srv.NextConn(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	p.stdin.Close() // stdin's end: close 1000, wait for the answer, exit 0
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	if code, _, _ := c.WaitClosed(ctx(t)); code != 1000 {
		t.Fatalf("server saw close %d, want 1000", code)
	}
	if !strings.Contains(p.stderr.String(), "closed: close 1000 (normal closure)") {
		t.Fatalf("stderr does not report the close:\n%s", p.stderr)
	}
}

// Binary: -b sends lines as binary; binary messages print as hex or base64.
func TestBinary(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, nil)
	for _, tc := range []struct {
		args []string
		want string
	}{{nil, "00ff41"}, {[]string{"--base64"}, "AP9B"}} {
		p := startWsc(t, append(append([]string{"-b"}, tc.args...), srv.URL())...)
		c, err := srv.NextConn(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		p.send("abc")
		got, err := c.ReadBinary(ctx(t))
		if err != nil || string(got) != "abc" {
			t.Fatalf("server read %q, %v; want binary abc", got, err)
		}
		if err := c.SendBinary([]byte{0, 0xff, 'A'}); err != nil {
			t.Fatal(err)
		}
		p.waitStdout(`(?m)^`+tc.want+`$`, 1)
		p.stdin.Close()
		if code := p.wait(); code != 0 {
			t.Fatalf("exit %d", code)
		}
	}
}

// notSent parses the lines wsc reported as not sent.
func notSent(stderr string) map[string]bool {
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^not sent \([^)]*\): (.*)$`).FindAllStringSubmatch(stderr, -1) {
		out[m[1]] = true
	}
	return out
}

// feeder writes numbered lines to wsc's stdin until told to finish, then n
// more, and closes stdin.
type feeder struct {
	mu    sync.Mutex
	lines []string
	more  chan int
	done  chan struct{}
}

func feed(t *testing.T, p *proc) *feeder {
	f := &feeder{more: make(chan int, 1), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		defer p.stdin.Close()
		left := -1
		for i := 0; i < 20000 && left != 0; i++ {
			select {
			case n := <-f.more:
				left = n
			default:
			}
			line := "m" + strconv.Itoa(i)
			if _, err := p.stdin.Write([]byte(line + "\n")); err != nil {
				return
			}
			f.mu.Lock()
			f.lines = append(f.lines, line)
			f.mu.Unlock()
			if left > 0 {
				left--
			}
			if i%10 == 0 { // a typing rate, not a wait for something
				time.Sleep(time.Millisecond)
			}
		}
	}()
	return f
}

func (f *feeder) finish(t *testing.T, n int) []string {
	f.more <- n
	select {
	case <-f.done:
	case <-time.After(waitFor):
		t.Fatal("the feeder did not finish")
	}
	return f.lines
}

// A server restart (close 1012, then refusing connections) while lines are
// being sent: every line not reported as not sent reached the server, once,
// in order; with --outbox every line did.
func TestRestartWhileSending(t *testing.T) {
	t.Parallel()
	for _, outbox := range []bool{false, true} {
		t.Run("outbox="+strconv.FormatBool(outbox), func(t *testing.T) {
			srv, gate := gated(t, nil)
			args := []string{"--max-backoff", "100ms", srv.URL()}
			if outbox {
				args = append([]string{"--outbox", "100000"}, args...)
			}
			p := startWsc(t, args...)
			c1, err := srv.NextConn(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			f := feed(t, p)
			eventually(t, "50 messages on the first connection", func() bool { return len(c1.Received()) >= 50 })
			restart(t, srv, gate, c1, 300*time.Millisecond)
			p.waitStderr(`(?m)^disconnected: close 1012 \(service restart\) "restart"; reconnecting in \S+$`, 1)
			p.waitStderr(`(?m)^connect failed \(attempt \d+\): .*; retrying in`, 1)
			c2, err := srv.NextConn(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, "messages on the second connection", func() bool { return len(c2.Received()) >= 50 })
			sent := f.finish(t, 50)
			if code := p.wait(); code != 0 {
				t.Fatalf("exit %d", code)
			}
			if _, _, err := c2.WaitClosed(ctx(t)); err != nil {
				t.Fatal(err)
			}
			lost := notSent(p.stderr.String())
			var want []string
			for _, l := range sent {
				if !lost[l] {
					want = append(want, l)
				}
			}
			got := allTexts(srv)
			if !slices.Equal(got, want) {
				t.Fatalf("the server received %d messages, want the %d of %d not reported lost (first difference at %d)",
					len(got), len(want), len(sent), firstDiff(got, want))
			}
			if outbox && len(lost) > 0 {
				t.Fatalf("with --outbox, %d lines were reported not sent", len(lost))
			}
			t.Logf("%d lines, %d reported not sent, %d on the first connection, %d on the last", len(sent), len(lost), len(c1.Received()), len(c2.Received()))
		})
	}
}

// An abrupt restart (every connection dropped, no close frame): lines written
// just before the drop may be lost on the way (written to the socket is all a
// client can know), but none is duplicated, none reported not sent arrives,
// and the lines after the reconnect arrive.
func TestAbruptRestartWhileSending(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, nil)
	p := startWsc(t, "--max-backoff", "100ms", srv.URL())
	c1, err := srv.NextConn(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	f := feed(t, p)
	eventually(t, "50 messages on the first connection", func() bool { return len(c1.Received()) >= 50 })
	srv.Restart(300 * time.Millisecond)
	p.waitStderr(`(?m)^disconnected: connection lost.*; reconnecting in`, 1)
	c2, err := srv.NextConn(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "messages on the second connection", func() bool { return len(c2.Received()) >= 50 })
	sent := f.finish(t, 50)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	lost := notSent(p.stderr.String())
	got := allTexts(srv)
	// got is a subsequence of sent: in order, no duplicates, nothing unknown.
	i := 0
	for _, g := range got {
		for i < len(sent) && sent[i] != g {
			i++
		}
		if i == len(sent) {
			t.Fatalf("the server received %q out of order or twice", g)
		}
		if lost[g] {
			t.Fatalf("%q was reported not sent but arrived", g)
		}
		i++
	}
	if last := sent[len(sent)-1]; got[len(got)-1] != last {
		t.Fatalf("the last line %q did not arrive (last received %q)", last, got[len(got)-1])
	}
	t.Logf("%d lines, %d reported not sent, %d lost in flight", len(sent), len(lost), len(sent)-len(lost)-len(got))
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestUnauthorized(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, &wstest.Options{Check: func(r *http.Request) *wstest.Response {
		if r.Header.Get("Authorization") != "Basic dTpw" { // u:p
			return &wstest.Response{Status: http.StatusUnauthorized, Body: "no token"}
		}
		return nil
	}})
	p := startWsc(t, srv.URL())
	if code := p.wait(); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(p.stderr.String(), "stopped: 401 Unauthorized\n") {
		t.Fatalf("stderr lacks the cause:\n%s", p.stderr)
	}
	if n := srv.Stats().Requests; n != 1 {
		t.Fatalf("%d handshakes, want 1 (a 401 is not retried)", n)
	}
	// --auth, and credentials in the URL, pass.
	for _, args := range [][]string{{"--auth", "u:p", srv.URL()}, {strings.Replace(srv.URL(), "ws://", "ws://u:p@", 1)}} {
		p := startWsc(t, args...)
		p.waitStderr(`(?m)^connected$`, 1)
		p.stdin.Close()
		if code := p.wait(); code != 0 {
			t.Fatalf("%v: exit %d, want 0", args, code)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var at []time.Time
	srv := wstest.Start(t, &wstest.Options{Check: func(*http.Request) *wstest.Response {
		mu.Lock()
		defer mu.Unlock()
		at = append(at, time.Now())
		if len(at) == 1 {
			return &wstest.Response{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"1"}}}
		}
		return nil
	}})
	p := startWsc(t, "--max-backoff", "100ms", srv.URL())
	p.waitStderr(`(?m)^connect failed \(attempt 1\): 429 Too Many Requests \(Retry-After: 1\); retrying in 1(\.\d)?s$`, 1)
	p.waitStderr(`(?m)^connected$`, 1)
	mu.Lock()
	gap := at[1].Sub(at[0])
	mu.Unlock()
	if gap < 900*time.Millisecond {
		t.Fatalf("the retry came %v after the 429, want about 1s (Retry-After over --max-backoff)", gap)
	}
	p.stdin.Close()
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, &wstest.Options{TLS: true, Echo: true})
	ca, _, _, err := srv.CertFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := startWsc(t, "--ca", ca, srv.URL())
	p.send("secure")
	p.waitStdout(`(?m)^secure$`, 1)
	p.stdin.Close()
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}

	// Without the CA: a certificate error stops at once.
	p = startWsc(t, srv.URL())
	if code := p.wait(); code != 1 {
		t.Fatalf("without --ca: exit %d, want 1", code)
	}
	if !regexp.MustCompile(`(?m)^stopped: certificate error: .*unknown authority`).MatchString(p.stderr.String()) {
		t.Fatalf("stderr lacks the certificate error:\n%s", p.stderr)
	}

	// -k: works, loudly.
	p = startWsc(t, "-k", srv.URL())
	p.send("unverified")
	p.waitStdout(`(?m)^unverified$`, 1)
	if !strings.Contains(p.stderr.String(), "WARNING: --insecure") {
		t.Fatalf("no warning for -k:\n%s", p.stderr)
	}
	p.stdin.Close()
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestMutualTLS(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, &wstest.Options{ClientCert: true, Echo: true})
	ca, cert, key, err := srv.CertFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := startWsc(t, "--ca", ca, "--cert", cert, "--key", key, srv.URL())
	p.send("mutual")
	p.waitStdout(`(?m)^mutual$`, 1)
	p.stdin.Close()
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}

	p = startWsc(t, "--ca", ca, srv.URL())
	if code := p.wait(); code != 1 {
		t.Fatalf("without --cert: exit %d, want 1", code)
	}
	if !strings.Contains(p.stderr.String(), "stopped: certificate error: the server refused our certificate") {
		t.Fatalf("stderr lacks the refusal:\n%s", p.stderr)
	}
}

// -x is sent after every connect, before the lines of stdin and the outbox.
func TestExecuteAfterEveryConnect(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, nil)
	p := startWsc(t, "-x", "sub a", "--execute", "sub b", "--outbox", "10", "--max-backoff", "100ms", srv.URL())
	for gen := 1; gen <= 3; gen++ {
		c, err := srv.NextConn(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"sub a", "sub b"} {
			if got, err := c.ReadText(ctx(t)); err != nil || got != want {
				t.Fatalf("connection %d: read %q, %v; want %q", gen, got, err, want)
			}
		}
		if gen == 2 { // a line typed while the first connection was down
			if got, err := c.ReadText(ctx(t)); err != nil || got != "queued" {
				t.Fatalf("connection 2: read %q, %v; want the queued line after -x", got, err)
			}
		}
		switch gen {
		case 1:
			srv.Down()
			p.waitStderr(`(?m)^connect failed`, 1)
			p.send("queued") // waits in the outbox (or, read late, goes after -x anyway)
			srv.Up()
		case 2:
			c.Drop()
		}
	}
	p.stdin.Close()
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if n := strings.Count(p.stderr.String(), "connected\n"); n != 3 {
		t.Fatalf("%d connects reported, want 3", n)
	}
}

// -x with -w: exit 0 once no message came for the wait, stdin still open.
func TestExecuteWait(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, nil)
	start := time.Now()
	p := startWsc(t, "-x", "snapshot", "-w", "300ms", srv.URL())
	c, err := srv.NextConn(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.ReadText(ctx(t)); err != nil || got != "snapshot" {
		t.Fatalf("read %q, %v", got, err)
	}
	for i := range 3 {
		if err := c.SendText("reply " + strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	last := time.Now()
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if d := time.Since(last); d < 250*time.Millisecond {
		t.Fatalf("exited %v after the last reply, want about 300ms", d)
	}
	if code, _, _ := c.WaitClosed(ctx(t)); code != 1000 {
		t.Fatalf("close %d, want 1000", code)
	}
	if got := p.stdout.String(); got != "reply 0\nreply 1\nreply 2\n" {
		t.Fatalf("stdout %q", got)
	}
	t.Logf("ran %v", time.Since(start))
}

// --json: every stdout line is one JSON object with an event.
func TestJSON(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, nil)
	p := startWsc(t, "--json", "--slash", "--max-backoff", "100ms", srv.URL())
	c1, err := srv.NextConn(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	c1.SendText("hello")
	c1.SendBinary([]byte{1, 2, 3})
	p.waitStdout(`"data":"010203"`, 1)
	p.send("/stats")
	p.waitStdout(`"event":"stats"`, 1)
	c1.Close(1012, "restart")
	c2, err := srv.NextConn(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	c2.SendText("again")
	p.waitStdout(`"again"`, 1)
	p.stdin.Close()
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var events []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.stdout.String()))
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("stdout line %q is not JSON: %v", sc.Text(), err)
		}
		events = append(events, ev)
	}
	var kinds []string
	for _, ev := range events {
		kinds = append(kinds, ev["event"].(string))
	}
	want := []string{"connect", "message", "message", "stats", "disconnect", "connect", "message", "disconnect", "stats"}
	if !slices.Equal(kinds, want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	check := func(i int, key string, want any) {
		t.Helper()
		if got := events[i][key]; got != want {
			t.Errorf("event %d (%s): %s = %v, want %v", i, kinds[i], key, got, want)
		}
	}
	check(1, "type", "text")
	check(1, "data", "hello")
	check(2, "type", "binary")
	check(2, "encoding", "hex")
	check(4, "code", float64(1012))
	check(4, "reason", "restart")
	check(4, "reconnect", true)
	check(4, "connected", true)
	check(5, "generation", float64(2))
	check(7, "code", float64(1000))
	check(7, "reconnect", false)
	check(8, "connects", float64(2))
	check(8, "state", "closed")
	if _, ok := events[4]["next_delay_ms"]; !ok && events[4]["next_delay"] == nil {
		t.Errorf("disconnect without its next delay: %v", events[4])
	}
	if _, err := time.Parse(time.RFC3339Nano, events[1]["time"].(string)); err != nil {
		t.Errorf("message time: %v", err)
	}
	if rx := events[8]["received"].(map[string]any); rx["messages"] != float64(3) {
		t.Errorf("stats received %v, want 3 messages", rx)
	}
}

// --slash: /ping shows the round trip, /stats the counters, /close closes
// with the code and reason given and exits 0.
func TestSlashCommands(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, &wstest.Options{Echo: true})
	p := startWsc(t, "--slash", srv.URL())
	c, err := srv.NextConn(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	p.send("/ping hi", "//not a command", "/stats", "/nope", "/close 4001 done")
	p.waitStderr(`(?m)^pong "hi": rtt [\d.]+ms$`, 1)
	p.waitStdout(`(?m)^/not a command$`, 1)
	p.waitStderr(`(?m)^stats: open for \S+; connects 1, disconnects 0; sent 1 messages`, 1)
	p.waitStderr(`(?m)^unknown command /nope`, 1)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if code, reason, _ := c.WaitClosed(ctx(t)); code != 4001 || reason != "done" {
		t.Fatalf("close %d %q, want 4001 done", code, reason)
	}
	if received, _ := c.Pings(); received < 1 {
		t.Fatal("the server saw no ping")
	}
}

// -P shows the keepalive's pongs with their round trip.
func TestShowPingPong(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, nil)
	p := startWsc(t, "-P", "--ping-interval", "50ms", srv.URL())
	c, err := srv.NextConn(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	p.waitStderr(`(?m)^pong \(keepalive\): rtt [\d.]+ms$`, 2)
	c.Ping([]byte("srv"))
	p.waitStderr(`(?m)^ping received \(3 bytes\)$`, 1)
	p.stdin.Close()
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// -P --json: a ping's or pong's payload that is not UTF-8 (the keepalive's
// timestamps) is given in hex, not mangled into U+FFFD.
func TestJSONPingPayloads(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, nil)
	p := startWsc(t, "-P", "--json", "--ping-interval", "50ms", srv.URL())
	c, err := srv.NextConn(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	p.waitStdout(`"event":"pong"`, 1)
	c.Ping([]byte{0xff, 0x00, 0x01})
	p.waitStdout(`"data":"ff0001","encoding":"hex"`, 1)
	c.Ping([]byte("text"))
	p.waitStdout(`"event":"ping","time":"[^"]+","data":"text"}`, 1)
	p.stdin.Close()
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if strings.Contains(p.stdout.String(), `\ufffd`) {
		t.Errorf("a payload was mangled:\n%s", p.stdout.String())
	}
}

// Lines typed while disconnected, without --outbox, are reported not sent.
func TestNotSentWhileDisconnected(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, nil)
	p := startWsc(t, srv.URL())
	if _, err := srv.NextConn(ctx(t)); err != nil {
		t.Fatal(err)
	}
	p.waitStderr(`(?m)^connected$`, 1) // not just upgraded: the client read the 101
	srv.Down()
	p.waitStderr(`(?m)^disconnected: `, 1)
	p.send("into the void")
	p.waitStderr(`(?m)^not sent \(not connected\): into the void$`, 1)
	srv.Up()
	c2, err := srv.NextConn(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	p.waitStderr(`(?m)^connected$`, 2)
	p.send("back")
	if got, err := c2.ReadText(ctx(t)); err != nil || got != "back" {
		t.Fatalf("read %q, %v", got, err)
	}
	p.stdin.Close()
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not pem"), 0o600)
	usage := [][]string{
		{"--bogus", "ws://127.0.0.1:1/"},
		{},
		{"http://127.0.0.1/"},
		{"ws://127.0.0.1:99999/"},
		{"ws://a/", "ws://b/"},
		{"--ca", filepath.Join(dir, "missing.pem"), "wss://127.0.0.1:1/"},
		{"--ca", bad, "wss://127.0.0.1:1/"},
		{"--cert", bad, "wss://127.0.0.1:1/"},
		{"-w", "1s", "ws://127.0.0.1:1/"},
		{"--ping-interval", "soon", "ws://127.0.0.1:1/"},
		{"-H", "no colon", "ws://127.0.0.1:1/"},
		{"--proxy", "ftp://x", "ws://127.0.0.1:1/"},
	}
	for _, args := range usage {
		p := startWsc(t, args...)
		if code := p.wait(); code != 2 {
			t.Errorf("wsc %v: exit %d, want 2 (stderr %q)", args, code, p.stderr)
		}
		if p.stderr.String() == "" {
			t.Errorf("wsc %v: nothing on stderr", args)
		}
	}

	p := startWsc(t, "-h")
	if code := p.wait(); code != 0 || !strings.Contains(p.stdout.String(), "Exit codes:") {
		t.Errorf("-h: exit %d, usage %q", code, p.stdout)
	}

	t.Run("no-reconnect", func(t *testing.T) {
		srv := wstest.Start(t, nil)
		for _, tc := range []struct {
			code int
			exit int
			line string
		}{
			{1000, 0, "closed by the server: close 1000 (normal closure)"},
			{1012, 1, "stopped: close 1012 (service restart) (--no-reconnect)"},
		} {
			p := startWsc(t, "--no-reconnect", srv.URL())
			c, err := srv.NextConn(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			c.Close(tc.code, "")
			if code := p.wait(); code != tc.exit {
				t.Errorf("server close %d: exit %d, want %d", tc.code, code, tc.exit)
			}
			if !strings.Contains(p.stderr.String(), tc.line+"\n") {
				t.Errorf("server close %d: stderr lacks %q:\n%s", tc.code, tc.line, p.stderr)
			}
		}
		// A failed first attempt stops too.
		srv.Down()
		p := startWsc(t, "--no-reconnect", srv.URL())
		if code := p.wait(); code != 1 {
			t.Errorf("refused: exit %d, want 1", code)
		}
	})

	t.Run("policy stop", func(t *testing.T) {
		srv := wstest.Start(t, nil)
		p := startWsc(t, srv.URL())
		c, err := srv.NextConn(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		c.Close(1008, "go away")
		if code := p.wait(); code != 1 {
			t.Errorf("close 1008: exit %d, want 1", code)
		}
		if !strings.Contains(p.stderr.String(), `stopped: close 1008 (policy violation) "go away"`) {
			t.Errorf("stderr:\n%s", p.stderr)
		}
	})

	t.Run("ctrl-c", func(t *testing.T) {
		srv := wstest.Start(t, nil)
		p := startWsc(t, srv.URL())
		c, err := srv.NextConn(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		p.waitStderr(`(?m)^connected$`, 1)
		p.interrupt()
		if code := p.wait(); code != 0 {
			t.Errorf("Ctrl-C: exit %d, want 0", code)
		}
		if code, _, _ := c.WaitClosed(ctx(t)); code != 1000 {
			t.Errorf("Ctrl-C: close %d, want 1000", code)
		}
	})

	t.Run("ctrl-c twice", func(t *testing.T) {
		srv := wstest.Start(t, nil)
		p := startWsc(t, "--close-timeout", "60s", srv.URL())
		c, err := srv.NextConn(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		p.waitStderr(`(?m)^connected$`, 1)
		c.Silence() // never answers the close
		p.interrupt()
		p.waitStderr(`(?m)^interrupted: closing`, 1)
		start := time.Now()
		p.interrupt()
		if code := p.wait(); code != 130 {
			t.Errorf("second Ctrl-C: exit %d, want 130", code)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("second Ctrl-C: exited after %v", d)
		}
	})

	t.Run("ctrl-c while reconnecting", func(t *testing.T) {
		srv := wstest.Start(t, nil)
		srv.Down()
		p := startWsc(t, srv.URL())
		p.waitStderr(`(?m)^connect failed`, 1)
		p.interrupt()
		if code := p.wait(); code != 0 {
			t.Errorf("exit %d, want 0", code)
		}
	})
}
