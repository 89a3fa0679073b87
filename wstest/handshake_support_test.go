package wstest_test

// Tests of the handshake answers for broken servers: Response.Raw and
// AcceptKey.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient"
	"github.com/ff42ae21/wsclient/wstest"
)

// The example of RFC 6455 section 1.3.
func TestAcceptKey(t *testing.T) {
	t.Parallel()
	if got, want := wstest.AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; got != want {
		t.Errorf("AcceptKey = %q, want %q", got, want)
	}
}

// rawText is a Response.Raw that writes s.
func rawText(s string) func(*http.Request, io.Writer) {
	return func(_ *http.Request, w io.Writer) { _, _ = io.WriteString(w, s) }
}

// forSchemes runs fn over ws and over wss.
func forSchemes(t *testing.T, fn func(t *testing.T, tls bool)) {
	for _, tls := range []bool{false, true} {
		name := "ws"
		if tls {
			name = "wss"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, tls)
		})
	}
}

// clientOf are fastOptions for srv (its CA on wss).
func clientOf(srv *wstest.Server) *wsclient.Options {
	o := fastOptions()
	o.TLSConfig = srv.ClientTLSConfig()
	return o
}

// TestRawAnswers: the client sees each broken answer as it is, the server
// hangs up after it, the request is recorded, nothing is upgraded, and the
// request after the queue is upgraded as usual.
func TestRawAnswers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		raw  func(*http.Request, io.Writer)
		want string // in Disconnect.Err
		// status, when set, is the HandshakeError's StatusCode.
		status int
	}{
		{"nothing", rawText(""), "EOF", 0},
		{"cut in a header name", rawText("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnec"), "EOF", 0},
		{"another protocol", rawText("SSH-2.0-OpenSSH_9.2p1\r\n"), "SSH-2.0", 0},
		{"malformed header line", rawText("HTTP/1.1 101 Switching Protocols\r\nUpgrade websocket\r\n\r\n"), "malformed MIME header", 0},
		{"101 without Upgrade", func(r *http.Request, w io.Writer) {
			fmt.Fprintf(w, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
				wstest.AcceptKey(r.Header.Get("Sec-WebSocket-Key")))
		}, "Upgrade", 101},
		{"101 with a wrong accept key", func(r *http.Request, w io.Writer) {
			fmt.Fprintf(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
				wstest.AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="))
		}, "Sec-WebSocket-Accept", 101},
		{"200 in pieces", func(_ *http.Request, w io.Writer) {
			for _, s := range []string{"HTTP/1.1 200 OK\r\n", "Content-Length: 2\r\n", "\r\n", "hi"} {
				if _, err := io.WriteString(w, s); err != nil {
					return
				}
			}
		}, "HTTP 200", 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forSchemes(t, func(t *testing.T, tls bool) {
				srv := wstest.Start(t, &wstest.Options{TLS: tls})
				var path atomic.Value
				srv.Enqueue(wstest.Response{Raw: func(r *http.Request, w io.Writer) {
					path.Store(r.URL.Path)
					tc.raw(r, w)
				}})
				rec := newRecorder()
				rec.decide = func(wsclient.Disconnect) wsclient.Decision { return wsclient.ReconnectAfter(time.Millisecond) }
				run(t, srv.URL()+"feed", rec, clientOf(srv))
				d := receive(t, rec.disconnects, "disconnect")
				if d.Err == nil || !strings.Contains(d.Err.Error(), tc.want) {
					t.Errorf("Disconnect.Err %v, want it to contain %q", d.Err, tc.want)
				}
				if d.Connected {
					t.Error("the client reports a connection")
				}
				var he *wsclient.HandshakeError
				if tc.status != 0 && (!errors.As(d.Err, &he) || he.StatusCode != tc.status) {
					t.Errorf("Disconnect.Err %v, want a HandshakeError with status %d", d.Err, tc.status)
				}
				if got, _ := path.Load().(string); got != "/feed" {
					t.Errorf("Raw got the request for %q, want /feed", got)
				}
				opened(t, rec) // the next request is upgraded
				c, err := srv.NextConn(t.Context())
				must(t, err)
				if c.Request().URL.Path != "/feed" {
					t.Errorf("the upgraded request is for %q", c.Request().URL.Path)
				}
				if st := srv.Stats(); st.Requests != 2 || st.Upgraded != 1 {
					t.Errorf("stats %v, want 2 requests and 1 upgraded", st)
				}
				if n := len(srv.Requests()); n != 2 {
					t.Errorf("%d requests recorded, want 2", n)
				}
			})
		})
	}
}

