//go:build linux

// Package peers starts real third-party WebSocket servers for tests: an echo
// server on the npm "ws" package (node), one on Debian's python3-websockets,
// and nginx as a TLS (wss) reverse proxy in front of either.
//
// Every server listens on 127.0.0.1 with a free port, runs in a process group
// of its own and is stopped, by signalling that group only, when the test
// ends (t.Cleanup) or when Peer.Stop is called. The echo servers also exit by
// themselves when the test process goes away (their stdin reaches EOF, and
// the kernel sends them SIGKILL when their parent dies).
//
// The programs are installed by .ci/install-peers. When one is missing the
// Start functions skip the test, except with CI=true where they fail it.
package peers

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// Peer is a running server started by one of the Start functions.
type Peer struct {
	// Name says which server this is: "node-ws", "python-websockets" or
	// "nginx-wss".
	Name string
	// URL is the WebSocket URL to dial: "ws://127.0.0.1:PORT/" for the echo
	// servers, "wss://127.0.0.1:PORT/" for nginx.
	URL string
	// Addr is "127.0.0.1:PORT".
	Addr string
	// PID is the server's process id, which is also its process group id.
	PID int
	// CAPool and CAPEM hold the throwaway CA that signed the server
	// certificate (nginx only; nil otherwise).
	CAPool *x509.CertPool
	CAPEM  []byte
	// Stop stops the server: SIGTERM to its process group, SIGKILL after a
	// grace period. It waits for the process to exit, may be called more than
	// once, and is also called by t.Cleanup.
	Stop func()

	proc     *process
	logFiles []string
}

// TLSConfig returns a client TLS configuration that trusts the peer's CA,
// or nil for a peer without TLS.
func (p *Peer) TLSConfig() *tls.Config {
	if p.CAPool == nil {
		return nil
	}
	return &tls.Config{RootCAs: p.CAPool, MinVersion: tls.VersionTLS12}
}

// Output returns what the server printed so far (the tail of its stdout and
// stderr, and of its log files), for diagnostics.
func (p *Peer) Output() string {
	var b strings.Builder
	if p.proc != nil {
		b.WriteString(p.proc.out.String())
	}
	for _, f := range p.logFiles {
		data, err := os.ReadFile(f)
		if err != nil || len(data) == 0 {
			continue
		}
		if len(data) > maxOutput {
			data = data[len(data)-maxOutput:]
		}
		fmt.Fprintf(&b, "--- %s ---\n%s", filepath.Base(f), data)
	}
	return b.String()
}

// EchoOptions configures an echo server.
type EchoOptions struct {
	// Deflate enables the permessage-deflate extension on the server; it is
	// used when the client offers it.
	Deflate bool
	// Subprotocols lists the subprotocols the server supports. The server
	// answers with the first protocol the client offers that is in this
	// list, and with none when there is no match. Nil means
	// DefaultSubprotocols; an empty non-nil slice means none.
	Subprotocols []string
	// MaxMessageSize is the largest message the server accepts, in bytes.
	// Zero means DefaultMaxMessageSize.
	MaxMessageSize int
}

// NodeOptions configures StartNodeWS.
type NodeOptions = EchoOptions

// PythonOptions configures StartPythonWebsockets.
type PythonOptions = EchoOptions

// DefaultSubprotocols are the subprotocols an echo server supports unless
// EchoOptions.Subprotocols says otherwise.
var DefaultSubprotocols = []string{"chat", "superchat"}

// DefaultMaxMessageSize is the default EchoOptions.MaxMessageSize: 64 MiB.
const DefaultMaxMessageSize = 64 << 20

func (o EchoOptions) args() []string {
	protocols := o.Subprotocols
	if protocols == nil {
		protocols = DefaultSubprotocols
	}
	size := o.MaxMessageSize
	if size <= 0 {
		size = DefaultMaxMessageSize
	}
	args := []string{
		"--protocols=" + strings.Join(protocols, ","),
		fmt.Sprintf("--max-size=%d", size),
	}
	if o.Deflate {
		args = append(args, "--deflate")
	}
	return args
}

// unavailable reports a missing peer: t.Skip normally, t.Fatal when CI=true,
// since CI must have installed every peer.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...) + " (install with .ci/install-peers)"
	if os.Getenv("CI") == "true" {
		t.Fatalf("peers: %s; CI=true requires every peer", msg)
		return
	}
	t.Skipf("peers: %s", msg)
}

const modulePath = "github.com/ff42ae21/wsclient"

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// RepoRoot returns the root of the wsclient repository: the nearest parent
// of the working directory (a test's package directory) whose go.mod
// declares the module, or else the one holding this source file.
func RepoRoot() (string, error) {
	rootOnce.Do(func() { rootDir, rootErr = findRepoRoot() })
	return rootDir, rootErr
}

func findRepoRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for {
			if isModuleRoot(dir) {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("peers: cannot find the root of module " + modulePath)
}

func isModuleRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == modulePath
		}
	}
	return false
}

func scriptPath(t testing.TB, name string) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "testdata", "peers", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("peers: %v", err)
	}
	return p
}

// maxOutput bounds how much of a server's output is kept.
const maxOutput = 64 << 10

// outputBuffer keeps the last maxOutput bytes written to it.
type outputBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *outputBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - maxOutput; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *outputBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// listenWriter copies a server's stdout to an outputBuffer and reports the
// port of the first "LISTENING <port>" line.
type listenWriter struct {
	out     *outputBuffer
	partial []byte
	found   bool
	port    chan int
}

func newListenWriter(out *outputBuffer) *listenWriter {
	return &listenWriter{out: out, port: make(chan int, 1)}
}

func (w *listenWriter) Write(p []byte) (int, error) {
	w.out.Write(p)
	if w.found {
		return len(p), nil
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimSpace(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
		var port int
		if _, err := fmt.Sscanf(line, "LISTENING %d", &port); err == nil && port > 0 && port < 65536 {
			w.found = true
			w.partial = nil
			w.port <- port
			break
		}
	}
	if len(w.partial) > 4096 {
		w.partial = w.partial[len(w.partial)-4096:]
	}
	return len(p), nil
}
