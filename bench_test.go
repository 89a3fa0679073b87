package wsclient

// Micro-benchmarks of the hot paths. They run only with -bench, e.g.
//
//	go test -run '^$' -bench . -benchmem
//
// The comparison with raw gorilla/websocket, coder/websocket and gws (and the
// idle, reconnect-storm and dead-peer figures) is the program in bench/.

import (
	neturl "net/url"

	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/internal/transport"

	"github.com/gorilla/websocket"
)

var benchLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// benchServer is a loopback gorilla server that runs serve on every connection;
// stop closes it and waits for its handlers.
func benchServer(b *testing.B, serve func(ws *websocket.Conn, r *http.Request)) (url string, stop func()) {
	b.Helper()
	var wg sync.WaitGroup
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		serve(ws, r)
	}))
	return "ws" + strings.TrimPrefix(srv.URL, "http"), func() {
		srv.CloseClientConnections()
		srv.Close()
		wg.Wait()
	}
}

// benchHandler hands every data frame to onFrame, on the reader goroutine.
type benchHandler struct {
	BaseHandler
	opened  chan struct{}
	once    sync.Once
	onFrame func(f Frame)
}

func (h *benchHandler) OnConnect(*Conn) error {
	h.once.Do(func() { close(h.opened) })
	return nil
}

func (h *benchHandler) HandleFrame(_ *Conn, f Frame) error {
	if h.onFrame != nil && (f.Type == Text || f.Type == Binary) {
		h.onFrame(f)
	}
	return nil
}

func (h *benchHandler) OnDisconnect(Disconnect) Decision { return Stop() }

// benchClient runs a client with keepalive off until stop.
func benchClient(b *testing.B, url string, onFrame func(Frame)) (c *Client, stop func()) {
	b.Helper()
	h := &benchHandler{opened: make(chan struct{}), onFrame: onFrame}
	c, err := New(url, h, &Options{Logger: benchLogger, Proxy: NoProxy, PingInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background()) }()
	stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_ = c.Close(ctx, CloseNormal, "")
		<-done
	}
	select {
	case <-h.opened:
	case err := <-done:
		b.Fatalf("Run ended before the connection opened: %v", err)
	case <-time.After(10 * time.Second):
		stop()
		b.Fatal("no connection within 10s")
	}
	return c, stop
}

func benchWait(b *testing.B, ch <-chan struct{}) {
	b.Helper()
	select {
	case <-ch:
	case <-time.After(60 * time.Second):
		b.Fatal("timed out")
	}
}

// discardServer drops the socket's bytes unread: it costs the server nearly
// nothing and allocates nothing, so a Send benchmark's allocations are the
// client's own. It never answers the close frame: benchClient's stop gives the
// close handshake a short wait only.
func discardServer(ws *websocket.Conn, _ *http.Request) { io.Copy(io.Discard, ws.NetConn()) }

var benchSizes = []struct {
	name string
	size int
}{{"64B", 64}, {"16KiB", 16 << 10}}

// BenchmarkSend: Client.Send of a Binary frame to a server that drops it.
func BenchmarkSend(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			url, stopServer := benchServer(b, discardServer)
			defer stopServer()
			c, stop := benchClient(b, url, nil)
			defer stop()
			msg := BinaryFrame(make([]byte, s.size))
			ctx := context.Background()
			b.SetBytes(int64(s.size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := c.Send(ctx, msg); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer() // the close handshake is not part of it
		})
	}
}

// BenchmarkGorillaSend is the baseline of BenchmarkSend: raw gorilla/websocket,
// WriteMessage on the same kind of connection.
func BenchmarkGorillaSend(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			url, stopServer := benchServer(b, discardServer)
			defer stopServer()
			ws, _, err := (&websocket.Dialer{}).Dial(url, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer ws.Close()
			msg := make([]byte, s.size)
			b.SetBytes(int64(s.size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := ws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
		})
	}
}

// dropWrites is a real socket whose writes, once drop is set, go nowhere: the
// write deadlines still reach the runtime poller, but there is no write system
// call, so what remains is the cost of the code above the socket, without the
// kernel's noise.
type dropWrites struct {
	net.Conn
	drop *atomic.Bool
}

func (d *dropWrites) Write(p []byte) (int, error) {
	if d.drop.Load() {
		return len(p), nil
	}
	return d.Conn.Write(p)
}

