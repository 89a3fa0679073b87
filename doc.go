// Package wsclient keeps a WebSocket client connection alive for days, for
// services and bots that dial ws:// and wss://.
//
// You write a behaviour, a [Handler] with OnConnect, OnDisconnect, HandleFrame and
// HandleInfo, and the [Client] does the rest: an explicit state machine (Idle,
// Connecting, Open, Closing, Reconnecting, Closed), reconnect with exponential
// backoff and jitter, ping/pong keepalive that finds dead peers, TLS that verifies
// by default, and the RFC 6455 close handshake. It is modelled on Erlang's
// websocket_client and Elixir's WebSockex.
//
//	c, err := wsclient.New("wss://example.com/feed", handler, nil)
//	if err != nil { ... }             // a bad URL or option, before any I/O
//	go c.Run(ctx)                     // connects, reconnects, until Stop, Close or ctx
//	if err := c.WaitOpen(ctx); err != nil { ... }
//	err = c.Send(ctx, wsclient.TextFrame("hi"))
//	err = c.Close(ctx, wsclient.CloseNormal, "bye")
//
// # The callback contract
//
// Every function of yours that the client calls (the Handler's methods,
// Terminate, Options.OnStateChange, Options.HeaderFunc and Options.Proxy) runs
// under one lock, the handler lock: never two at once, so the handler's fields
// need no locks. HandleFrame runs on the connection's reader goroutine (no hop
// per frame); all the others run on the goroutine that called Run.
//
// Order: frames reach HandleFrame in wire order; OnConnect runs before the
// connection's first HandleFrame, and its last HandleFrame before its
// OnDisconnect; Info messages reach HandleInfo in posting order. Frames and
// Info messages are two queues: an Info posted while frames arrive runs
// between two HandleFrame calls, in no fixed place among them. Terminate runs
// once, last.
//
// Calling any Client method from inside a callback never deadlocks. A Send
// while a connection is open writes at once (a Send inside OnConnect is one of
// OnConnect's frames); a Send that would have to wait in the outbox for the
// next connection returns ErrNotConnected instead (the next connection comes
// only after the callback returns); Info with a full queue returns
// ErrInfoQueueFull instead of waiting; Close starts the close and returns, and
// Run returns after the callback; WaitOpen answers at once. Inside a callback
// the *Conn it was given is the natural handle: its methods never wait for
// the client's goroutines.
//
// A callback's error or panic fails the connection with 1011 and reaches
// OnDisconnect (a panic as *PanicError, with its stack); the process never
// crashes.
//
// # Sending
//
// Client.Send, Client.Info, Client.Close, Client.State, Client.WaitOpen and
// Client.Done may be called from any goroutine. Send writes on the caller's
// goroutine; messages from many goroutines are written one at a time, in the
// order they reached the write lock; ctx bounds the wait for the lock (or for
// room in the outbox) and Options.WriteTimeout each socket write. Send returns
// nil only once the frame was handed to the socket ("sent" means written, not
// received by the server): every frame is either written or its Send returns
// an error. While no connection is open, Send fails with ErrNotConnected or,
// with Options.OutboxSize, waits in the outbox and is written right after the
// next OnConnect.
//
// # Goroutines
//
// An open connection has two goroutines: the Run goroutine (state machine,
// timers, callbacks other than HandleFrame) and the reader. Keepalive, close
// and backoff waits are timers, not goroutines. A dial runs on a short-lived
// goroutine of its own so that Close can cut it short. When Run returns, no
// goroutine of the client is left.
//
// # Reconnect policy
//
// After every lost connection or failed attempt, OnDisconnect gets a [Disconnect]
// with the cause, the count of consecutive failures, the uptime and the decision
// the default policy suggests. By default the client reconnects with backoff
// after network errors, keepalive timeouts, close codes 1000, 1001, 1006,
// 1011-1014 and 3000-4999, and handshake answers 5xx, 408 and 429 (honouring
// Retry-After); it stops after close codes 1002, 1003, 1007-1010, other 4xx and
// 3xx answers, certificate errors, a subprotocol, extension or compression
// answer that was not offered or cannot be decoded, and a close the handler
// asked for. The backoff resets only after a connection stayed open for
// Options.StableAfter, so a server that accepts and drops at once does not
// cause a tight loop. Backoff.Max bounds every delay, jitter included.
//
// # Keepalive
//
// The client pings every Options.PingInterval (20 s by default). Any byte from the
// server counts as life; when nothing at all arrives within Options.PongTimeout
// (10 s) of a ping, the connection fails with ErrKeepaliveTimeout (close 1011) and
// the policy reconnects, so a silent peer is found within PingInterval +
// PongTimeout. Detection never depends on being able to write: a ping never
// waits behind a write in progress, so a peer that goes silent while the
// client is blocked sending is found all the same. Server pings are answered
// at once (between two frames of a long message) and then passed to
// HandleFrame. Conn.RTT gives the round trip of the last timed ping. A handler
// busy in HandleFrame is not a dead peer: the deadline is extended while the
// reader is held. Once a close frame went out, the keepalive stops and
// CloseTimeout bounds the wait.
//
// # TLS and proxies
//
// wss verifies the server's certificate chain and host name against the system
// roots, with TLS 1.2 at least; the server name comes from the URL (an IP address
// is checked against the certificate's IP SANs). Options.TLSConfig is cloned,
// never modified. Options.TLSFiles names PEM files (a CA bundle, a client
// certificate and key for mutual TLS) that are read again at every attempt, so a
// certificate rotated on disk is used at the next reconnect. A certificate
// error, either side's, reaches OnDisconnect as a *TLSError and stops the
// client: it does not heal by retrying. A server that asked for a client
// certificate and then hung up without a word (ErrCertDropped) may have
// refused it or may be restarting: that is retried, and three in a row stop.
// Skipping verification takes Options.InsecureSkipVerifyTLS and logs a warning
// at every connect. Proxies (HTTP CONNECT, https, SOCKS5, with credentials)
// come from the environment by default; TLS and every protocol rule run the
// same way through a proxy as without one.
//
// # Protocol
//
// The protocol is implemented natively (internal/transport), identically on
// every path: text messages are checked for valid UTF-8 as their bytes arrive
// (1007 on the first impossible byte); a message over Options.ReadLimit (16 MiB,
// counted as delivered, after inflating) fails with 1009; protocol violations
// (bad opcodes, RSV bits, masking, fragmentation, close frames with a 1-byte
// payload or an invalid code) fail with 1002, an invalid UTF-8 close reason
// with 1007; 1014 is a valid code. The handshake response is limited to 1 MiB;
// a server may choose only a subprotocol or extension that was offered.
// permessage-deflate (Options.Compression) is accepted in every form RFC 7692
// allows that a decoder without context takeover can read. No query value,
// credential or header value appears in a log line or an error.
package wsclient
