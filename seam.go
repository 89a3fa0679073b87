package wsclient

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/ff42ae21/wsclient/internal/transport"
)

// wire is one connection of the transport, as the supervisor uses it: the seam
// between the two layers. *transport.Conn implements it on real sockets; the
// supervisor's tests implement it in memory.
type wire interface {
	// ReadMessage returns the next data message or control frame; one
	// goroutine (the reader) calls it. Its error ends the connection.
	ReadMessage() (transport.Message, error)
	// WriteMessage writes a message; ctx bounds the wait for the write lock.
	// An error wrapping transport.ErrClosed or transport.ErrCloseSent means
	// nothing of it was written.
	WriteMessage(ctx context.Context, op transport.Opcode, data []byte) error
	// Ping and Close queue a control frame and never wait.
	Ping(payload []byte) error
	Close(code int, reason string) error
	// Abort drops the socket now; the reader returns.
	Abort()
	// CloseAndAbort queues a close frame and drops the socket once it is
	// out (after the frame being written, d at the most); AbortWhenClosed
	// does the same for a close frame already queued, and drops the socket
	// at once when there is none. They never wait.
	CloseAndAbort(code int, reason string, d time.Duration)
	AbortWhenClosed(d time.Duration)
	CloseSent() bool
	// Life grows whenever bytes arrived from the peer.
	Life() uint64
	Subprotocol() string
	Response() *http.Response
	LocalAddr() net.Addr
	RemoteAddr() net.Addr
}

// dialer makes one connection attempt.
type dialer func(ctx context.Context, cfg *transport.Config) (wire, error)

// dialTransport is the dialer of real clients.
func dialTransport(ctx context.Context, cfg *transport.Config) (wire, error) {
	c, err := transport.Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// clock is the time the supervisor runs on: the system's, or a fake one in tests.
type clock interface {
	Now() time.Time
	NewTimer(d time.Duration) timer
}

// timer is a stoppable, resettable timer whose channel the owner waits on.
type timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration)
}

type systemClock struct{}

func (systemClock) Now() time.Time                 { return time.Now() }
func (systemClock) NewTimer(d time.Duration) timer { return sysTimer{time.NewTimer(d)} }

type sysTimer struct{ t *time.Timer }

func (t sysTimer) C() <-chan time.Time   { return t.t.C }
func (t sysTimer) Stop() bool            { return t.t.Stop() }
func (t sysTimer) Reset(d time.Duration) { t.t.Reset(d) }
