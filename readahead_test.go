package wsclient

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand"
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

var errWouldBlock = errors.New("test: this read would wait for the peer")

// chunkConn is a net.Conn whose reads return what the socket would have
// queued: at most the next chunk, at most len(p); then end (err). Its
// readWaiting takes the same without blocking, and 0 when nothing is left.
type chunkConn struct {
	net.Conn
	chunks   [][]byte
	end      error
	reads    int // blocking reads
	waiting  int // non-blocking reads that found bytes
	pooledIn int // blocking reads given a buffer of the pooled size
}

func (c *chunkConn) take(p []byte) int {
	if len(c.chunks) == 0 {
		return 0
	}
	n := copy(p, c.chunks[0])
	if c.chunks[0] = c.chunks[0][n:]; len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	return n
}

func (c *chunkConn) Read(p []byte) (int, error) {
	c.reads++
	if len(p) == readAheadSize {
		c.pooledIn++
	}
	if len(c.chunks) == 0 {
		return 0, c.end
	}
	return c.take(p), nil
}

func (c *chunkConn) readWaiting(b []byte) int {
	n := c.take(b)
	if n > 0 {
		c.waiting++
	}
	return n
}

// TestReadAheadStream: whatever the chunks and the reader's buffer sizes, the
// bytes come out whole and in order, then the end; no read that may wait is
// given the pooled buffer, and it is not held once the stream has ended.
func TestReadAheadStream(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for round := 0; round < 200; round++ {
		var want []byte
		var chunks [][]byte
		for i := rng.Intn(20); i > 0; i-- {
			n := rng.Intn(3 * readAheadSize)
			if rng.Intn(2) == 0 {
				n = rng.Intn(200)
			}
			c := make([]byte, n)
			rng.Read(c)
			want = append(want, c...)
			chunks = append(chunks, c)
		}
		conn := &chunkConn{chunks: chunks, end: io.EOF}
		var r readAhead
		var got []byte
		for {
			p := make([]byte, 1+rng.Intn(2048))
			if rng.Intn(10) == 0 {
				p = make([]byte, readAheadSize+1+rng.Intn(100))
			}
			n, err := r.read(conn, p)
			got = append(got, p[:n]...)
			if err != nil {
				require.ErrorIs(t, err, io.EOF)
				break
			}
		}
		require.True(t, bytes.Equal(want, got), "round %d: %d bytes in, %d out", round, len(want), len(got))
		require.Zero(t, conn.pooledIn, "round %d: a read that may wait was given the pooled buffer", round)
		require.Nil(t, r.buf, "round %d: the pooled buffer is held after the stream ended", round)
	}
}

// TestReadAheadBurst: a burst larger than the reader's buffer comes in with one
// read that waits and one that takes the rest of it, and the buffer goes back
// once the burst is served.
func TestReadAheadBurst(t *testing.T) {
	burst := bytes.Repeat([]byte{'x'}, 10<<10)
	conn := &chunkConn{chunks: [][]byte{burst}, end: errWouldBlock}
	var r readAhead
	p := make([]byte, 1024)
	total := 0
	for total < len(burst) {
		n, err := r.read(conn, p)
		require.NoError(t, err)
		total += n
	}
	require.Equal(t, 1, conn.reads, "one 1 KiB read that may wait")
	require.Equal(t, 1, conn.waiting, "then the rest of the burst in one piece")
	require.Nil(t, r.buf, "served and not full: the buffer is back")
	_, err := r.read(conn, p)
	require.ErrorIs(t, err, errWouldBlock)
	require.Zero(t, conn.pooledIn)
}

// TestReadAheadIdleAfterExactFill: a read that fills the caller's buffer
// exactly (gorilla sizes a read to the rest of a message) and then silence:
// the next read waits on the caller's buffer, not on the pooled one.
func TestReadAheadIdleAfterExactFill(t *testing.T) {
	conn := &chunkConn{chunks: [][]byte{make([]byte, 1024)}, end: errWouldBlock}
	var r readAhead
	n, err := r.read(conn, make([]byte, 1024))
	require.NoError(t, err)
	require.Equal(t, 1024, n)
	require.True(t, r.full)
	_, err = r.read(conn, make([]byte, 1024))
	require.ErrorIs(t, err, errWouldBlock)
	require.Nil(t, r.buf)
	require.Zero(t, conn.pooledIn)
}

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
	time.Sleep(20 * time.Millisecond) // loopback: the bytes are in the socket by now
	before := spy.reads.Load()
	for i := 0; i < 200; i++ {
		_, p, err := ws.ReadMessage()
		require.NoError(t, err)
		require.Len(t, p, 64)
	}
	require.LessOrEqual(t, spy.reads.Load()-before, int64(3), "reads that may wait for 200 waiting messages")
}
