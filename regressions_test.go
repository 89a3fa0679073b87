package wsclient

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/wstest"
	"github.com/stretchr/testify/require"
)

// TestConnCloseDuringLargeSendKeepsCloseCause guards a defect found in review; before the fix:
// A Conn.Close while a large Client.Send is mid-message: gorilla refuses the
// next fragment with ErrCloseSent, Conn.write treats that as a failed write and
// ends the connection, so the cause is a write error, not the handler's close,
// and the policy reconnects instead of stopping.
func TestConnCloseDuringLargeSendKeepsCloseCause(t *testing.T) {
	srv := wstest.Start(t, nil)
	tap := &wireTap{} // how far the client's Send got
	rec := newRecorder()
	conns := make(chan *Conn, 4)
	rec.onConnect = func(c *Conn) error { conns <- c; return nil }
	rec.decide = func(d Disconnect) Decision { return Stop() }
	o := testOptions()
	o.NetDialContext = tap.dial
	c := mustNew(t, srv.URL(), rec, o)
	wait := startClient(t, c)
	var conn *Conn
	select {
	case conn = <-conns:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection")
	}
	// A slow path: the 32 MiB Send stays in the middle of its message (the
	// server did not read, before).
	srv.Network().SetBandwidth(256 << 10)
	before := tap.bytes.written.Load()
	sendDone := make(chan error, 1)
	ctx := ctxTimeout(t, 5*time.Second)
	go func() {
		sendDone <- c.Send(ctx, Frame{Type: Binary, Data: make([]byte, 32<<20)})
	}()
	require.Eventually(t, func() bool { return tap.bytes.written.Load() > before+1<<20 }, 5*time.Second, time.Millisecond,
		"the Send wrote its first MiB")
	select {
	case err := <-sendDone:
		t.Fatalf("the 32 MiB Send returned (%v) before the close: not mid-message", err)
	default:
	}
	if err := conn.Close(CloseNormal, "bye"); err != nil {
		t.Fatal(err)
	}
	srv.Network().SetBandwidth(0) // the server reads it all now, and answers the close
	ev := rec.next(t, "disconnect")
	<-sendDone
	var ce *CloseError
	if !errors.As(ev.disc.Err, &ce) || !ce.Local || ce.Code != CloseNormal {
		t.Errorf("Disconnect.Err = %v, want the handler's local close 1000 (suggested %v)", ev.disc.Err, ev.disc.Suggested)
	}
	if !ev.disc.Suggested.IsStop() {
		t.Errorf("suggested %v after the handler's own Conn.Close, want Stop", ev.disc.Suggested)
	}
	_ = wait
}

// TestOutboxSendReturnsAtCtxAfterRequeue guards a defect found in review; before the fix:
// A Send waiting in the outbox whose ctx ends while flushOutbox holds its batch
// waits on p.done; when the connection ends mid-flush the frame is put back in
// the outbox, and Send stays blocked past its ctx until a later connection or
// the end of Run.
func TestOutboxSendReturnsAtCtxAfterRequeue(t *testing.T) {
	srv := wstest.Start(t, &wstest.Options{Check: func(*http.Request) *wstest.Response {
		return &wstest.Response{Status: http.StatusServiceUnavailable}
	}})
	srv.Enqueue(wstest.Response{}) // the first attempt is upgraded, every later one gets a 503
	// A slow path: the first connection takes the 32 MiB frame far slower than
	// WriteTimeout allows (the server did not read, before).
	srv.Network().SetBandwidth(64 << 10)
	o := testOptions()
	o.OutboxSize = 10
	o.WriteTimeout = 300 * time.Millisecond
	rec := newRecorder()
	c := mustNew(t, srv.URL(), rec, o)
	outbox := func() int { c.mu.Lock(); defer c.mu.Unlock(); return len(c.outbox) }

	bigDone := make(chan error, 1)
	bigCtx, smallCtx := ctxTimeout(t, 5*time.Second), ctxTimeout(t, 150*time.Millisecond)
	go func() {
		bigDone <- c.Send(bigCtx, Frame{Type: Binary, Data: make([]byte, 32<<20)})
	}()
	require.Eventually(t, func() bool { return outbox() == 1 }, 5*time.Second, time.Millisecond)
	smallDone := make(chan error, 1)
	go func() { smallDone <- c.Send(smallCtx, TextFrame("small")) }()
	require.Eventually(t, func() bool { return outbox() == 2 }, 5*time.Second, time.Millisecond)
	startClient(t, c)
	select {
	case err := <-smallDone:
		t.Logf("small Send returned %v", err)
	case <-time.After(2 * time.Second):
		t.Error("Send with a 150ms ctx still blocked after 2s")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(ctx, CloseNormal, "")
		<-smallDone
	}
	<-bigDone
}

