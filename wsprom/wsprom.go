// Package wsprom exports the figures of wsclient clients as Prometheus
// metrics: a Collector for one client or many, told apart by one label whose
// name you choose ("feed", say) and whose values you give.
//
//	col := wsprom.NewCollector(wsprom.Options{Namespace: "myapp", Label: "feed"})
//	prometheus.MustRegister(col)
//
//	opts := &wsclient.Options{}
//	opts.OnStateChange = col.Observe("trades", opts.OnStateChange) // before New
//	client, err := wsclient.New(url, handler, opts)
//	...
//	col.Track("trades", client) // after New
//
// The figures come from two places. Observe's hook counts the events as they
// happen: disconnects and failed attempts by cause class and close-code class,
// the reconnect delays and the connection durations (histograms). Track reads
// Client.Stats at every scrape: the state, connects, messages and bytes each
// way by type, pings, keepalive timeouts, the last ping RTT, the queues and
// the current uptime. Use both for all the metrics.
//
// Many clients may share one label value (a fleet of 1,000 clients on one
// feed): their counters and histograms add up, the state gauge counts the
// clients in each state. Every label has a bounded set of values besides
// yours: see CauseClass and CloseCodeClass.
//
// The metrics, with Namespace "myapp", the default Subsystem and Label "feed":
//
//	myapp_websocket_state{feed,state}                          gauge: clients in the state (idle, connecting, open, closing, reconnecting, closed)
//	myapp_websocket_connected{feed}                            gauge: clients with an open connection
//	myapp_websocket_connects_total{feed}                       counter: handshakes that succeeded
//	myapp_websocket_disconnects_total{feed,cause,code}         counter: open connections that ended (Observe)
//	myapp_websocket_connect_failures_total{feed,cause}         counter: attempts that failed before the connection opened (Observe)
//	myapp_websocket_consecutive_failures{feed}                 gauge: the current run of failures (the largest of the running clients)
//	myapp_websocket_reconnect_delay_seconds{feed}              histogram: the wait before each reconnect attempt (Observe)
//	myapp_websocket_connection_duration_seconds{feed}          histogram: how long each connection was open (Observe)
//	myapp_websocket_connection_uptime_seconds{feed}            gauge: how long the current connection has been open (the shortest of the open clients; 0: none open)
//	myapp_websocket_messages_total{feed,direction,type}        counter: data messages, direction received or sent, type text or binary
//	myapp_websocket_message_bytes_total{feed,direction,type}   counter: their payload bytes
//	myapp_websocket_pings_total{feed}                          counter: keepalive pings sent
//	myapp_websocket_keepalive_timeouts_total{feed}             counter: connections the keepalive found dead
//	myapp_websocket_ping_rtt_seconds{feed}                     gauge: the round trip of the last timed ping (the largest of the running clients; 0: none)
//	myapp_websocket_outbox_depth{feed}                         gauge: frames waiting in the outbox for the next connection
//	myapp_websocket_info_queue_depth{feed}                     gauge: Info messages waiting for HandleInfo
//
// The gauges of the queues, the RTT, the uptime and the failures count the
// running clients only (those whose Run has not ended); the counters keep the
// final figures of the clients that have ended. The series of Track appear
// with Track, those of Observe with Observe
// (disconnects_total and connect_failures_total: with the first of each
// cause and code). A disconnect and a failed attempt are told apart as
// wsclient's Stats does: Stats.Disconnects counts the connections that ended,
// and so does disconnects_total.
package wsprom

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ff42ae21/wsclient"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configures a Collector. The zero value is usable.
type Options struct {
	// Namespace and Subsystem prefix every metric name:
	// <Namespace>_<Subsystem>_connects_total. Subsystem defaults to "websocket".
	Namespace, Subsystem string
	// Label is the name of the label whose values tell the clients apart (the
	// values given to Observe and Track). Default "client". It must be a
	// valid label name and not one of the collector's own: state, cause,
	// code, direction, type.
	Label string
	// ConstLabels are added to every metric.
	ConstLabels prometheus.Labels
	// DelayBuckets are the reconnect_delay_seconds buckets. Default
	// 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300 (wsclient's
	// backoff waits at most 30 s by default; a Retry-After may ask for more).
	DelayBuckets []float64
	// DurationBuckets are the connection_duration_seconds buckets. Default
	// 0.1, 1, 10, 60, 300, 1800, 3600, 21600, 86400 (a connection dropped at
	// once to one that lived a day).
	DurationBuckets []float64
}

