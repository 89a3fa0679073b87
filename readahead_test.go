package wsclient

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// chunkConn is a net.Conn whose reads return what the socket would have
// queued: at most the next chunk, at most len(p), then err.
type chunkConn struct {
	net.Conn
	chunks [][]byte
	err    error
	reads  int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	c.reads++
	if len(c.chunks) == 0 {
		return 0, c.err
	}
	n := copy(p, c.chunks[0])
	if c.chunks[0] = c.chunks[0][n:]; len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

// TestReadAheadStream: whatever the chunks and the reader's buffer sizes, the
// bytes come out whole and in order, then the error; the pooled buffer is not
// held once the stream has been drained.
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
		conn := &chunkConn{chunks: chunks, err: io.EOF}
		var r readAhead
		var got []byte
		for {
			p := make([]byte, 1+rng.Intn(2048))
			if rng.Intn(10) == 0 {
				p = make([]byte, readAheadSize+rng.Intn(100))
			}
			n, err := r.read(conn, p)
			got = append(got, p[:n]...)
			if err != nil {
				require.ErrorIs(t, err, io.EOF)
				break
			}
		}
		require.True(t, bytes.Equal(want, got), "round %d: %d bytes in, %d out", round, len(want), len(got))
		require.Nil(t, r.buf, "round %d: the pooled buffer is held after the stream ended", round)
	}
}

// TestReadAheadBurst: a burst larger than the reader's buffer comes in with one
// large read after the first full one, and the buffer goes back when the burst
// is over, so that a connection waiting for its next message holds none.
func TestReadAheadBurst(t *testing.T) {
	burst := bytes.Repeat([]byte{'x'}, 10<<10)
	conn := &chunkConn{chunks: [][]byte{burst, []byte("tail")}, err: io.EOF}
	var r readAhead
	p := make([]byte, 1024)
	total := 0
	for total < len(burst) {
		n, err := r.read(conn, p)
		require.NoError(t, err)
		total += n
	}
	require.Equal(t, 2, conn.reads, "one 1 KiB read, then the rest of the burst in one")
	n, err := r.read(conn, p)
	require.NoError(t, err)
	require.Equal(t, "tail", string(p[:n]))
	require.Nil(t, r.buf, "a read that did not fill its buffer ends the burst")
	_, err = r.read(conn, p)
	require.ErrorIs(t, err, io.EOF)
}

// TestReadAheadErrorAfterData: an error that comes with data is reported after
// the data has been served.
func TestReadAheadErrorAfterData(t *testing.T) {
	boom := errors.New("boom")
	conn := &dataErrConn{data: bytes.Repeat([]byte{'y'}, 3000), err: boom}
	r := readAhead{full: true} // busy: the next read goes into the pooled buffer
	p := make([]byte, 1024)
	var got int
	for {
		n, err := r.read(conn, p)
		got += n
		if err != nil {
			require.ErrorIs(t, err, boom)
			break
		}
	}
	require.Equal(t, 3000, got)
	require.Nil(t, r.buf)
}

// dataErrConn returns all its data and an error in one read (as a TLS
// connection may), then the error alone.
type dataErrConn struct {
	net.Conn
	data []byte
	err  error
}

func (c *dataErrConn) Read(p []byte) (int, error) {
	n := copy(p, c.data)
	c.data = c.data[n:]
	return n, c.err
}
