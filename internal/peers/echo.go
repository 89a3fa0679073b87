//go:build linux

package peers

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// PythonPath is the interpreter StartPythonWebsockets runs: Debian's, which
// sees Debian's python3-websockets (a pyenv python first on PATH does not).
const PythonPath = "/usr/bin/python3"

// NodeModulesDir returns <repo>/.peers/node/node_modules, where
// .ci/install-peers puts the npm "ws" package.
func NodeModulesDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".peers", "node", "node_modules"), nil
}

// StartNodeWS starts testdata/peers/ws-echo.js, an echo server on the npm
// "ws" package, and returns it listening on ws://127.0.0.1:PORT/.
//
// It echoes text as text and binary as binary, answers pings, negotiates
// permessage-deflate when opts.Deflate is set, selects the first offered
// subprotocol it supports and echoes the close code of a closing handshake.
func StartNodeWS(t testing.TB, opts NodeOptions) *Peer {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable(t, "node not found in PATH")
		return nil
	}
	modules, err := NodeModulesDir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(modules, "ws", "package.json")); err != nil {
		unavailable(t, "npm package ws not installed in %s", modules)
		return nil
	}
	script := scriptPath(t, "ws-echo.js")
	cmd := exec.Command(node, append([]string{script}, opts.args()...)...)
	cmd.Env = append(withoutEnv(os.Environ(), "NODE_PATH", "WS_ECHO_DEFLATE"),
		"NODE_PATH="+modules)
	return startEcho(t, "node-ws", cmd)
}

// StartPythonWebsockets starts testdata/peers/py-echo.py with /usr/bin/python3
// and Debian's python3-websockets, and returns it listening on
// ws://127.0.0.1:PORT/. It behaves as StartNodeWS does.
func StartPythonWebsockets(t testing.TB, opts PythonOptions) *Peer {
	t.Helper()
	if _, err := os.Stat(PythonPath); err != nil {
		unavailable(t, "%s not found", PythonPath)
		return nil
	}
	check := exec.Command(PythonPath, "-I", "-c", "import websockets.legacy.server")
	if out, err := check.CombinedOutput(); err != nil {
		unavailable(t, "python3-websockets not importable by %s: %v: %s",
			PythonPath, err, strings.TrimSpace(string(out)))
		return nil
	}
	script := scriptPath(t, "py-echo.py")
	// -I: isolated mode, ignore PYTHON* variables and the user site.
	cmd := exec.Command(PythonPath, append([]string{"-I", "-u", script}, opts.args()...)...)
	cmd.Env = withoutEnv(os.Environ(), "WS_ECHO_DEFLATE")
	return startEcho(t, "python-websockets", cmd)
}

// startEcho starts an echo server and waits for its "LISTENING <port>" line.
func startEcho(t testing.TB, name string, cmd *exec.Cmd) *Peer {
	t.Helper()
	out := &outputBuffer{}
	lw := newListenWriter(out)
	proc, err := startProcess(name, cmd, out, lw, true)
	if err != nil {
		t.Fatalf("peers: %v", err)
	}
	p := newPeer(t, name, proc)

	select {
	case port := <-lw.port:
		p.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		p.URL = "ws://" + p.Addr + "/"
	case <-proc.done:
		t.Fatalf("peers: %s %s before listening; output:\n%s", name, proc.exitStatus(), p.Output())
	case <-time.After(startTimeout):
		t.Fatalf("peers: %s not listening after %v; output:\n%s", name, startTimeout, p.Output())
	}
	return p
}

// withoutEnv returns env without the named variables.
func withoutEnv(env []string, names ...string) []string {
	out := make([]string, 0, len(env))
next:
	for _, kv := range env {
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

// String describes the peer, for test logs.
func (p *Peer) String() string {
	return fmt.Sprintf("%s pid %d at %s", p.Name, p.PID, p.URL)
}
