//go:build unix

package wsclient

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// The read-ahead on real sockets: it needs a raw descriptor (unix).

// spyConn is a real socket that records the reads that may wait (its raw
// descriptor stays reachable, so read-ahead takes what is waiting past it).
type spyConn struct {
	net.Conn
	reads   atomic.Int64
	waiting atomic.Int64 // the length of the read now waiting, 0 if none
}

func (s *spyConn) Read(p []byte) (int, error) {
	s.reads.Add(1)
	s.waiting.Store(int64(len(p)))
	n, err := s.Conn.Read(p)
	s.waiting.Store(0)
	return n, err
}

func (s *spyConn) SyscallConn() (syscall.RawConn, error) {
	return s.Conn.(syscall.Conn).SyscallConn()
}

// spyDial dials url with gorilla over dialConn (past its upgrade) and a spy on
// the socket, as the client's dialer does but for the spy.
func spyDial(t *testing.T, url string) (*websocket.Conn, *spyConn, *dialConn) {
	t.Helper()
	spy := &spyConn{}
	var dc *dialConn
	d := websocket.Dialer{
		ReadBufferSize: readBufferSize,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			raw, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			spy.Conn = raw
			dc = &dialConn{Conn: spy}
			dc.open.Store(true)
			return watchWire(dc), nil
		},
	}
	ws, _, err := d.Dial("ws"+strings.TrimPrefix(url, "http"), nil)
	require.NoError(t, err)
	return ws, spy, dc
}

// TestReadAheadSocketIdleAfterLargeMessage: on a real socket, a 64 KiB message
// that arrives in two parts, then silence: the reader then waits on gorilla's
// 1 KiB buffer, and holds no pooled buffer.
func TestReadAheadSocketIdleAfterLargeMessage(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		nc := ws.NetConn()
		nc.Write(append([]byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}, make([]byte, 32<<10)...))
		time.Sleep(50 * time.Millisecond)
		nc.Write(make([]byte, 32<<10))
		<-stop
	}))
	defer srv.Close()
	defer close(stop)
	ws, spy, dc := spyDial(t, srv.URL)
	defer ws.Close()
	_, r, err := ws.NextReader()
	require.NoError(t, err)
	data, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Len(t, data, 64<<10)
	done := make(chan struct{})
	go func() { defer close(done); ws.NextReader() }()
	require.Eventually(t, func() bool { return spy.waiting.Load() != 0 }, 5*time.Second, time.Millisecond)
	require.NotEqual(t, int64(readAheadSize), spy.waiting.Load(), "the idle read waits on the pooled buffer")
	require.Nil(t, dc.ahead.buf, "an idle connection holds the pooled buffer")
	ws.Close()
	<-done
}

// TestReadAheadSocketBurst: on a real socket, 200 messages of 64 bytes that are
// all waiting come in with one read that may wait and one that takes the rest
// (gorilla's 1 KiB buffer alone would need 14 reads).
func TestReadAheadSocketBurst(t *testing.T) {
	sent := make(chan struct{})
	stop := make(chan struct{})
	frame := append([]byte{0x82, 64}, make([]byte, 64)...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		ws.NetConn().Write(bytes.Repeat(frame, 200))
		close(sent)
		<-stop
	}))
	defer srv.Close()
	defer close(stop)
	ws, spy, _ := spyDial(t, srv.URL)
	defer ws.Close()
	<-sent
	// All 200 frames are in the client's socket, but for what gorilla's 1 KiB
	// buffer may have taken with the handshake's response.
	rest := 200*len(frame) - readBufferSize
	require.Eventually(t, func() bool { return queued(t, spy.Conn) >= rest }, 5*time.Second, time.Millisecond,
		"the 200 frames in the client's socket")
	before := spy.reads.Load()
	for i := 0; i < 200; i++ {
		_, p, err := ws.ReadMessage()
		require.NoError(t, err)
		require.Len(t, p, 64)
	}
	require.LessOrEqual(t, spy.reads.Load()-before, int64(3), "reads that may wait for 200 waiting messages")
}

// queued is how many bytes wait unread in c's socket (a peek that neither
// blocks nor consumes them).
func queued(t *testing.T, c net.Conn) int {
	raw, err := c.(syscall.Conn).SyscallConn()
	require.NoError(t, err)
	buf := make([]byte, 64<<10)
	n := 0
	require.NoError(t, raw.Control(func(fd uintptr) {
		n, _, _ = syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	}))
	return n
}