var (
	defaultDelayBuckets    = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}
	defaultDurationBuckets = []float64{0.1, 1, 10, 60, 300, 1800, 3600, 21600, 86400}
)

// reserved are the label names the collector uses itself.
var reserved = []string{"state", "cause", "code", "direction", "type"}

// Collector is a prometheus.Collector for wsclient clients. Register it once;
// all its methods are safe for concurrent use.
type Collector struct {
	label string

	state, connected, connects, disconnects, failures, consecutive,
	uptime, messages, bytes, pings, keepalive, rtt, outbox, infoQueue *prometheus.Desc
	delay, duration *prometheus.HistogramVec

	mu     sync.Mutex
	groups map[string]*group
}

// group is what the collector knows of one label value.
type group struct {
	value string

	// Counted by Observe's hooks (atomics: the hooks never lock).
	disconnects     [numCauses][numCodes]atomic.Uint64
	failures        [numCauses]atomic.Uint64
	delay, duration prometheus.Observer

	mu      sync.Mutex
	clients map[*wsclient.Client]struct{} // tracked and still running (or not yet run)
	retired figures                       // the final figures of tracked clients whose Run has ended
	tracked bool                          // Track was called: the Stats series are exported
}

// NewCollector returns a Collector with no clients. It panics when
// opts.Label is not a valid label name or is one the collector uses itself
// (a programming error, like a bad name for prometheus.NewCounter).
func NewCollector(opts Options) *Collector {
	label := opts.Label
	if label == "" {
		label = "client"
	}
	if !validLabel(label) {
		panic(fmt.Sprintf("wsprom: Options.Label %q is not a valid label name", label))
	}
	for _, r := range reserved {
		if label == r {
			panic(fmt.Sprintf("wsprom: Options.Label %q is a label of the collector's own (%v)", label, reserved))
		}
	}
	if _, ok := opts.ConstLabels[label]; ok {
		panic(fmt.Sprintf("wsprom: Options.Label %q is also in Options.ConstLabels", label))
	}
	sub := opts.Subsystem
	if sub == "" {
		sub = "websocket"
	}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(opts.Namespace, sub, name), help,
			append([]string{label}, labels...), opts.ConstLabels)
	}
	hist := func(name, help string, buckets, def []float64) *prometheus.HistogramVec {
		if buckets == nil {
			buckets = def
		}
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: opts.Namespace, Subsystem: sub, Name: name, Help: help,
			ConstLabels: opts.ConstLabels, Buckets: buckets,
		}, []string{label})
	}
	return &Collector{
		label:       label,
		state:       desc("state", "Clients in each connection state (0 or 1 for one client).", "state"),
		connected:   desc("connected", "Clients with an open connection (0 or 1 for one client)."),
		connects:    desc("connects_total", "Handshakes that succeeded."),
		disconnects: desc("disconnects_total", "Open connections that ended, by cause class and close-code class.", "cause", "code"),
		failures:    desc("connect_failures_total", "Connection attempts that failed before the connection opened, by cause class.", "cause"),
		consecutive: desc("consecutive_failures", "The current run of consecutive failures (the largest of the running clients)."),
		uptime:      desc("connection_uptime_seconds", "How long the current connection has been open (the shortest of the open clients; 0: none open)."),
		messages:    desc("messages_total", "Data messages by direction (received, sent) and type (text, binary).", "direction", "type"),
		bytes:       desc("message_bytes_total", "Payload bytes of the data messages by direction (received, sent) and type (text, binary).", "direction", "type"),
		pings:       desc("pings_total", "Keepalive pings sent."),
		keepalive:   desc("keepalive_timeouts_total", "Connections the keepalive found dead."),
		rtt:         desc("ping_rtt_seconds", "Round trip of the last timed keepalive ping (the largest of the running clients; 0: none)."),
		outbox:      desc("outbox_depth", "Frames waiting in the outbox for the next connection."),
		infoQueue:   desc("info_queue_depth", "Info messages waiting for HandleInfo."),
		delay: hist("reconnect_delay_seconds", "The wait before each reconnect attempt.",
			opts.DelayBuckets, defaultDelayBuckets),
		duration: hist("connection_duration_seconds", "How long each connection was open, observed when it ended.",
			opts.DurationBuckets, defaultDurationBuckets),
		groups: map[string]*group{},
	}
}

