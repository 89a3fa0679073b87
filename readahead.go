package wsclient

import (
	"net"
	"sync"
)

// readAheadSize is the buffer a busy connection reads into: a burst of small
// messages, or a large message, comes in with one read system call instead of
// one per ReadBufferSize (1 KiB) of it.
const readAheadSize = 16 << 10

var readAheadPool = sync.Pool{New: func() any { b := make([]byte, readAheadSize); return &b }}

// readAhead lets a connection keep gorilla's small read buffer, which every
// idle connection holds, and still read a burst in large pieces. It reads
// straight into the caller's buffer until a read fills it (the socket may hold
// more); the next read then goes into a pooled 16 KiB buffer, and the caller
// is served from there. The pooled buffer goes back once a read did not fill
// it and its bytes were all served: it is held only while data keeps coming
// faster than the reader takes it, never by an idle connection's waiting read.
//
// One goroutine reads at a time (the handshake, then the reader), so it needs
// no lock. A connection closed while busy leaves its buffer to the collector:
// a read may still be writing into it.
type readAhead struct {
	buf  *[]byte // the pooled buffer while busy
	data []byte  // bytes read into buf and not yet served
	err  error   // the error that came with the last read, due after data
	full bool    // the last read filled its buffer: more is likely waiting
}

func (r *readAhead) read(c net.Conn, p []byte) (int, error) {
	if len(r.data) > 0 {
		n := copy(p, r.data)
		r.data = r.data[n:]
		if len(r.data) == 0 && !r.full {
			r.release()
		}
		return n, nil
	}
	if r.err != nil {
		err := r.err
		r.err = nil
		return 0, err
	}
	if !r.full || len(p) >= readAheadSize {
		r.release()
		n, err := c.Read(p)
		r.full = n == len(p) && len(p) > 0
		return n, err
	}
	if r.buf == nil {
		r.buf = readAheadPool.Get().(*[]byte)
	}
	n, err := c.Read(*r.buf)
	r.full = n == len(*r.buf)
	m := copy(p, (*r.buf)[:n])
	r.data = (*r.buf)[m:n]
	if len(r.data) > 0 {
		r.err = err
		return m, nil
	}
	if !r.full {
		r.release()
	}
	return m, err
}

func (r *readAhead) release() {
	if r.buf != nil {
		readAheadPool.Put(r.buf)
		r.buf, r.data = nil, nil
	}
}