// TestConnCloseRacingServerClose guards a defect found in review; before the fix:
// The server closes with 1008 while another goroutine calls Conn.Close: after
// the reader answered the server's close (closeSent set by onClose), startClose
// still writes localClose (racing with readError's read of it) and writes a
// second close frame; gorilla's ErrCloseSent then ends the connection with a
// "write close" error, so the 1008 (stop) is lost and the client reconnects.
func TestConnCloseRacingServerClose(t *testing.T) {
	srv := wstest.Start(t, nil)
	rec := newRecorder()
	kick := make(chan *Conn)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case c := <-kick:
				_ = c.Close(CloseNormal, "bye")
			case <-stop:
				return
			}
		}
	}()
	rec.onFrame = func(c *Conn, f Frame) error {
		if string(f.Data) == "now" {
			kick <- c
		}
		return nil
	}
	const rounds = 200
	n := 0
	rec.decide = func(d Disconnect) Decision {
		n++
		if n >= rounds {
			return Stop()
		}
		return ReconnectAfter(0)
	}
	c := mustNew(t, srv.URL(), rec, testOptions())
	startClient(t, c)
	bad := 0
	for i := 0; i < rounds; i++ {
		// Each connection: a message, then the server's close 1008 right
		// behind it, while the handler's Conn.Close races it.
		sc := nextConn(t, srv)
		require.NoError(t, sc.SendText("now"))
		_ = sc.Close(ClosePolicyViolation, "no") // fails if the client's close was first, and answered
		ev := rec.next(t, "disconnect")
		var ce *CloseError
		if !errors.As(ev.disc.Err, &ce) {
			bad++
			t.Logf("round %d: Disconnect.Err = %v", i, ev.disc.Err)
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d rounds lost the close cause", bad, rounds)
	}
}

// TestAbortDoesNotSpinOwnerLoop guards a defect found in review; before the fix:
// Client.Close whose ctx runs out closes c.abort; serve's select never sets its
// abort case to nil, so while the reader is held in HandleFrame the owner loop
// spins on the closed channel, burning a core.
func TestAbortDoesNotSpinOwnerLoop(t *testing.T) {
	srv := wstest.Start(t, nil)
	rec := newRecorder()
	inFrame := make(chan struct{}, 1)
	rec.onFrame = func(c *Conn, f Frame) error {
		inFrame <- struct{}{}
		time.Sleep(time.Second)
		return nil
	}
	c := mustNew(t, srv.URL(), rec, testOptions())
	wait := startClient(t, c)
	require.NoError(t, nextConn(t, srv).SendText("block"))
	select {
	case <-inFrame:
	case <-time.After(5 * time.Second):
		t.Fatal("no frame")
	}
	before := cpuTime()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_ = c.Close(ctx, CloseNormal, "")
	_ = wait()
	used, wall := cpuTime()-before, time.Since(start)
	t.Logf("cpu %v over %v", used, wall)
	if used > wall/2 {
		t.Errorf("owner loop spun: %v of CPU in %v while waiting for the reader", used, wall)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestSendRacingClientClose guards a defect found by the chaos test (1 run in
// a few hundred): Client.Close while senders are busy, with an outbox. A Send
// that was already waiting for gorilla's write lock when the close frame went
// out got ErrNotConnected ("a close frame went out during the write"), though
// nothing of its frame had been written; it now reports ErrClosed (or queues
// the frame), like every other Send that Close overtakes.
func TestSendRacingClientClose(t *testing.T) {
	srv := wstest.Start(t, nil) // reads (no echoes to fill the recorder)
	for round := 0; round < 40; round++ {
		rec := newRecorder()
		o := testOptions()
		o.OutboxSize = 4
		c := mustNew(t, srv.URL(), rec, o)
		wait := startClient(t, c)
		rec.next(t, "connect")

		const senders = 4
		var wg sync.WaitGroup
		started := make(chan struct{}, senders)
		errs := make(chan error, senders)
		for range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					err := c.Send(ctx, BinaryFrame(make([]byte, 64)))
					cancel()
					if i == 0 {
						started <- struct{}{}
					}
					switch {
					case err == nil, errors.Is(err, ErrOutboxFull):
					case errors.Is(err, ErrClosed):
						return
					default:
						errs <- err
						return
					}
				}
			}()
		}
		for range senders {
			<-started // every sender is writing
		}
		require.NoError(t, c.Close(ctxTimeout(t, 5*time.Second), CloseNormal, ""))
		wg.Wait()
		require.NoError(t, wait())
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: a Send overtaken by Client.Close: %v (want ErrClosed)", round, err)
		}
	}
}
