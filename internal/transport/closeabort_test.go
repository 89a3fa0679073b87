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

// A connection failed while another goroutine writes a message: the close
// frame goes out right after that message's frame, then the socket drops.
// (Queuing the close and dropping the socket at once lost the close frame:
// the peer saw the message cut short and no close code.)
func TestCloseAndAbortAfterTheFrameInProgress(t *testing.T) {
	t.Parallel()
	c, p := ctPipe(t, ConnOptions{}, false)
	data := make([]byte, 64<<10)
	wrote := make(chan error, 1)
	go func() { wrote <- c.WriteMessage(context.Background(), OpBinary, data) }()

	// The writer is inside its frame: a net.Pipe write waits for the reader.
	var first [1]byte
	if _, err := io.ReadFull(p.nc, first[:]); err != nil {
		t.Fatal(err)
	}
	c.CloseAndAbort(CloseInternalError, "", 10*time.Second)

	rest := io.MultiReader(bytes.NewReader(first[:]), p.nc)
	f, err := ctReadFrame(rest)
	if err != nil || f.op != OpBinary || len(f.payload) != len(data) {
		t.Fatalf("first frame: op %v, %d bytes, %v; want the whole binary message", f.op, len(f.payload), err)
	}
	f, err = ctReadFrame(rest)
	if err != nil || f.op != OpClose || len(f.payload) < 2 || binary.BigEndian.Uint16(f.payload) != CloseInternalError {
		t.Fatalf("after the message: op %v payload %q, %v; want close %d", f.op, f.payload, err, CloseInternalError)
	}
	if _, err := ctReadFrame(rest); !errors.Is(err, io.EOF) {
		t.Fatalf("after the close frame: %v, want the end of the stream", err)
	}
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatalf("the message in progress: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WriteMessage did not return")
	}
	if _, err := readWithin(t, c); err == nil {
		t.Fatal("ReadMessage after CloseAndAbort: no error")
	}
}

// A writer stuck on a peer that reads nothing more: after d the socket drops
// anyway, and the stuck write returns.
func TestCloseAndAbortBoundsAStuckWriter(t *testing.T) {
	t.Parallel()
	c, p := ctPipe(t, ConnOptions{}, false)
	wrote := make(chan error, 1)
	go func() { wrote <- c.WriteMessage(context.Background(), OpBinary, make([]byte, 64<<10)) }()
	var first [1]byte
	if _, err := io.ReadFull(p.nc, first[:]); err != nil {
		t.Fatal(err)
	}
	c.CloseAndAbort(CloseInternalError, "", 20*time.Millisecond) // returns at once
	select {
	case err := <-wrote:
		if err == nil {
			t.Fatal("the stuck write succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stuck write did not return after the bound")
	}
	if err := c.WriteMessage(context.Background(), OpText, []byte("x")); !errors.Is(err, ErrClosed) && !errors.Is(err, ErrCloseSent) {
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
// the reader queues the answer behind that frame, and CloseAndAbort (what
// wsclient and wstest do when the reader ends) drops the socket only once the
// answer is out. Aborting at once lost it: the peer saw no close frame.
func TestCloseAndAbortAfterThePeersClose(t *testing.T) {
	t.Parallel()
	c, p := ctPipe(t, ConnOptions{}, false)
	data := make([]byte, 64<<10)
	wrote := make(chan error, 1)
	go func() { wrote <- c.WriteMessage(context.Background(), OpBinary, data) }()
	var first [1]byte
	if _, err := io.ReadFull(p.nc, first[:]); err != nil {
		t.Fatal(err)
	}
	p.send(ctFrame(0x88, false, ctClosePayload(CloseGoingAway, "bye")))
	if _, err := readWithin(t, c); asClose(t, err).Code != CloseGoingAway {
		t.Fatalf("ReadMessage: %v, want the peer's close", err)
	}
	if !c.CloseSent() {
		t.Fatal("the reader did not queue the answer")
	}
	c.CloseAndAbort(CloseNormal, "", 10*time.Second)

	rest := io.MultiReader(bytes.NewReader(first[:]), p.nc)
	if f, err := ctReadFrame(rest); err != nil || f.op != OpBinary || len(f.payload) != len(data) {
		t.Fatalf("first frame: op %v, %d bytes, %v; want the whole message", f.op, len(f.payload), err)
	}
	f, err := ctReadFrame(rest)
	if err != nil || f.op != OpClose || len(f.payload) < 2 || binary.BigEndian.Uint16(f.payload) != CloseGoingAway {
		t.Fatalf("after the message: op %v payload %q, %v; want the echo of close %d", f.op, f.payload, err, CloseGoingAway)
	}
	if _, err := ctReadFrame(rest); !errors.Is(err, io.EOF) {
		t.Fatalf("after the close frame: %v, want the end of the stream", err)
	}
	select {
	case <-c.Ended():
	case <-time.After(10 * time.Second):
		t.Fatal("Ended not closed")
	}
	if err := <-wrote; err != nil {
		t.Fatalf("the message in progress: %v", err)
	}
}

// The close frame already queued is being written (behind another writer's
// frame) when CloseAndAbort is called: closeDone is set, but the frame is not
// out yet. CloseAndAbort must wait for that write, not drop the socket under
// it. (It took closeDone for "written" and cut the close frame short.)
func TestCloseAndAbortWhileTheCloseFrameIsWritten(t *testing.T) {
	t.Parallel()
	c, p := ctPipe(t, ConnOptions{}, false)
	data := make([]byte, 64<<10)
	wrote := make(chan error, 1)
	go func() { wrote <- c.WriteMessage(context.Background(), OpBinary, data) }()
	var first [1]byte
	if _, err := io.ReadFull(p.nc, first[:]); err != nil {
		t.Fatal(err)
	}
	// Queued behind the frame in progress (the reader's echo of a peer's
	// close takes the same path).
	if err := c.Close(CloseGoingAway, "bye"); err != nil {
		t.Fatal(err)
	}
	rest := io.MultiReader(bytes.NewReader(first[:]), p.nc)
	if f, err := ctReadFrame(rest); err != nil || f.op != OpBinary || len(f.payload) != len(data) {
		t.Fatalf("first frame: op %v, %d bytes, %v; want the whole message", f.op, len(f.payload), err)
	}
	// The writer is now inside the close frame's write: a pipe write waits
	// for the reader.
	if _, err := io.ReadFull(p.nc, first[:]); err != nil {
		t.Fatal(err)
	}
	c.CloseAndAbort(CloseNormal, "", 10*time.Second)

	rest = io.MultiReader(bytes.NewReader(first[:]), p.nc)
	f, err := ctReadFrame(rest)
	if err != nil || f.op != OpClose || len(f.payload) < 2 || binary.BigEndian.Uint16(f.payload) != CloseGoingAway {
		t.Fatalf("after the message: op %v payload %q, %v; want close %d", f.op, f.payload, err, CloseGoingAway)
	}
	if _, err := ctReadFrame(rest); !errors.Is(err, io.EOF) {
		t.Fatalf("after the close frame: %v, want the end of the stream", err)
	}
	select {
	case <-c.Ended():
	case <-time.After(10 * time.Second):
		t.Fatal("Ended not closed")
	}
	if err := <-wrote; err != nil {
		t.Fatalf("the message in progress: %v", err)
	}
}