func validLabel(s string) bool {
	if s == "" || len(s) >= 2 && s[:2] == "__" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b == '_' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || i > 0 && '0' <= b && b <= '9' {
			continue
		}
		return false
	}
	return true
}

// group returns value's group, made on first use.
func (c *Collector) group(value string) *group {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[value]
	if g == nil {
		g = &group{value: value, clients: map[*wsclient.Client]struct{}{},
			delay: c.delay.WithLabelValues(value), duration: c.duration.WithLabelValues(value)}
		c.groups[value] = g
	}
	return g
}

// Observe returns an Options.OnStateChange hook that counts the events of
// the clients it is given to under value (disconnects, failed attempts,
// reconnect delays, connection durations), then calls next, the hook it
// replaces (nil for none):
//
//	opts.OnStateChange = col.Observe("trades", opts.OnStateChange)
//
// The hook runs on the client's goroutine under its handler lock, so it is
// cheap: a few atomic adds, no lock, no allocation. One hook may be given to
// many clients.
func (c *Collector) Observe(value string, next func(wsclient.StateChange)) func(wsclient.StateChange) {
	g := c.group(value)
	return func(sc wsclient.StateChange) {
		g.observe(sc)
		if next != nil {
			next(sc)
		}
	}
}

func (g *group) observe(sc wsclient.StateChange) {
	if sc.To == wsclient.Reconnecting {
		g.delay.Observe(sc.Delay.Seconds())
	}
	if sc.To != wsclient.Reconnecting && sc.To != wsclient.Closed {
		return
	}
	switch sc.From {
	case wsclient.Open, wsclient.Closing: // a connection ended
		g.duration.Observe(sc.Uptime.Seconds())
		g.disconnects[causeIndex(sc.Cause)][codeIndex(closeCode(sc.Cause))].Add(1)
	case wsclient.Connecting: // an attempt failed
		g.failures[causeIndex(sc.Cause)].Add(1)
	}
}

// Track adds client under value: its Stats are read at every scrape and
// added to those of the other clients of value. Tracking a client again
// under the same value changes nothing; track a client under one value only.
// Once the client's Run has ended its final figures are kept (the counters
// never go back) and the client itself is let go.
func (c *Collector) Track(value string, client *wsclient.Client) {
	if client == nil {
		return
	}
	g := c.group(value)
	g.mu.Lock()
	g.tracked = true
	g.clients[client] = struct{}{}
	g.mu.Unlock()
}

// Untrack removes value and all its series: its clients are no longer read,
// its counters and histograms are forgotten. A hook made by Observe for
// value before Untrack counts out of sight from then on; call Observe again
// for a new client under value.
func (c *Collector) Untrack(value string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.groups[value]; !ok {
		return
	}
	delete(c.groups, value)
	c.delay.DeleteLabelValues(value)
	c.duration.DeleteLabelValues(value)
}

// Describe sends the descriptors of every metric the collector exports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.connected, c.connects, c.disconnects, c.failures,
		c.consecutive, c.uptime, c.messages, c.bytes, c.pings, c.keepalive, c.rtt, c.outbox, c.infoQueue} {
		ch <- d
	}
	c.delay.Describe(ch)
	c.duration.Describe(ch)
}

