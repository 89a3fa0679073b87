package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ff42ae21/wsclient"
)

// run is wsc: it parses args, connects, pumps stdin to the server and the
// server to stdout until a clean end, a stop or the end of ctx (Ctrl-C: close
// 1000, waiting up to the close timeout), and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, err := parseArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usageText)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "wsc: %v\nRun wsc -h for usage.\n", err)
		return exitUsage
	}
	opts, err := cfg.options()
	if err != nil {
		fmt.Fprintf(stderr, "wsc: %v\n", err)
		return exitUsage
	}
	r := &runner{
		cfg:      cfg,
		p:        &printer{out: stdout, err: stderr, json: cfg.json},
		closeReq: make(chan closeRequest, 4),
		pings:    map[string]time.Time{},
		queue:    make(chan item, max(cfg.outbox-1, 0)),
		stopped:  make(chan struct{}),
		opened:   make(chan struct{}),
	}
	level := slog.LevelWarn
	if cfg.debug {
		level = slog.LevelDebug
	}
	opts.Logger = slog.New(slog.NewTextHandler(lockedWriter{r.p}, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	client, err := wsclient.New(cfg.url, &handler{r: r}, opts)
	if err != nil {
		fmt.Fprintf(stderr, "wsc: %s\n", trim(err.Error()))
		return exitUsage
	}
	r.client = client
	if cfg.insecure {
		r.p.errorf("WARNING: --insecure: the server's certificate is NOT verified. Anyone on the path can read and change this connection. Use --ca FILE instead.")
	}

	runDone := make(chan error, 1)
	go func() { runDone <- client.Run(context.Background()) }()
	go r.readStdin(stdin)
	go r.send()

	interrupt := ctx.Done()
	closing := false
	startClose := func(code int, reason string) {
		if closing {
			return
		}
		closing = true
		r.deliberate.Store(true)
		go func() {
			cctx, cancel := context.WithTimeout(context.Background(), cfg.closeTimeout+2*time.Second)
			defer cancel()
			if err := client.Close(cctx, code, reason); err != nil {
				r.p.errorf("close: %s", trim(err.Error()))
			}
		}()
	}
	for {
		select {
		case <-interrupt:
			interrupt = nil
			r.p.errorf("interrupted: closing (Ctrl-C again to quit at once)")
			startClose(wsclient.CloseNormal, "")
		case req := <-r.closeReq:
			startClose(req.code, req.reason)
		case err := <-runDone:
			close(r.stopped)
			r.drainQueue()
			if cfg.json {
				r.p.event(statsEvent(client.Stats()))
			}
			switch {
			case r.deliberate.Load(), r.cleanStop:
				return exitOK
			case err == nil && !r.policyStop:
				return exitOK
			}
			return exitStopped
		}
	}
}

type closeRequest struct {
	code   int
	reason string
}

// item is one line of stdin, for the sender.
type item struct {
	kind  itemKind
	line  string // as typed
	data  []byte
	code  int
	cause string
}

type itemKind int

const (
	itemMessage itemKind = iota
	itemPing
	itemClose
	itemStats
	itemEOF
)

// runner is one run of wsc.
type runner struct {
	cfg    *config
	p      *printer
	client *wsclient.Client

	queue    chan item // stdin's lines to the sender, outbox-1 of them waiting
	closeReq chan closeRequest
	stopped  chan struct{} // Run has returned
	opened   chan struct{} // closed by the first OnConnect
	openOnce sync.Once

	deliberate atomic.Bool // wsc closed: stdin's end, /close, -w, Ctrl-C
	// Set by OnDisconnect (read after Run returned).
	cleanStop  bool // the server's close 1000 with --no-reconnect
	policyStop bool // the policy or --no-reconnect stopped the client

	pmu   sync.Mutex
	pings map[string]time.Time // /ping payloads waiting for their pong

	wmu   sync.Mutex
	timer *time.Timer // -w
}

// readStdin reads lines once the first connection is open and hands them to
// the sender in order.
func (r *runner) readStdin(stdin io.Reader) {
	// Not Client.WaitOpen: it can miss a connection opened while it looks
	// (state Open before the connection is current) and wait for the next.
	select {
	case <-r.opened:
	case <-r.stopped:
		return
	}
	br := bufio.NewReaderSize(stdin, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" || err == nil {
			line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
			if it, ok := r.parseLine(line); ok && !r.enqueue(it) {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				r.p.errorf("stdin: %v", err)
			}
			if r.cfg.wait == 0 { // with -w, its wait ends the run
				r.enqueue(item{kind: itemEOF})
			}
			return
		}
	}
}