// TestRawValidAnswer: a Raw 101 with the right AcceptKey opens the
// connection on the client's side; the server then hangs up at once.
func TestRawValidAnswer(t *testing.T) {
	forSchemes(t, func(t *testing.T, tls bool) {
		srv := wstest.Start(t, &wstest.Options{TLS: tls})
		srv.Enqueue(wstest.Response{Raw: func(r *http.Request, w io.Writer) {
			fmt.Fprintf(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
				wstest.AcceptKey(r.Header.Get("Sec-WebSocket-Key")))
		}})
		rec := newRecorder()
		rec.decide = func(wsclient.Disconnect) wsclient.Decision { return wsclient.Stop() }
		run(t, srv.URL(), rec, clientOf(srv))
		opened(t, rec)
		d := receive(t, rec.disconnects, "disconnect")
		if !d.Connected || wsclient.CloseStatus(d.Err) != wsclient.CloseAbnormal {
			t.Errorf("connected %v, %v; want an open connection lost (1006)", d.Connected, d.Err)
		}
		if st := srv.Stats(); st.Requests != 1 || st.Upgraded != 0 {
			t.Errorf("stats %v, want 1 request and none upgraded", st)
		}
	})
}

// TestRawStall: with Stall, the socket stays open after Raw's bytes until
// the client gives up (HandshakeTimeout).
func TestRawStall(t *testing.T) {
	forSchemes(t, func(t *testing.T, tls bool) {
		srv := wstest.Start(t, &wstest.Options{TLS: tls})
		srv.Enqueue(wstest.Response{Stall: true, Raw: rawText("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upg")})
		rec := newRecorder()
		rec.decide = func(wsclient.Disconnect) wsclient.Decision { return wsclient.Stop() }
		o := clientOf(srv)
		o.HandshakeTimeout = 300 * time.Millisecond
		start := time.Now()
		run(t, srv.URL(), rec, o)
		d := receive(t, rec.disconnects, "disconnect")
		if took := time.Since(start); took < o.HandshakeTimeout {
			t.Errorf("the attempt ended after %v, before HandshakeTimeout: the server hung up", took)
		}
		if d.Err == nil || !strings.Contains(d.Err.Error(), "timed out") {
			t.Errorf("Disconnect.Err %v, want a timeout", d.Err)
		}
	})
}

// TestRawDelay: Delay waits before Raw writes.
func TestRawDelay(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, nil)
	const delay = 100 * time.Millisecond
	var wrote atomic.Int64
	srv.Enqueue(wstest.Response{Delay: delay, Raw: func(_ *http.Request, w io.Writer) {
		wrote.Store(time.Now().UnixNano())
		_, _ = io.WriteString(w, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
	}})
	rec := newRecorder()
	rec.decide = func(wsclient.Disconnect) wsclient.Decision { return wsclient.Stop() }
	start := time.Now()
	run(t, srv.URL(), rec, fastOptions())
	d := receive(t, rec.disconnects, "disconnect")
	var he *wsclient.HandshakeError
	if !errors.As(d.Err, &he) || he.StatusCode != 503 {
		t.Errorf("Disconnect.Err %v, want HTTP 503", d.Err)
	}
	if w := time.Unix(0, wrote.Load()); w.Sub(start) < delay {
		t.Errorf("Raw wrote %v after the start, before Delay (%v)", w.Sub(start), delay)
	}
}

