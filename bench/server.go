package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// The echo server runs in a process of its own (this binary with -server), so
// that the client side measures only itself and each side has its own limit of
// open files. It listens on 127.0.0.1..127.0.0.N, all on one port, so that many
// connections do not run out of ephemeral ports on one destination. Endpoints:
//
//	/echo              sends every message back (NextReader/NextWriter + io.Copy: no per-message buffer)
//	/discard           reads and drops every message
//	/flood?n=N&size=S  waits for one message, then sends N binary messages of S bytes
//
// It exits when its standard input closes, so it never outlives the benchmark.

var upgrader = websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}

func runServer(port, nAddrs int) error {
	var lns []net.Listener
	for i := 1; i <= nAddrs; i++ {
		var ln net.Listener
		var err error
		addr := fmt.Sprintf("127.0.0.%d:%d", i, port)
		// A restarted server may find the port still held for a moment.
		for try := 0; try < 100; try++ {
			if ln, err = net.Listen("tcp", addr); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			return err
		}
		if port == 0 {
			port = ln.Addr().(*net.TCPAddr).Port
		}
		lns = append(lns, ln)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", serveWS(echoLoop))
	mux.HandleFunc("/discard", serveWS(discardLoop))
	mux.HandleFunc("/flood", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		size, _ := strconv.Atoi(r.URL.Query().Get("size"))
		serveWS(func(ws *websocket.Conn) { floodLoop(ws, n, size) })(w, r)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	for _, ln := range lns {
		go srv.Serve(ln)
	}
	fmt.Printf("READY %d\n", port)
	// Exit when the parent goes away (its end of our stdin closes).
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
	return nil
}

func serveWS(loop func(ws *websocket.Conn)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		loop(ws)
	}
}

func echoLoop(ws *websocket.Conn) {
	for {
		mt, r, err := ws.NextReader()
		if err != nil {
			return
		}
		w, err := ws.NextWriter(mt)
		if err != nil {
			return
		}
		if _, err := io.Copy(w, r); err != nil { // gorilla's writer has ReadFrom: no buffer
			return
		}
		if err := w.Close(); err != nil {
			return
		}
	}
}

func discardLoop(ws *websocket.Conn) {
	for {
		_, r, err := ws.NextReader()
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return
		}
	}
}

func floodLoop(ws *websocket.Conn, n, size int) {
	if _, _, err := ws.NextReader(); err != nil { // the client's "go"
		return
	}
	done := make(chan struct{})
	go func() { discardLoop(ws); close(done) }() // answers pings, sees the client's close
	msg := make([]byte, size)
	for i := 0; i < n; i++ {
		if err := ws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			break
		}
	}
	<-done
}

// serverProc is the echo server child process, as the benchmark sees it.
type serverProc struct {
	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  io.Closer
	port   int
	nAddrs int
}

func startServer(port, nAddrs int) (*serverProc, error) {
	s := &serverProc{port: port, nAddrs: nAddrs}
	return s, s.start()
}

func (s *serverProc) start() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "-server", "-port", strconv.Itoa(s.port), "-addrs", strconv.Itoa(s.nAddrs))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "READY ") {
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("server did not start: %q %v", line, err)
	}
	port, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "READY ")))
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.cmd, s.stdin, s.port = cmd, stdin, port
	s.mu.Unlock()
	return nil
}

// kill stops the server process at once (SIGKILL, by its PID) and reaps it.
func (s *serverProc) kill() {
	s.mu.Lock()
	cmd, stdin := s.cmd, s.stdin
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
	stdin.Close()
	_ = cmd.Wait()
}

func (s *serverProc) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// url is the ws URL of path on the i-th address.
func (s *serverProc) url(i int, path string) string {
	return fmt.Sprintf("ws://127.0.0.%d:%d%s", 1+i%s.nAddrs, s.port, path)
}

var errTimeout = errors.New("timed out")