// parseLine turns a line into an item; false for a line handled here
// (/stats, a bad command).
func (r *runner) parseLine(line string) (item, bool) {
	if r.cfg.slash && strings.HasPrefix(line, "/") {
		if strings.HasPrefix(line, "//") {
			line = line[1:]
		} else {
			cmd, arg, _ := strings.Cut(line, " ")
			switch cmd {
			case "/ping":
				return item{kind: itemPing, line: line, data: []byte(arg)}, true
			case "/close":
				code, reason, err := parseClose(arg)
				if err != nil {
					r.p.errorf("/close: %v", err)
					return item{}, false
				}
				return item{kind: itemClose, line: line, code: code, cause: reason}, true
			case "/stats":
				return item{kind: itemStats, line: line}, true
			default:
				r.p.errorf("unknown command %s: the commands are /ping [payload], /close [code [reason]], /stats; //text sends /text", cmd)
				return item{}, false
			}
		}
	}
	return item{kind: itemMessage, line: line, data: []byte(line)}, true
}

// enqueue hands it to the sender: at once while connected (waiting its
// turn), into the outbox's room while not, else it is reported not sent.
// It returns false once the client has stopped.
func (r *runner) enqueue(it item) bool {
	if r.cfg.outbox > 0 && it.kind == itemMessage {
		select {
		case r.queue <- it:
			return true
		default:
		}
		if r.client.State() != wsclient.Open {
			r.notSent(it, "outbox full")
			return true
		}
	}
	select {
	case r.queue <- it:
		return true
	case <-r.stopped:
		r.notSent(it, "closed")
		return false
	}
}

// send writes the queued lines one by one, in order.
func (r *runner) send() {
	for {
		var it item
		select {
		case it = <-r.queue:
		case <-r.stopped:
			return
		}
		switch it.kind {
		case itemMessage:
			f := wsclient.TextFrame(it.line)
			if r.cfg.binary {
				f = wsclient.BinaryFrame(it.data)
			}
			if err := r.client.Send(context.Background(), f); err != nil {
				r.notSent(it, sendError(err))
			}
		case itemPing:
			r.pmu.Lock()
			r.pings[string(it.data)] = time.Now()
			r.pmu.Unlock()
			if err := r.client.Send(context.Background(), wsclient.Frame{Type: wsclient.Ping, Data: it.data}); err != nil {
				r.notSent(it, sendError(err))
			}
		case itemClose:
			r.closeReq <- closeRequest{it.code, it.cause}
		case itemStats:
			r.printStats()
		case itemEOF:
			r.closeReq <- closeRequest{wsclient.CloseNormal, ""}
		}
	}
}

// drainQueue reports the lines that never went out.
func (r *runner) drainQueue() {
	for {
		select {
		case it := <-r.queue:
			r.notSent(it, "closed")
		default:
			return
		}
	}
}

func sendError(err error) string {
	switch {
	case errors.Is(err, wsclient.ErrNotConnected):
		return "not connected"
	case errors.Is(err, wsclient.ErrOutboxFull):
		return "outbox full"
	case errors.Is(err, wsclient.ErrClosed):
		return "closed"
	case errors.Is(err, wsclient.ErrInvalidUTF8):
		return "not valid UTF-8; use -b for binary"
	}
	return trim(err.Error())
}

func (r *runner) notSent(it item, why string) {
	if it.kind != itemMessage && it.kind != itemPing {
		return
	}
	line := it.line
	if len(line) > 80 {
		line = line[:77] + "..."
	}
	r.p.errorf("not sent (%s): %s", why, line)
}

// armWait (re)starts -w's wait; disarmWait stops it.
func (r *runner) armWait() {
	if r.cfg.wait == 0 {
		return
	}
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if r.timer != nil {
		r.timer.Stop()
	}
	r.timer = time.AfterFunc(r.cfg.wait, func() {
		r.p.errorf("no message for %s (-w): closing", fmtDelay(r.cfg.wait))
		select {
		case r.closeReq <- closeRequest{wsclient.CloseNormal, ""}:
		default:
		}
	})
}

func (r *runner) disarmWait() {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
}

func (r *runner) printStats() {
	st := r.client.Stats()
	if r.cfg.json {
		r.p.event(statsEvent(st))
		return
	}
	s := fmt.Sprintf("stats: %s for %s; connects %d, disconnects %d; sent %d messages (%d bytes), received %d (%d bytes); pings %d",
		st.State, fmtDelay(time.Since(st.StateSince)), st.Connects, st.Disconnects,
		st.Sent.Messages(), st.Sent.Bytes(), st.Received.Messages(), st.Received.Bytes(), st.PingsSent)
	if st.RTT > 0 {
		s += ", rtt " + fmtRTT(st.RTT)
	}
	if st.Outbox > 0 {
		s += fmt.Sprintf(", outbox %d", st.Outbox)
	}
	if st.LastCause != nil {
		s += "; last cause: " + describe(st.LastCause)
	}
	r.p.errorf("%s", s)
}

