// Package wstest is a WebSocket server for testing clients and the code that
// uses them: a handler that must re-subscribe after a restart, refresh its
// token after a 401, wait out a 429, notice a silent server, flush an outbox.
//
// Start runs a Server on 127.0.0.1 (ws, or wss with generated certificates,
// optionally mutual TLS), closed by t.Cleanup. The test scripts its
// handshakes (Enqueue, Options.Check), drives each connection it accepts
// (NextConn, then Conn: read what the client sent, send messages, pings,
// fragments, malformed frames, close, drop, go silent), breaks the network
// between them (Network: latency, bandwidth, blackhole, slicing, resets) and
// restarts the server (Down, Up, Restart). It observes everything: the
// handshake requests, the messages and pings of each connection, its close
// code, counters to wait on (Wait, WaitOpen).
//
//	srv := wstest.Start(t, nil)
//	// ... start the client on srv.URL() ...
//	c, err := srv.NextConn(t.Context())
//	if err != nil {
//		t.Fatal(err)
//	}
//	got, err := c.ReadText(t.Context()) // what the client sent first
//	...
//	c.SendText(`{"event":"hello"}`)
//	srv.Restart(50 * time.Millisecond) // drop it all, refuse, come back
//
// Every wait is bounded, by its ctx and by Options.WaitTimeout (5 s by
// default), and fails with an error that says what was awaited and what the
// server saw; a test never needs to sleep. Close (run by t.Cleanup) ends every
// goroutine the server started.
//
// It works with any WebSocket client; the examples use
// github.com/ff42ae21/wsclient. The frames are those of wsclient's own
// RFC 6455 codec, in the server role.
package wstest