// TestRawEndlessAnswer: an answer that never ends stops when the client
// hangs up: Raw's writes fail and it returns.
func TestRawEndlessAnswer(t *testing.T) {
	forSchemes(t, func(t *testing.T, tls bool) {
		srv := wstest.Start(t, &wstest.Options{TLS: tls})
		returned := make(chan error, 1)
		var written atomic.Int64
		srv.Enqueue(wstest.Response{Raw: func(_ *http.Request, w io.Writer) {
			if _, err := io.WriteString(w, "HTTP/1.1 101 Switching Protocols\r\nX-Junk: "); err != nil {
				returned <- err
				return
			}
			chunk := []byte(strings.Repeat("a", 64<<10))
			for {
				n, err := w.Write(chunk)
				written.Add(int64(n))
				if err != nil {
					returned <- err
					return
				}
			}
		}})
		rec := newRecorder()
		rec.decide = func(wsclient.Disconnect) wsclient.Decision { return wsclient.Stop() }
		run(t, srv.URL(), rec, clientOf(srv))
		d := receive(t, rec.disconnects, "disconnect")
		if d.Err == nil || strings.Contains(d.Err.Error(), "timed out") {
			t.Errorf("Disconnect.Err %v, want the client to give up on the size", d.Err)
		}
		err := receive(t, returned, "Raw's return")
		t.Logf("Raw wrote %d KiB, then %v; the client: %v", written.Load()>>10, err, d.Err)
		if err == nil {
			t.Error("Raw's write did not fail")
		}
	})
}

// TestRawCloseEndsAWriteToAClientThatDoesNotRead: Close (and so the test's
// end) is not held up by a Raw answer blocked on a client that reads nothing.
func TestRawCloseEndsAWriteToAClientThatDoesNotRead(t *testing.T) {
	t.Parallel()
	srv := wstest.Start(t, &wstest.Options{WaitTimeout: time.Minute})
	returned := enqueueEndlessRaw(srv)
	nc := dialTCP(t, srv)
	sendUpgradeRequest(t, nc, srv)
	must(t, srv.Wait(t.Context(), func(st wstest.Stats) bool { return st.Requests == 1 }))
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	receive(t, closed, "Close's return")
	if err := receive(t, returned, "Raw's return"); err == nil {
		t.Error("Raw's write did not fail")
	}
}

// TestRawWriteTimeout: a Write to a client that reads nothing fails after
// Options.WaitTimeout.
func TestRawWriteTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	srv := wstest.Start(t, &wstest.Options{WaitTimeout: timeout})
	returned := enqueueEndlessRaw(srv)
	nc := dialTCP(t, srv)
	sendUpgradeRequest(t, nc, srv)
	err := receive(t, returned, "Raw's return")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("Raw's write failed with %v, want a timeout", err)
	}
}

// enqueueEndlessRaw answers the next request with a Raw answer that writes
// until a write fails, and gives that error.
func enqueueEndlessRaw(srv *wstest.Server) <-chan error {
	returned := make(chan error, 1)
	srv.Enqueue(wstest.Response{Raw: func(_ *http.Request, w io.Writer) {
		chunk := make([]byte, 64<<10)
		for {
			if _, err := w.Write(chunk); err != nil {
				returned <- err
				return
			}
		}
	}})
	return returned
}

// dialTCP is a TCP connection to srv that the test closes at its end.
func dialTCP(t *testing.T, srv *wstest.Server) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", srv.Addr())
	must(t, err)
	t.Cleanup(func() { nc.Close() })
	return nc
}

// sendUpgradeRequest writes a valid upgrade request on nc, and then reads nothing.
func sendUpgradeRequest(t *testing.T, nc net.Conn, srv *wstest.Server) {
	t.Helper()
	_, err := fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", srv.Addr())
	must(t, err)
}