// handler is wsc's behaviour.
type handler struct {
	wsclient.BaseHandler
	r *runner
}

func (h *handler) OnConnect(c *wsclient.Conn) error {
	r := h.r
	msg := "connected"
	if sp := c.Subprotocol(); sp != "" {
		msg += " (subprotocol " + sp + ")"
	}
	r.p.errorf("%s", msg)
	if r.cfg.json {
		r.p.event(connectEvent{Event: "connect", Time: now(), Subprotocol: c.Subprotocol(), Generation: c.Generation()})
	}
	for _, x := range r.cfg.exec {
		f := wsclient.TextFrame(x)
		if r.cfg.binary {
			f = wsclient.BinaryFrame([]byte(x))
		}
		if err := c.Send(f); err != nil {
			return fmt.Errorf("-x %q: %w", x, err)
		}
	}
	if len(r.cfg.exec) > 0 {
		r.armWait()
	}
	r.openOnce.Do(func() { close(r.opened) })
	return nil
}

func (h *handler) HandleFrame(c *wsclient.Conn, f wsclient.Frame) error {
	r := h.r
	switch f.Type {
	case wsclient.Text, wsclient.Binary:
		r.armWait()
		data, enc := string(f.Data), ""
		if f.Type == wsclient.Binary {
			enc = "hex"
			data = hex.EncodeToString(f.Data)
			if r.cfg.base64 {
				enc = "base64"
				data = base64.StdEncoding.EncodeToString(f.Data)
			}
		}
		if r.cfg.json {
			r.p.event(messageEvent{Event: "message", Type: f.Type.String(), Data: data, Encoding: enc, Time: now()})
		} else {
			r.p.line(data)
		}
	case wsclient.Ping:
		if r.cfg.showPingPong {
			if r.cfg.json {
				data, enc := controlPayload(f.Data)
				r.p.event(pingEvent{Event: "ping", Time: now(), Data: data, Encoding: enc})
			} else {
				r.p.errorf("ping received (%d bytes)", len(f.Data))
			}
		}
	case wsclient.Pong:
		r.pmu.Lock()
		sent, mine := r.pings[string(f.Data)]
		delete(r.pings, string(f.Data))
		r.pmu.Unlock()
		var rtt time.Duration
		switch {
		case mine:
			rtt = time.Since(sent)
		case r.cfg.showPingPong:
			rtt = c.RTT() // the keepalive ping's, measured by the client
		default:
			return nil
		}
		if r.cfg.json {
			data, enc := controlPayload(f.Data)
			r.p.event(pingEvent{Event: "pong", Time: now(), Data: data, Encoding: enc, Keepalive: !mine, RTTms: ms(rtt)})
		} else if mine {
			r.p.errorf("pong %q: rtt %s", f.Data, fmtRTT(rtt))
		} else {
			r.p.errorf("pong (keepalive): rtt %s", fmtRTT(rtt))
		}
	}
	return nil
}

func (h *handler) OnDisconnect(d wsclient.Disconnect) wsclient.Decision {
	r := h.r
	r.disarmWait()
	cause := describe(d.Err)
	dec := d.Suggested
	byFlag := false
	if !d.Final && !dec.IsStop() && r.cfg.noReconnect {
		dec, byFlag = wsclient.Stop(), true
	}
	ev := disconnectEvent{Event: "disconnect", Time: now(), Cause: cause, Connected: d.Connected,
		UptimeMs: ms(d.Uptime), Attempt: d.Attempt}
	if code := wsclient.CloseStatus(d.Err); code > 0 {
		ev.Code = code
		var ce *wsclient.CloseError
		if errors.As(d.Err, &ce) {
			ev.Reason = ce.Reason
		}
	}
	var he *wsclient.HandshakeError
	if errors.As(d.Err, &he) {
		ev.Status = he.StatusCode
	}
	var line string
	switch {
	case d.Final:
		line = "closed: " + strings.TrimSuffix(cause, " sent")
	case dec.IsStop():
		var ce *wsclient.CloseError
		if byFlag && errors.As(d.Err, &ce) && !ce.Local && ce.Code == wsclient.CloseNormal {
			r.cleanStop = true
			line = "closed by the server: " + cause
		} else {
			r.policyStop = true
			line = "stopped: " + cause
			if byFlag {
				line += " (--no-reconnect)"
			}
		}
	default:
		delay := fmtDelay(dec.Delay())
		ev.Reconnect, ev.NextDelay, ev.NextDelayMs = true, delay, ms(dec.Delay())
		if d.Connected {
			line = fmt.Sprintf("disconnected: %s; reconnecting in %s", cause, delay)
		} else {
			line = fmt.Sprintf("connect failed (attempt %d): %s; retrying in %s", d.Attempt, cause, delay)
		}
	}
	r.p.errorf("%s", line)
	if r.cfg.json {
		r.p.event(ev)
	}
	return dec
}

