package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"
)

// writingConn is a Conn over a net.Pipe whose writer goroutine is inside the
// frame of a 64 KiB binary message (a pipe write waits for the reader: the
// peer has read its first byte, which rest gives back first).
type writingConn struct {
	c     *Conn
	p     *ctPeer
	rest  io.Reader  // the peer's side of the stream, from the first byte
	wrote chan error // the WriteMessage's result
	size  int        // the message's length
}

func newWritingConn(t *testing.T) *writingConn {
	t.Helper()
	c, p := ctPipe(t, ConnOptions{}, false)
	w := &writingConn{c: c, p: p, wrote: make(chan error, 1), size: 64 << 10}
	go func() { w.wrote <- c.WriteMessage(context.Background(), OpBinary, make([]byte, w.size)) }()
	var first [1]byte
	if _, err := io.ReadFull(p.nc, first[:]); err != nil {
		t.Fatal(err)
	}
	w.rest = io.MultiReader(bytes.NewReader(first[:]), p.nc)
	return w
}

// expectMessage reads the whole binary message from rest.
func (w *writingConn) expectMessage(t *testing.T) {
	t.Helper()
	if f, err := ctReadFrame(w.rest); err != nil || f.op != OpBinary || len(f.payload) != w.size {
		t.Fatalf("first frame: op %v, %d bytes, %v; want the whole binary message", f.op, len(f.payload), err)
	}
}

// expectCloseThenEnd reads a close frame with code from r, then the end of
// the stream, and waits for the message's write to have succeeded.
func (w *writingConn) expectCloseThenEnd(t *testing.T, r io.Reader, code int) {
	t.Helper()
	f, err := ctReadFrame(r)
	if err != nil || f.op != OpClose || len(f.payload) < 2 || int(binary.BigEndian.Uint16(f.payload)) != code {
		t.Fatalf("after the message: op %v payload %q, %v; want close %d", f.op, f.payload, err, code)
	}
	if _, err := ctReadFrame(r); !errors.Is(err, io.EOF) {
		t.Fatalf("after the close frame: %v, want the end of the stream", err)
	}
	select {
	case <-w.c.Ended():
	case <-time.After(10 * time.Second):
		t.Fatal("Ended not closed")
	}
	select {
	case err := <-w.wrote:
		if err != nil {
			t.Fatalf("the message in progress: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WriteMessage did not return")
	}
}

// A connection failed while another goroutine writes a message: the close
// frame goes out right after that message's frame, then the socket drops.
// (Queuing the close and dropping the socket at once lost the close frame:
// the peer saw the message cut short and no close code.)
func TestCloseAndAbortAfterTheFrameInProgress(t *testing.T) {
	t.Parallel()
	w := newWritingConn(t)
	w.c.CloseAndAbort(CloseInternalError, "", 10*time.Second)
	w.expectMessage(t)
	w.expectCloseThenEnd(t, w.rest, CloseInternalError)
	if _, err := readWithin(t, w.c); err == nil {
		t.Fatal("ReadMessage after CloseAndAbort: no error")
	}
}

// A writer stuck on a peer that reads nothing more: after d the socket drops
// anyway, and the stuck write returns.
func TestCloseAndAbortBoundsAStuckWriter(t *testing.T) {
	t.Parallel()
	w := newWritingConn(t)
	w.c.CloseAndAbort(CloseInternalError, "", 20*time.Millisecond) // returns at once
	select {
	case err := <-w.wrote:
		if err == nil {
			t.Fatal("the stuck write succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stuck write did not return after the bound")
	}
	if err := w.c.WriteMessage(context.Background(), OpText, []byte("x")); !errors.Is(err, ErrClosed) && !errors.Is(err, ErrCloseSent) {
		t.Fatalf("a write after CloseAndAbort: %v, want ErrClosed or ErrCloseSent", err)
	}
}

// With no other writer the close frame goes out at once, then the socket
// drops; a close frame queued before decides.
func TestCloseAndAbortIdle(t *testing.T) {
	t.Parallel()
	for _, queued := range []bool{false, true} {
		c, p := ctPipe(t, ConnOptions{}, true)
		want := CloseInternalError
		if queued {
			want = CloseNormal
			go func() { _ = c.Close(CloseNormal, "") }()
			p.expectClose(want)
		}
		go c.CloseAndAbort(CloseInternalError, "", 10*time.Second)
		if !queued {
			p.expectClose(want)
		}
		select {
		case _, ok := <-p.frames:
			if ok {
				t.Fatalf("queued %v: a frame after the close frame", queued)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("queued %v: the socket was not dropped", queued)
		}
	}
}

// The peer's close frame arrives while another goroutine writes a message:
// the reader queues the answer behind that frame, and AbortWhenClosed (what
// wsclient and wstest do when the reader ends) drops the socket only once the
// answer is out. Aborting at once lost it: the peer saw no close frame.
func TestAbortWhenClosedAfterThePeersClose(t *testing.T) {
	t.Parallel()
	w := newWritingConn(t)
	w.p.send(ctFrame(0x88, false, ctClosePayload(CloseGoingAway, "bye")))
	if _, err := readWithin(t, w.c); asClose(t, err).Code != CloseGoingAway {
		t.Fatalf("ReadMessage: %v, want the peer's close", err)
	}
	if !w.c.CloseSent() {
		t.Fatal("the reader did not queue the answer")
	}
	w.c.AbortWhenClosed(10 * time.Second)
	w.expectMessage(t)
	w.expectCloseThenEnd(t, w.rest, CloseGoingAway)
}

// The close frame already queued is being written (behind another writer's
// frame) when CloseAndAbort is called: closeDone is set, but the frame is not
// out yet. CloseAndAbort must wait for that write, not drop the socket under
// it. (It took closeDone for "written" and cut the close frame short.)
func TestCloseAndAbortWhileTheCloseFrameIsWritten(t *testing.T) {
	t.Parallel()
	w := newWritingConn(t)
	// Queued behind the frame in progress (the reader's echo of a peer's
	// close takes the same path).
	if err := w.c.Close(CloseGoingAway, "bye"); err != nil {
		t.Fatal(err)
	}
	w.expectMessage(t)
	// The writer is now inside the close frame's write: a pipe write waits
	// for the reader.
	var first [1]byte
	if _, err := io.ReadFull(w.p.nc, first[:]); err != nil {
		t.Fatal(err)
	}
	w.c.CloseAndAbort(CloseNormal, "", 10*time.Second)
	w.expectCloseThenEnd(t, io.MultiReader(bytes.NewReader(first[:]), w.p.nc), CloseGoingAway)
}