// BenchmarkSendNoIO: the library's own cost of sending a 64-byte Binary frame
// (Conn.Send: checks, the write lock, the deadline, framing and masking), on a
// transport connection whose socket drops what is written.
func BenchmarkSendNoIO(b *testing.B) {
	url, stopServer := benchServer(b, discardServer)
	defer stopServer()
	var drop atomic.Bool
	c, err := New(url, &benchHandler{}, &Options{Logger: benchLogger, Proxy: NoProxy, PingInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	u, _ := neturl.Parse(url)
	tc, err := transport.Dial(context.Background(), &transport.Config{URL: u, WriteTimeout: 10 * time.Second,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &dropWrites{Conn: nc, drop: &drop}, nil
		}})
	if err != nil {
		b.Fatal(err)
	}
	defer tc.Abort()
	conn := newConn(c, 1, tc)
	drop.Store(true)
	msg := BinaryFrame(make([]byte, 64))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := conn.Send(msg); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	drop.Store(false)
}

// BenchmarkGorillaSendNoIO is the baseline of BenchmarkSendNoIO: raw gorilla's
// WriteMessage on a socket that drops what is written.
func BenchmarkGorillaSendNoIO(b *testing.B) {
	url, stopServer := benchServer(b, discardServer)
	defer stopServer()
	var drop atomic.Bool
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &dropWrites{Conn: nc, drop: &drop}, nil
	}}
	ws, _, err := d.Dial(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Close()
	drop.Store(true)
	msg := make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := ws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	drop.Store(false)
}

// BenchmarkSendText64: as Send/64B with a Text frame (Send validates UTF-8).
func BenchmarkSendText64(b *testing.B) {
	url, stopServer := benchServer(b, discardServer)
	defer stopServer()
	c, stop := benchClient(b, url, nil)
	defer stop()
	msg := TextFrame(strings.Repeat("é", 32))
	ctx := context.Background()
	b.SetBytes(int64(len(msg.Data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
}

// floodServer waits for one message, then sends n messages of size bytes
// (query n and size), then drains until the client closes.
func floodServer(ws *websocket.Conn, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	size, _ := strconv.Atoi(r.URL.Query().Get("size"))
	mt, _, err := ws.ReadMessage()
	if err != nil {
		return
	}
	msg := make([]byte, size)
	if mt == websocket.TextMessage {
		msg = bytes.Repeat([]byte("a"), size)
	}
	for i := 0; i < n; i++ {
		if err := ws.WriteMessage(mt, msg); err != nil {
			return
		}
	}
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			return
		}
	}
}

// BenchmarkReceive: the server floods; the reader reads, copies and calls
// HandleFrame, which counts. Text runs the incremental UTF-8 check too.
func BenchmarkReceive(b *testing.B) {
	for _, typ := range []MessageType{Binary, Text} {
		for _, s := range benchSizes {
			b.Run(typ.String()+"/"+s.name, func(b *testing.B) {
				url, stopServer := benchServer(b, floodServer)
				defer stopServer()
				done := make(chan struct{})
				count := 0
				c, stop := benchClient(b, url+"?n="+strconv.Itoa(b.N)+"&size="+strconv.Itoa(s.size), func(Frame) {
					count++
					if count == b.N {
						close(done)
					}
				})
				defer stop()
				b.SetBytes(int64(s.size))
				b.ReportAllocs()
				b.ResetTimer()
				if err := c.Send(context.Background(), Frame{Type: typ, Data: []byte("go")}); err != nil {
					b.Fatal(err)
				}
				benchWait(b, done)
				b.StopTimer()
			})
		}
	}
}

// BenchmarkGorillaReceive is the baseline of BenchmarkReceive/binary: raw
// gorilla/websocket, ReadMessage on one reader goroutine.
func BenchmarkGorillaReceive(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			url, stopServer := benchServer(b, floodServer)
			defer stopServer()
			ws, _, err := (&websocket.Dialer{}).Dial(url+"?n="+strconv.Itoa(b.N)+"&size="+strconv.Itoa(s.size), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer ws.Close()
			b.SetBytes(int64(s.size))
			b.ReportAllocs()
			b.ResetTimer()
			if err := ws.WriteMessage(websocket.BinaryMessage, []byte("go")); err != nil {
				b.Fatal(err)
			}
			for i := 0; i < b.N; i++ {
				if _, _, err := ws.ReadMessage(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
		})
	}
}

// BenchmarkRoundTrip64: Client.Send, then wait until HandleFrame has the echo.
func BenchmarkRoundTrip64(b *testing.B) {
	url, stopServer := benchServer(b, func(ws *websocket.Conn, _ *http.Request) { echo(ws) })
	defer stopServer()
	got := make(chan struct{}, 1)
	c, stop := benchClient(b, url, func(Frame) { got <- struct{}{} })
	defer stop()
	msg := BinaryFrame(make([]byte, 64))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
		<-got
	}
	b.StopTimer()
}