// Collect reads the tracked clients' Stats and sends every metric.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	groups := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		groups = append(groups, g)
	}
	c.mu.Unlock()
	for _, g := range groups {
		c.collectGroup(ch, g)
	}
	c.delay.Collect(ch)
	c.duration.Collect(ch)
}

var (
	stateNames = [...]string{"idle", "connecting", "open", "closing", "reconnecting", "closed"}
	directions = [2]string{"received", "sent"}
)

func (c *Collector) collectGroup(ch chan<- prometheus.Metric, g *group) {
	v := g.value
	counter := func(d *prometheus.Desc, x uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(x), append([]string{v}, labels...)...)
	}
	gauge := func(d *prometheus.Desc, x float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, x, append([]string{v}, labels...)...)
	}
	for ci := range g.disconnects {
		for k := range g.disconnects[ci] {
			if n := g.disconnects[ci][k].Load(); n > 0 {
				counter(c.disconnects, n, causeNames[ci], codeNames[k])
			}
		}
		if n := g.failures[ci].Load(); n > 0 {
			counter(c.failures, n, causeNames[ci])
		}
	}
	f, ok := g.figures()
	if !ok {
		return
	}
	for i, name := range &stateNames {
		gauge(c.state, float64(f.states[i]), name)
	}
	gauge(c.connected, float64(f.states[wsclient.Open]))
	counter(c.connects, f.connects)
	gauge(c.consecutive, float64(f.consecutive))
	gauge(c.uptime, f.uptime.Seconds())
	for i, t := range [2]wsclient.Traffic{f.received, f.sent} {
		counter(c.messages, t.TextMessages, directions[i], "text")
		counter(c.messages, t.BinaryMessages, directions[i], "binary")
		counter(c.bytes, t.TextBytes, directions[i], "text")
		counter(c.bytes, t.BinaryBytes, directions[i], "binary")
	}
	counter(c.pings, f.pings)
	counter(c.keepalive, f.keepaliveTimeouts)
	gauge(c.rtt, f.rtt.Seconds())
	gauge(c.outbox, float64(f.outbox))
	gauge(c.infoQueue, float64(f.infoQueue))
}

// figures are a group's Stats added up.
type figures struct {
	states                             [len(stateNames)]int
	connects, pings, keepaliveTimeouts uint64
	received, sent                     wsclient.Traffic
	consecutive, outbox, infoQueue     int
	rtt, uptime                        time.Duration
}

// figures reads the group's clients; ok is false when Track was never called.
// Clients whose Run has ended are folded into g.retired and let go.
func (g *group) figures() (f figures, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.tracked {
		return f, false
	}
	f = g.retired
	for cl := range g.clients {
		ended := isDone(cl.Done()) // before Stats: once Run has ended, its Stats are final
		s := cl.Stats()
		if ended {
			g.retired.addCounters(s)
			g.retired.states[s.State]++
			delete(g.clients, cl)
		}
		f.addCounters(s)
		if int(s.State) >= 0 && int(s.State) < len(f.states) {
			f.states[s.State]++
		}
		if ended {
			continue
		}
		f.consecutive = max(f.consecutive, s.Failures)
		f.outbox += s.Outbox
		f.infoQueue += s.InfoQueue
		f.rtt = max(f.rtt, s.RTT)
		if s.State == wsclient.Open && s.Uptime > 0 && (f.uptime == 0 || s.Uptime < f.uptime) {
			f.uptime = s.Uptime
		}
	}
	return f, true
}

func (f *figures) addCounters(s wsclient.Stats) {
	f.connects += s.Connects
	f.pings += s.PingsSent
	f.keepaliveTimeouts += s.KeepaliveTimeouts
	f.received = addTraffic(f.received, s.Received)
	f.sent = addTraffic(f.sent, s.Sent)
}

func addTraffic(a, b wsclient.Traffic) wsclient.Traffic {
	return wsclient.Traffic{
		TextMessages: a.TextMessages + b.TextMessages, TextBytes: a.TextBytes + b.TextBytes,
		BinaryMessages: a.BinaryMessages + b.BinaryMessages, BinaryBytes: a.BinaryBytes + b.BinaryBytes,
	}
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
