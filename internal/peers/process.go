//go:build linux

package peers

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

const (
	startTimeout = 30 * time.Second
	stopGrace    = 5 * time.Second
	killWait     = 5 * time.Second
)

// process is a server started in a process group of its own (pgid == pid).
//
// The group is signalled only while the group leader has not been reaped:
// until then its pid, and so the group id, cannot belong to anybody else.
type process struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *outputBuffer

	mu     sync.Mutex
	exited bool // the leader has exited: never signal the group again

	done    chan struct{}
	waitErr error
}

// startProcess starts cmd in a new process group. Its stderr goes to out,
// its stdout to stdout (to out when nil). With withStdin, its stdin is a
// pipe that stop closes.
func startProcess(name string, cmd *exec.Cmd, out *outputBuffer, stdout io.Writer, withStdin bool) (*process, error) {
	p := &process{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// If the test process dies without cleaning up, the kernel kills
		// the server.
		Pdeathsig: syscall.SIGKILL,
	}
	if stdout == nil {
		stdout = p.out
	}
	cmd.Stdout = stdout
	cmd.Stderr = p.out
	cmd.WaitDelay = 2 * time.Second
	if withStdin {
		w, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		p.stdin = w
	}
	if err := cmd.Start(); err != nil {
		if p.stdin != nil {
			p.stdin.Close()
		}
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go p.wait()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) wait() {
	pid := p.pid()
	if err := waitExitedNoReap(pid); err == nil {
		p.mu.Lock()
		p.exited = true
		// The leader is a zombie, so its pid still names our group: kill
		// whatever else is left in it.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		p.mu.Unlock()
		p.waitErr = p.cmd.Wait()
	} else {
		p.waitErr = p.cmd.Wait()
		p.mu.Lock()
		p.exited = true
		p.mu.Unlock()
	}
	close(p.done)
}

// signal sends sig to the process group while its leader is alive.
func (p *process) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.exited {
		_ = syscall.Kill(-p.pid(), sig)
	}
}

// stop ends the process group: EOF on stdin and SIGTERM, then SIGKILL after
// stopGrace. It returns an error if the process did not exit.
func (p *process) stop() error {
	if p.stdin != nil {
		p.stdin.Close()
	}
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(stopGrace):
	}
	p.signal(syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("peers: %s (pid %d) did not exit after SIGKILL", p.name, p.pid())
	}
}

// exitStatus describes how the process ended, once done is closed.
func (p *process) exitStatus() string {
	if p.waitErr == nil {
		return "exited with status 0"
	}
	return p.waitErr.Error()
}

// newPeer wraps a started process in a Peer whose Stop is registered with
// t.Cleanup. On test failure the cleanup logs the server's output.
func newPeer(t testing.TB, name string, proc *process) *Peer {
	t.Helper()
	p := &Peer{Name: name, PID: proc.pid(), proc: proc}
	var once sync.Once
	var stopErr error
	p.Stop = func() {
		once.Do(func() { stopErr = proc.stop() })
	}
	t.Cleanup(func() {
		p.Stop()
		if stopErr != nil {
			t.Error(stopErr)
		}
		if t.Failed() {
			if out := p.Output(); out != "" {
				t.Logf("%s output:\n%s", name, out)
			}
		}
	})
	return p
}

// waitExitedNoReap blocks until pid has exited, leaving it a zombie (waitid
// with WNOWAIT) so that its pid is not reused before exec.Cmd.Wait reaps it.
func waitExitedNoReap(pid int) error {
	const (
		pPID    = 1         // P_PID
		wExited = 0x4       // WEXITED
		wNoWait = 0x1000000 // WNOWAIT
	)
	var siginfo [128]byte // siginfo_t
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&siginfo[0])), wExited|wNoWait, 0, 0)
		switch {
		case errno == 0:
			return nil
		case errors.Is(errno, syscall.EINTR):
			continue
		default:
			return errno
		}
	}
}
