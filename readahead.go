package wsclient

import (
	"net"
	"sync"
	"syscall"
	"time"
)

// readAheadSize is the buffer a busy connection reads into: a burst of small
// messages, or a large message, comes in with one read system call instead of
// one per ReadBufferSize (1 KiB) of it.
const readAheadSize = 16 << 10

var readAheadPool = sync.Pool{New: func() any { b := make([]byte, readAheadSize); return &b }}

// readAhead lets a connection keep gorilla's small read buffer, which every
// idle connection holds, and still read a burst in large pieces. It reads
// straight into the caller's buffer until a read fills it (more may be
// waiting). The next read then takes, without blocking, what is waiting into a
// pooled 16 KiB buffer and serves the caller from there; when nothing is
// waiting, the pooled buffer goes back and the read blocks on the caller's
// buffer as before. So the pooled buffer is held only while it has bytes to
// serve or more are likely waiting: a read that waits for the peer never holds
// it, and an idle connection never does. (A filled read is only a hint: gorilla
// sizes its reads to the rest of a message, and such a read fills exactly.)
//
// Taking what is waiting needs the socket's raw descriptor (unix); elsewhere,
// or on a connection without one, every read is a direct read.
//
// While a stream of small pieces arrives, a read that would wait first yields
// the thread's CPU (see streamWindow): a producer that shares the CPU, such as
// the peer of a loopback connection or the client's own sender, runs first,
// and the read then takes a batch instead of waking up for each message.
//
// One goroutine reads at a time (the handshake, then the reader), so it needs
// no lock; the pooled buffer is only ever written by that goroutine's own
// non-blocking read, so Close cannot race with it.
type readAhead struct {
	buf       *[]byte         // the pooled buffer while busy
	data      []byte          // bytes read into buf and not yet served
	full      bool            // the last read filled its buffer: more is likely waiting
	streaming bool            // the last read that could wait brought a batch quickly (streamWindow)
	got       int             // bytes taken from the socket since the last read that could wait (yieldBelow)
	raw       syscall.RawConn // the socket's descriptor, once looked up
	yield     func()          // yieldCPU; tests count the calls
	window    time.Duration   // streamWindow; tests set their own

	// The non-blocking read's callback, made once (a closure per read would
	// allocate), and what it reads into and has read.
	probe    func(fd uintptr) bool
	probeBuf []byte
	probeN   int
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
	if r.full && len(p) > 0 && len(p) < readAheadSize {
		if r.buf == nil {
			r.buf = readAheadPool.Get().(*[]byte)
		}
		if n := r.readWaiting(c, *r.buf); n > 0 {
			r.got += n
			r.full = n == len(*r.buf)
			m := copy(p, (*r.buf)[:n])
			r.data = (*r.buf)[m:n]
			if len(r.data) == 0 && !r.full {
				r.release()
			}
			return m, nil
		}
	}
	// Nothing known to be waiting: wait on the caller's buffer. Errors and the
	// end of the stream come this way too.
	r.release()
	if r.streaming && r.got < yieldBelow {
		if r.yield != nil {
			r.yield()
		} else {
			yieldCPU()
		}
	}
	start := time.Now()
	n, err := c.Read(p)
	window := streamWindow
	if r.window != 0 {
		window = r.window
	}
	r.got = n
	r.streaming = n > 0 && (n >= streamBytes || n == len(p)) && time.Since(start) < window
	r.full = n == len(p) && len(p) > 0
	return n, err
}

// A read that could wait marks the connection as streaming when it brought a
// batch (streamBytes, or all the caller asked for) within streamWindow; the
// next read that would wait then yields the CPU first (yieldCPU), unless the
// reads since that wakeup took yieldBelow or more. On this project's 2-core
// machines (BENCHMARKS.md, change 15) a stream of 64-byte messages otherwise
// wakes the reader for every one or two messages, and each wakeup costs the
// client and the peer more than the messages do. A read of one small message
// (a request's answer) or after a longer wait (an idle or slow connection)
// does not yield: there a yield only delays the reader. Nor does a wakeup that
// already took a large batch (a stream of large messages): its cost is
// amortised, and a yield there cost 16 KiB streams 15 % of their throughput.
const streamWindow = time.Millisecond

const streamBytes = 512

const yieldBelow = 4 << 10

// waitingReader is a connection that can take what is already waiting without
// blocking: the tests' fakes.
type waitingReader interface{ readWaiting(b []byte) int }

// readWaiting reads into b what c already has, without blocking: 0 when
// nothing is waiting, on any error, or when c has no raw descriptor (the
// blocking read that follows reports errors and the end the usual way).
func (r *readAhead) readWaiting(c net.Conn, b []byte) int {
	if w, ok := c.(waitingReader); ok {
		return w.readWaiting(b)
	}
	if r.raw == nil {
		sc, ok := c.(syscall.Conn)
		if !ok {
			return 0
		}
		raw, err := sc.SyscallConn()
		if err != nil {
			return 0
		}
		r.raw = raw
	}
	return r.readNonBlocking(b)
}

func (r *readAhead) release() {
	if r.buf != nil {
		readAheadPool.Put(r.buf)
		r.buf, r.data = nil, nil
	}
}
