package wsclient

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"net"
	"testing"
	"time"

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

// pacedConn is a net.Conn whose every read fills the caller's buffer after wait.
type pacedConn struct {
	net.Conn
	wait time.Duration
}

func (c *pacedConn) Read(p []byte) (int, error) {
	time.Sleep(c.wait)
	return len(p), nil
}

// TestReadAheadYieldsWhileStreaming: a read that could wait yields the CPU
// first only when the read before it brought a batch (streamBytes, or all the
// caller asked for) within the stream window: not the first read, not after a
// read of one small message, not after one that waited longer (an idle or
// slow connection), not after the end or an error, not after a wakeup whose
// reads took yieldBelow or more (a large message). (The windows are far from
// the reads' durations both ways, so a slow machine cannot change the outcome.)
func TestReadAheadYieldsWhileStreaming(t *testing.T) {
	yields := 0
	p := make([]byte, 2*streamBytes)
	batch := func() []byte { return make([]byte, streamBytes) }

	// Batches that are there at once: every read after the first yields first.
	fast := &chunkConn{chunks: [][]byte{batch(), batch(), batch(), batch()}, end: errWouldBlock}
	r := readAhead{yield: func() { yields++ }, window: time.Minute}
	for i := 0; i < 4; i++ {
		n, err := r.read(fast, p)
		require.NoError(t, err)
		require.Equal(t, streamBytes, n)
		require.Equal(t, i, yields, "yields before read %d", i+1)
	}
	// The stream's end: this read yields (the one before had a batch), the next does not.
	_, err := r.read(fast, p)
	require.ErrorIs(t, err, errWouldBlock)
	require.Equal(t, 4, yields)
	_, err = r.read(fast, p)
	require.ErrorIs(t, err, errWouldBlock)
	require.Equal(t, 4, yields, "a read after one that got no bytes yielded")

	// One small message at a time (a request and its answer): no read yields.
	yields = 0
	small := &chunkConn{chunks: [][]byte{make([]byte, 70), make([]byte, 70), make([]byte, 70)}, end: errWouldBlock}
	r = readAhead{yield: func() { yields++ }, window: time.Minute}
	for i := 0; i < 3; i++ {
		_, err := r.read(small, p)
		require.NoError(t, err)
	}
	require.Zero(t, yields, "a read after one small message yielded")

	// Batches that come further apart than the window: no read yields.
	paced := &pacedConn{wait: 20 * time.Millisecond}
	r = readAhead{yield: func() { yields++ }, window: time.Millisecond}
	for i := 0; i < 3; i++ {
		n, err := r.read(paced, p)
		require.NoError(t, err)
		require.Equal(t, len(p), n)
	}
	require.Zero(t, yields, "a slow connection yielded")

	// The stream speeds up: the read after the first fast one yields.
	paced.wait, r.window = 0, time.Minute
	_, err = r.read(paced, p) // the read before it waited: no yield
	require.NoError(t, err)
	require.Zero(t, yields)
	_, err = r.read(paced, p) // the read before it had a batch at once: yield
	require.NoError(t, err)
	require.Equal(t, 1, yields)

	// A wakeup whose reads took yieldBelow or more (a large message) is not
	// followed by a yield; one that took a byte less is.
	for _, tc := range []struct{ took, yields int }{{yieldBelow, 0}, {yieldBelow - 1, 1}} {
		yields = 0
		ahead := tc.took - len(p) // the full read, then what the read-ahead takes
		big := &chunkConn{chunks: [][]byte{make([]byte, len(p)), make([]byte, ahead), make([]byte, len(p))}, end: errWouldBlock}
		r = readAhead{yield: func() { yields++ }, window: time.Minute}
		for got := 0; got < tc.took; {
			n, err := r.read(big, p)
			require.NoError(t, err)
			got += n
		}
		require.Equal(t, 1, big.reads)
		require.Equal(t, 1, big.waiting)
		_, err = r.read(big, p) // waits: yields only if the wakeup took less than yieldBelow
		require.NoError(t, err)
		require.Equal(t, 2, big.reads)
		require.Equal(t, tc.yields, yields, "a wakeup that took %d bytes", tc.took)
	}
}
