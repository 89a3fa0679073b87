package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/wstest"
)

// tmuxRequired: under CI=true the tmux test fails instead of skipping once
// .ci/install-peers installs tmux.
func tmuxRequired() bool {
	if os.Getenv("CI") != "true" {
		return false
	}
	b, err := os.ReadFile(filepath.Join("..", "..", ".ci", "install-peers"))
	return err == nil && strings.Contains(string(b), "tmux")
}

// tmux drives one session on a private tmux server.
type tmux struct {
	t    *testing.T
	sock string
}

func (m *tmux) run(args ...string) string {
	m.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", m.sock}, args...)...).CombinedOutput()
	if err != nil {
		m.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (m *tmux) screen() string { return m.run("capture-pane", "-p", "-J", "-S", "-200", "-t", "wsc") }

// typeLine types s and Enter, as a person would.
func (m *tmux) typeLine(s string) {
	m.t.Helper()
	m.run("send-keys", "-t", "wsc", "-l", s)
	m.run("send-keys", "-t", "wsc", "Enter")
}

// waitScreen waits until the screen matches re n times.
func (m *tmux) waitScreen(re string, n int) {
	m.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(waitFor)
	for {
		s := m.screen()
		if len(rx.FindAllStringIndex(s, -1)) >= n {
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("the terminal did not show %q %d times within %v:\n%s", re, n, waitFor, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The interactive path in a real terminal: typed lines echo, a server
// restart while typing (a line typed while down is reported not sent, the
// next goes on the new connection), /close exits 0.
func TestInteractiveTmux(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("tmux"); err != nil {
		if tmuxRequired() {
			t.Fatal("tmux is missing, and .ci/install-peers installs it")
		}
		t.Skip("tmux not installed (Debian: apt-get install -y tmux): the interactive terminal test skips")
	}
	srv, gate := gated(t, &wstest.Options{Echo: true})
	m := &tmux{t: t, sock: filepath.Join(t.TempDir(), "tmux.sock")}
	script := "'" + wscBin + "' --slash --max-backoff 200ms " + srv.URL() + "; echo \"wsc exited $?\"; read x"
	m.run("-f", "/dev/null", "new-session", "-d", "-s", "wsc", "-x", "160", "-y", "50", "sh", "-c", script)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("terminal:\n%s", m.screen())
		}
		_ = exec.Command("tmux", "-S", m.sock, "kill-server").Run()
	})

	m.waitScreen(`(?m)^connected$`, 1)
	c1, err := srv.NextConn(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	m.typeLine("hello from a terminal")
	m.waitScreen(`(?m)^hello from a terminal$`, 2) // the tty's echo, then the server's
	if got, err := c1.ReadText(ctx(t)); err != nil || got != "hello from a terminal" {
		t.Fatalf("server read %q, %v", got, err)
	}

	restart(t, srv, gate, c1, 0) // down until Up
	m.waitScreen(`(?m)^disconnected: close 1012 \(service restart\) "restart"; reconnecting in \S+$`, 1)
	m.typeLine("typed while down")
	m.waitScreen(`(?m)^not sent \(not connected\): typed while down$`, 1)
	srv.Up()
	m.waitScreen(`(?m)^connected$`, 2)
	c2, err := srv.NextConn(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	m.typeLine("after the restart")
	m.waitScreen(`(?m)^after the restart$`, 2)
	m.typeLine("/close")
	m.waitScreen(`(?m)^closed: close 1000 \(normal closure\)$`, 1)
	m.waitScreen(`(?m)^wsc exited 0$`, 1)
	if code, _, _ := c2.WaitClosed(ctx(t)); code != 1000 {
		t.Fatalf("close %d, want 1000", code)
	}
	if got := texts(c2); len(got) != 1 || got[0] != "after the restart" {
		t.Fatalf("second connection received %q", got)
	}
}
