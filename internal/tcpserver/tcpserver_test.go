package tcpserver

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestScriptRunsPerConnection(t *testing.T) {
	s := Start(t, func(c net.Conn) {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil {
			io.WriteString(c, "got "+line)
		}
	})
	for i := 1; i <= 2; i++ {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "hello\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c) // the server closes the connection when the script returns
		c.Close()
		if err != nil || string(b) != "got hello\n" {
			t.Fatalf("%q, %v", b, err)
		}
		if s.Accepted() != i {
			t.Errorf("Accepted %d, want %d", s.Accepted(), i)
		}
	}
}

func TestCloseEndsTheScripts(t *testing.T) {
	started := make(chan struct{})
	s := Start(t, func(c net.Conn) {
		close(started)
		io.Copy(io.Discard, c) // says nothing, until the connection is closed
	})
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-started
	done := make(chan struct{})
	go func() {
		s.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the script")
	}
	s.Close() // again
	if _, err := net.Dial("tcp", s.Addr()); err == nil {
		t.Error("still listening after Close")
	}
}