// printer serialises wsc's output: messages and events on stdout, the rest
// on stderr.
type printer struct {
	mu       sync.Mutex
	out, err io.Writer
	json     bool
}

func (p *printer) line(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.out, s)
}

func (p *printer) errorf(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.err, format+"\n", a...)
}

func (p *printer) event(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = fmt.Appendf(nil, `{"event":"error","error":%q}`, err.Error())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out.Write(append(b, '\n'))
}

// lockedWriter is the library's log on stderr, between wsc's own lines.
type lockedWriter struct{ p *printer }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.err.Write(b)
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

type messageEvent struct {
	Event    string `json:"event"`
	Type     string `json:"type"`
	Data     string `json:"data"`
	Encoding string `json:"encoding,omitempty"`
	Time     string `json:"time"`
}

type connectEvent struct {
	Event       string `json:"event"`
	Time        string `json:"time"`
	Subprotocol string `json:"subprotocol,omitempty"`
	Generation  uint64 `json:"generation"`
}

type disconnectEvent struct {
	Event       string  `json:"event"`
	Time        string  `json:"time"`
	Cause       string  `json:"cause"`
	Code        int     `json:"code,omitempty"`
	Reason      string  `json:"reason,omitempty"`
	Status      int     `json:"status,omitempty"`
	Connected   bool    `json:"connected"`
	UptimeMs    float64 `json:"uptime_ms"`
	Attempt     int     `json:"attempt"`
	Reconnect   bool    `json:"reconnect"`
	NextDelay   string  `json:"next_delay,omitempty"`
	NextDelayMs float64 `json:"next_delay_ms,omitempty"`
}

type pingEvent struct {
	Event     string  `json:"event"`
	Time      string  `json:"time"`
	Data      string  `json:"data"`
	Encoding  string  `json:"encoding,omitempty"` // "hex" when the payload is not UTF-8
	Keepalive bool    `json:"keepalive,omitempty"`
	RTTms     float64 `json:"rtt_ms,omitempty"`
}

type traffic struct {
	Messages       uint64 `json:"messages"`
	Bytes          uint64 `json:"bytes"`
	TextMessages   uint64 `json:"text_messages"`
	BinaryMessages uint64 `json:"binary_messages"`
}

type statsJSON struct {
	Event             string  `json:"event"`
	Time              string  `json:"time"`
	State             string  `json:"state"`
	StateSince        string  `json:"state_since"`
	Connects          uint64  `json:"connects"`
	Disconnects       uint64  `json:"disconnects"`
	Failures          int     `json:"failures"`
	LastCause         string  `json:"last_cause,omitempty"`
	LastCloseCode     int     `json:"last_close_code,omitempty"`
	Sent              traffic `json:"sent"`
	Received          traffic `json:"received"`
	PingsSent         uint64  `json:"pings_sent"`
	KeepaliveTimeouts uint64  `json:"keepalive_timeouts"`
	RTTms             float64 `json:"rtt_ms"`
	Outbox            int     `json:"outbox"`
	UptimeMs          float64 `json:"uptime_ms"`
}

func statsEvent(st wsclient.Stats) statsJSON {
	tr := func(t wsclient.Traffic) traffic {
		return traffic{t.Messages(), t.Bytes(), t.TextMessages, t.BinaryMessages}
	}
	s := statsJSON{Event: "stats", Time: now(), State: st.State.String(),
		StateSince: st.StateSince.UTC().Format(time.RFC3339Nano), Connects: st.Connects,
		Disconnects: st.Disconnects, Failures: st.Failures, LastCloseCode: st.LastCloseCode,
		Sent: tr(st.Sent), Received: tr(st.Received), PingsSent: st.PingsSent,
		KeepaliveTimeouts: st.KeepaliveTimeouts, RTTms: ms(st.RTT), Outbox: st.Outbox, UptimeMs: ms(st.Uptime)}
	if st.LastCause != nil {
		s.LastCause = describe(st.LastCause)
	}
	return s
}

// controlPayload is a ping's or pong's payload for JSON: as is when it is
// UTF-8 (a /ping's text), else hex (the keepalive's 8-byte timestamps), so
// that no byte is lost to U+FFFD.
func controlPayload(b []byte) (data, encoding string) {
	if utf8.Valid(b) {
		return string(b), ""
	}
	return hex.EncodeToString(b), "hex"
}
