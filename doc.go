// Package wsclient keeps a WebSocket client connection alive for days, for
// services and bots that dial ws:// and wss://.
//
// You write a behaviour, a [Handler] with OnConnect, OnDisconnect, HandleFrame and
// HandleInfo, and the [Client] does the rest: an explicit state machine (Idle,
// Connecting, Open, Closing, Reconnecting, Closed), reconnect with exponential
// backoff and jitter, ping/pong keepalive that finds dead peers, TLS that verifies
// by default, and the RFC 6455 close handshake. It is modelled on Erlang's
// websocket_client and Elixir's WebSockex, on top of gorilla/websocket.
//
//	c, err := wsclient.New("wss://example.com/feed", handler, nil)
//	if err != nil { ... }           // a bad URL or option, before any I/O
//	go c.Run(ctx)                   // connects, reconnects, until Stop, Close or ctx
//	err = c.Send(ctx, wsclient.TextFrame("hi"))
//	err = c.Close(ctx, wsclient.CloseNormal, "bye")
//
// # Concurrency
//
// Handler methods run one at a time, never concurrently, in the order the events
// happened, so the handler's fields need no locks. HandleFrame runs on the
// connection's reader goroutine (no hop per frame); OnConnect, OnDisconnect,
// HandleInfo and Terminate run on the goroutine that called Run. One lock, the
// handler lock, orders them: OnConnect happens before the connection's first
// HandleFrame, and its last HandleFrame before its OnDisconnect. A callback that
// blocks holds up the others, and a reader held in HandleFrame reads nothing
// (the keepalive allows for that: a busy handler is not a dead peer).
//
// Inside a callback, use the *Conn it was given: Conn.Send, Conn.Close and the
// rest never wait for the client's own goroutines, so they cannot deadlock.
// Client.Close waits for Run to return and must not be called from a callback.
//
// Client.Send, Client.Info, Client.Close and Client.State may be called from any
// goroutine. Send writes on the caller's goroutine under a write lock; ctx bounds
// the wait for the lock (or for room in the outbox) and Options.WriteTimeout the
// write itself. Send returns nil only once the frame was handed to the socket;
// every frame is either written or its Send returns an error.
//
// Frames are ordered: OnConnect's frames first, then the frames that waited in
// the outbox, then sends from other goroutines, which wait until the outbox has
// drained.
//
// An open connection has two goroutines: the Run goroutine (state machine, timers,
// callbacks other than HandleFrame) and the reader. Keepalive, close and backoff
// waits are timers, not goroutines. A dial runs on a short-lived goroutine of its
// own so that Close can cut it short. When Run returns, no goroutine of the
// client is left.
//
// # Reconnect policy
//
// After every lost connection or failed attempt, OnDisconnect gets a [Disconnect]
// with the cause, the count of consecutive failures, the uptime and the decision
// the default policy suggests. By default the client reconnects with backoff
// after network errors, keepalive timeouts, close codes 1000, 1001, 1006,
// 1011-1014 and 3000-4999, and handshake answers 5xx, 408 and 429 (honouring
// Retry-After); it stops after close codes 1002, 1003, 1007-1010, other 4xx and
// 3xx answers, certificate errors, and a close the handler asked for. The backoff
// resets only after a connection stayed open for Options.StableAfter, so a server
// that accepts and drops at once does not cause a tight loop.
//
// # Keepalive
//
// The client pings every Options.PingInterval (20 s by default). Any byte from the
// server counts as life; when nothing at all arrives within Options.PongTimeout
// (10 s) of a ping, the connection fails with ErrKeepaliveTimeout (close 1011) and
// the policy reconnects, so a silent peer is found within PingInterval +
// PongTimeout. Server pings are answered automatically and then passed to
// HandleFrame. Conn.RTT gives the round trip of the last timed ping. A handler
// busy in HandleFrame is not a dead peer: the deadline is extended while the
// reader is held. Once a close frame went out, the keepalive stops and
// CloseTimeout bounds the wait.
//
// # TLS
//
// wss verifies the server's certificate chain and host name against the system
// roots, with TLS 1.2 at least; the server name comes from the URL (an IP address
// is checked against the certificate's IP SANs). Options.TLSConfig is cloned,
// never modified. Options.TLSFiles names PEM files (a CA bundle, a client
// certificate and key for mutual TLS) that are read again at every attempt, so a
// certificate rotated on disk is used at the next reconnect; TLSFiles.Config
// builds a static config from the same files. A certificate error, either side's,
// reaches OnDisconnect as a *TLSError and stops the client: it does not heal by
// retrying. Skipping verification takes Options.InsecureSkipVerifyTLS (New refuses
// a TLSConfig with InsecureSkipVerify alone) and logs a warning at every connect.
//
// # Protocol hygiene
//
// Text messages are checked for valid UTF-8 as their fragments arrive (gorilla does
// not check); a bad one fails the connection with 1007 on its first impossible
// byte. A message over Options.ReadLimit (16 MiB) fails it with 1009. Protocol
// errors gorilla finds fail it with 1002. A small watcher under gorilla follows
// the server's frames for what gorilla gets wrong about close frames: a 1-byte
// close payload fails with 1002, an invalid UTF-8 close reason with 1007, and a
// received 1014 is echoed and reconnects (over ws, and over wss without a proxy).
// The handshake response is limited to 1 MiB; a server may choose only a
// subprotocol or extension that was offered.
package wsclient
