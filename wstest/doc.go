// Package wstest is a WebSocket server for testing clients and the code that
// uses them: a handler that must re-subscribe after a restart, refresh its
// token after a 401, wait out a 429, notice a silent server, flush an outbox.
//
// Start runs a Server on 127.0.0.1 (ws, or wss with generated certificates,
// optionally mutual TLS), closed by t.Cleanup. The test scripts its
// handshakes (Enqueue, Options.Check), down to a broken answer written byte
// for byte (Response.Raw, with AcceptKey for a valid Sec-WebSocket-Accept).
// It drives each connection the server accepts (NextConn, then Conn): reads
// what the client sent; sends messages, pings, fragments, malformed frames
// (Frame, down to a non-minimal or a false length: LengthBits, WithLength)
// and raw bytes (WriteRaw, or WriteSliced in pieces); closes, half-closes
// (CloseWrite), drops, goes silent. It breaks the network between them
// (Network: latency, bandwidth, blackhole, slicing, resets) and restarts the
// server (Down, Up, Restart). The server records everything: the handshake
// requests, the messages and pings of each connection, every frame the
// client sent as it was on the wire (Frames; Frame.String prints one), its
// close code, whether the client then closed the TCP connection itself and
// what it sent after its close frame (AwaitClientClose, AfterClose), and
// counters to wait on (Wait, WaitOpen). Options.Forget turns the records off
// for a server that runs for days (the examples' echo server).
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
// github.com/ff42ae21/wsclient, whose own conformance, handshake-fault and
// network-fault tests run on wstest. The frames the server writes itself are
// those of wsclient's own RFC 6455 codec, in the server role.
package wstest
