package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/wstest"
)

// wscBin is the wsc binary the tests run, built once by TestMain (with the
// race detector when the tests have it).
var wscBin string

// waitFor bounds every wait of a test.
const waitFor = 10 * time.Second

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wsc-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	wscBin = filepath.Join(dir, "wsc")
	args := []string{"build", "-o", wscBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building wsc: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuf is a buffer written by a process and read by the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a running wsc.
type proc struct {
	t              *testing.T
	cmd            *exec.Cmd
	stdin          io.WriteCloser
	stdout, stderr *syncBuf
	done           chan struct{}
	code           int
}

// startWsc runs the wsc binary with args; the test owns its stdin.
func startWsc(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, stdout: &syncBuf{}, stderr: &syncBuf{}, done: make(chan struct{})}
	p.cmd = exec.Command(wscBin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.Env = append(os.Environ(), "HTTP_PROXY=", "HTTPS_PROXY=", "http_proxy=", "https_proxy=")
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		if ee, ok := err.(*exec.ExitError); ok && !ee.Exited() {
			p.code = -1 // killed by a signal
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			if t.Failed() { // the goroutines of a wsc that hangs, on its stderr
				_ = p.cmd.Process.Signal(syscall.SIGQUIT)
				select {
				case <-p.done:
				case <-time.After(2 * time.Second):
				}
			}
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("wsc %s\n--- stdout:\n%s--- stderr:\n%s", strings.Join(args, " "), p.stdout, p.stderr)
		}
	})
	return p
}

// send writes lines to wsc's stdin.
func (p *proc) send(lines ...string) {
	p.t.Helper()
	for _, l := range lines {
		if _, err := io.WriteString(p.stdin, l+"\n"); err != nil {
			p.t.Fatalf("writing %q to stdin: %v", l, err)
		}
	}
}

// wait waits for wsc to exit and returns its exit code.
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(waitFor):
		p.t.Fatalf("wsc still running after %v", waitFor)
		return 0
	}
}

// running reports whether wsc has not exited yet.
func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *proc) interrupt() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		p.t.Fatal(err)
	}
}

// waitStderr waits until stderr matches re (n times at least).
func (p *proc) waitStderr(re string, n int) { p.t.Helper(); p.waitIn("stderr", p.stderr, re, n) }

// waitStdout waits until stdout matches re (n times at least).
func (p *proc) waitStdout(re string, n int) { p.t.Helper(); p.waitIn("stdout", p.stdout, re, n) }

func (p *proc) waitIn(name string, b *syncBuf, re string, n int) {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		if len(rx.FindAllStringIndex(b.String(), -1)) >= n {
			return
		}
		if !p.running() && len(rx.FindAllStringIndex(b.String(), -1)) < n {
			// One more look: the output is complete once the process exited.
			if len(rx.FindAllStringIndex(b.String(), -1)) >= n {
				return
			}
			p.t.Fatalf("wsc exited (%d) before %s matched %q %d times", p.code, name, re, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.t.Fatalf("%s did not match %q %d times within %v", name, re, n, waitFor)
}

// eventually polls cond until it holds, failing the test after waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitFor, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), waitFor)
	t.Cleanup(cancel)
	return c
}

// texts are the text messages a server connection received.
func texts(c *wstest.Conn) []string {
	var out []string
	for _, m := range c.Received() {
		out = append(out, string(m.Data))
	}
	return out
}

// allTexts are the messages every connection of srv received, in order.
func allTexts(srv *wstest.Server) []string {
	var out []string
	for _, c := range srv.Conns() {
		out = append(out, texts(c)...)
	}
	return out
}

// gated starts a server whose handshakes are answered 503 while the gate is
// set: a restart test closes a connection with 1012 and takes the server
// down without the client slipping a reconnect in between.
func gated(t *testing.T, opts *wstest.Options) (*wstest.Server, *atomic.Bool) {
	gate := new(atomic.Bool)
	o := wstest.Options{}
	if opts != nil {
		o = *opts
	}
	o.Check = func(*http.Request) *wstest.Response {
		if gate.Load() {
			return &wstest.Response{Status: http.StatusServiceUnavailable}
		}
		return nil
	}
	return wstest.Start(t, &o), gate
}

// restart closes c with 1012, waits for the client's answer and restarts
// srv: down (refusing connections) for refuseFor.
func restart(t *testing.T, srv *wstest.Server, gate *atomic.Bool, c *wstest.Conn, refuseFor time.Duration) {
	t.Helper()
	gate.Store(true)
	defer gate.Store(false)
	if err := c.Close(1012, "restart"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.WaitClosed(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if refuseFor > 0 {
		srv.Restart(refuseFor)
	} else {
		srv.Down()
	}
}
