// Package faultproxy implements a small in-process TCP proxy for tests that
// can inject network faults between a client and an upstream server.
//
// A Proxy listens on 127.0.0.1 on an ephemeral port and forwards every
// accepted connection to an upstream address. Each accepted connection and
// its upstream connection form a link; bytes are copied in both directions by
// dedicated goroutines. Faults (blackhole, latency, bandwidth cap, resets,
// refusing new connections, cutting a link after n bytes, slicing writes) can be switched at
// runtime and apply both to live links and to links accepted later.
//
// When a write to one side fails (typically that side reset the connection),
// the direction towards it stops (what its source sends on is discarded), and
// the other direction goes on until it ends by itself: what that side sent
// before it went away still reaches the other one, then its end (FIN or RST).
//
// Every goroutine started by a Proxy is stopped and waited for by Close, so
// the package can be used together with go.uber.org/goleak.
package faultproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

const (
	// readBufSize is the largest chunk read from a socket in one call.
	readBufSize = 32 << 10
	// queueLen bounds the number of chunks buffered per direction, so a
	// slow (latency or bandwidth limited) direction applies back-pressure
	// to the sender instead of buffering without limit.
	queueLen = 64
	// dialTimeout bounds dialing the upstream for a new link.
	dialTimeout = 5 * time.Second
	// pieceRate is how many pieces per second a bandwidth-limited direction
	// writes; smaller pieces give a smoother rate.
	pieceRate = 50
)

// Proxy is a fault-injecting TCP proxy. Create it with New and release it
// with Close. All methods are safe for concurrent use.
type Proxy struct {
	ln     *net.TCPListener
	ctx    context.Context // cancelled by Close; aborts pending dials
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine started by the proxy

	mu        sync.Mutex
	upstream  string
	closed    bool
	blackhole bool
	bhOff     chan struct{} // closed when the blackhole is switched off
	latency   time.Duration
	bandwidth int // bytes per second per direction, 0 = unlimited
	rejectNew bool
	cutAfter  int // 0 = disabled
	links     map[*link]struct{}
	accepted  int
	slice     int // largest write, 0 = unlimited
	sliceGap  time.Duration
	refused   func()
}

// New starts a proxy listening on 127.0.0.1 on an ephemeral port that
// forwards connections to upstream (a "host:port" address, normally on
// loopback). The upstream is dialed once per accepted connection, so it need
// not be reachable yet; if that dial fails, the accepted client connection is
// closed with a TCP RST.
func New(upstream string) (*Proxy, error) {
	if upstream == "" {
		return nil, errors.New("faultproxy: empty upstream address")
	}
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	bhOff := make(chan struct{})
	close(bhOff)
	p := &Proxy{
		ln:       ln,
		ctx:      ctx,
		cancel:   cancel,
		upstream: upstream,
		bhOff:    bhOff,
		links:    make(map[*link]struct{}),
	}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr returns the address clients should dial, in the form "127.0.0.1:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops the listener, closes every live link (both sockets) and waits
// for all goroutines started by the proxy to exit. Calling Close more than
// once is harmless; later calls return nil.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	links := p.snapshotLinks()
	p.mu.Unlock()

	p.cancel()
	err := p.ln.Close()
	for _, l := range links {
		l.close(false)
	}
	p.wg.Wait()
	return err
}

// SetUpstream changes the address that links accepted from now on are
// forwarded to, e.g. after the upstream server restarted on a new port. Live
// links keep their current upstream connection.
func (p *Proxy) SetUpstream(addr string) {
	p.mu.Lock()
	p.upstream = addr
	p.mu.Unlock()
}

// Blackhole switches the blackhole fault on or off. It models a dead peer or
// a silently dropping network path: both sockets of every link stay open and
// new connections are still accepted (and dialed upstream), but no byte is
// forwarded in either direction.
//
// While the blackhole is on, the proxy keeps reading from both sides and
// discards what it reads, so senders never block; that data is lost for good
// and is not delivered when the blackhole is switched off. Chunks read before
// the blackhole but due for delivery (see SetLatency) while it is on are
// dropped as well. A single write already in progress when Blackhole(true) is
// called may still complete.
//
// Connection teardown is blackholed too: if one endpoint closes (FIN) or
// resets its socket while the blackhole is on, the other endpoint is not told
// until the blackhole is switched off, at which point the close or reset is
// propagated. Switching the blackhole off resumes forwarding of data read
// from then on.
func (p *Proxy) Blackhole(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on == p.blackhole {
		return
	}
	p.blackhole = on
	if on {
		p.bhOff = make(chan struct{})
	} else {
		close(p.bhOff)
	}
}

// SetLatency delays every forwarded chunk, in both directions, by d measured
// from the moment the chunk was read. Chunks are delivered in order but the
// delays overlap: a burst of chunks arrives about d later, not d per chunk.
// The new value applies to chunks read after the call. d <= 0 disables it.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	p.latency = max(d, 0)
	p.mu.Unlock()
}

// SetBandwidth caps the throughput of each direction of each link to
// bytesPerSec bytes per second. 0 (or a negative value) removes the cap. The
// change applies immediately to live links.
func (p *Proxy) SetBandwidth(bytesPerSec int) {
	p.mu.Lock()
	p.bandwidth = max(bytesPerSec, 0)
	p.mu.Unlock()
}

// ResetAll aborts every live link: both the client and the upstream socket
// are closed with SO_LINGER 0, so both peers see a TCP RST (typically
// ECONNRESET, or EOF if the reset races with their read). Links accepted
// afterwards are unaffected.
func (p *Proxy) ResetAll() {
	p.mu.Lock()
	links := p.snapshotLinks()
	p.mu.Unlock()
	for _, l := range links {
		l.close(true)
	}
}

// RejectNew makes the proxy behave like a server that is down: while on,
// every new connection is accepted and immediately closed with a TCP RST,
// without dialing the upstream. Depending on timing the client sees
// ECONNRESET from its dial (connect) or EOF/ECONNRESET on its first read or
// write. Live links are not affected.
func (p *Proxy) RejectNew(on bool) {
	p.mu.Lock()
	p.rejectNew = on
	p.mu.Unlock()
}

// CutAfter makes every link close (with a normal FIN on both sockets) once n
// more bytes have been forwarded from the upstream to the client, which
// simulates a connection dropped in the middle of a frame. Exactly n bytes
// are delivered; the chunk that crosses the limit is truncated. For live
// links the n bytes are counted from this call, for new links from their
// start. n <= 0 disables the fault.
func (p *Proxy) CutAfter(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutAfter = max(n, 0)
	for l := range p.links {
		l.cutLeft = p.cutLimit()
	}
}

// SetSlicing makes every direction of every link forward in writes of at
// most size bytes, waiting gap between two; size <= 0 disables it.
func (p *Proxy) SetSlicing(size int, gap time.Duration) {
	p.mu.Lock()
	p.slice, p.sliceGap = max(size, 0), max(gap, 0)
	p.mu.Unlock()
}

// CloseLinks closes every live link with a FIN on both sockets.
func (p *Proxy) CloseLinks() {
	p.mu.Lock()
	links := p.snapshotLinks()
	p.mu.Unlock()
	for _, l := range links {
		l.close(false)
	}
}

// OnRefused sets f, called for every connection refused while RejectNew is on.
func (p *Proxy) OnRefused(f func()) {
	p.mu.Lock()
	p.refused = f
	p.mu.Unlock()
}

// Accepted returns the number of connections accepted so far, including
// rejected ones (RejectNew) and ones whose upstream could not be dialed.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Live returns the number of links currently established (client accepted,
// upstream dialed, and not yet closed).
func (p *Proxy) Live() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links)
}

// cutLimit returns the per-link budget for CutAfter, -1 meaning unlimited.
// p.mu must be held.
func (p *Proxy) cutLimit() int {
	if p.cutAfter <= 0 {
		return -1
	}
	return p.cutAfter
}

// snapshotLinks returns the live links. p.mu must be held.
func (p *Proxy) snapshotLinks() []*link {
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	return links
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.AcceptTCP()
		if err != nil {
			if p.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient error such as EMFILE: back off briefly.
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
			continue
		}
		p.mu.Lock()
		p.accepted++
		reject, upstream := p.rejectNew || p.closed, p.upstream
		if !reject {
			p.wg.Add(1)
		}
		refused := p.refused
		p.mu.Unlock()
		if reject {
			resetClose(c)
			if refused != nil {
				refused()
			}
			continue
		}
		go p.handle(c, upstream)
	}
}

// handle dials the upstream for the accepted client connection c and starts
// forwarding between them.
func (p *Proxy) handle(c *net.TCPConn, upstream string) {
	defer p.wg.Done()
	d := net.Dialer{Timeout: dialTimeout}
	uc, err := d.DialContext(p.ctx, "tcp", upstream)
	if err != nil {
		resetClose(c)
		return
	}
	u := uc.(*net.TCPConn)

	l := &link{p: p, client: c, server: u, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.Close()
		u.Close()
		return
	}
	l.cutLeft = p.cutLimit()
	p.links[l] = struct{}{}
	p.wg.Add(4)
	p.mu.Unlock()

	l.pipe(c, u, false)
	l.pipe(u, c, true)
}

// waitNotBlackholed blocks while the blackhole is on. It returns false if
// done is closed first.
func (p *Proxy) waitNotBlackholed(done <-chan struct{}) bool {
	for {
		p.mu.Lock()
		on, ch := p.blackhole, p.bhOff
		p.mu.Unlock()
		if !on {
			return true
		}
		select {
		case <-ch:
		case <-done:
			return false
		}
	}
}

// resetClose closes c with SO_LINGER 0 so the peer receives a TCP RST.
func resetClose(c *net.TCPConn) {
	_ = c.SetLinger(0)
	_ = c.Close()
}

// link is one proxied connection: an accepted client socket and the socket
// dialed to the upstream.
type link struct {
	p              *Proxy
	client, server *net.TCPConn
	done           chan struct{} // closed when the link is closed
	closeOnce      sync.Once

	// Guarded by p.mu.
	cutLeft   int // bytes upstream->client still allowed, -1 = unlimited
	halfClose int // directions that finished: EOF passed on, or a write error
}

// chunk is a piece of data read from one side, due for delivery at due.
type chunk struct {
	data []byte
	due  time.Time
}

// close closes both sockets, with an RST if reset is set, and unregisters
// the link. It is idempotent.
func (l *link) close(reset bool) {
	l.closeOnce.Do(func() {
		close(l.done)
		if reset {
			_ = l.client.SetLinger(0)
			_ = l.server.SetLinger(0)
		}
		_ = l.client.Close()
		_ = l.server.Close()
		l.p.mu.Lock()
		delete(l.p.links, l)
		l.p.mu.Unlock()
	})
}

// pipe starts the reader and writer goroutines of the direction src -> dst.
// The caller must already have added 2 to p.wg.
func (l *link) pipe(src, dst *net.TCPConn, fromUpstream bool) {
	q := make(chan chunk, queueLen)
	var readErr error // written before q is closed, read after
	go func() {
		defer l.p.wg.Done()
		readErr = l.read(src, q)
		close(q)
	}()
	go func() {
		defer l.p.wg.Done()
		l.write(dst, q, &readErr, fromUpstream)
	}()
}

// read copies chunks from src into q until src fails, stamping each with
// its delivery time. Chunks read while the blackhole is on are dropped.
func (l *link) read(src *net.TCPConn, q chan<- chunk) error {
	buf := make([]byte, readBufSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			now := time.Now()
			l.p.mu.Lock()
			bh, lat := l.p.blackhole, l.p.latency
			l.p.mu.Unlock()
			if !bh {
				c := chunk{data: append([]byte(nil), buf[:n]...), due: now.Add(lat)}
				select {
				case q <- c:
				case <-l.done:
					return net.ErrClosed
				}
			}
		}
		if err != nil {
			return err
		}
	}
}

// write delivers the chunks of q to dst, honouring latency, bandwidth,
// blackhole and CutAfter, then propagates the end of the stream.
func (l *link) write(dst *net.TCPConn, q <-chan chunk, readErr *error, fromUpstream bool) {
	var next time.Time // earliest time of the next bandwidth-limited write
	for {
		var c chunk
		var ok bool
		select {
		case c, ok = <-q:
		case <-l.done:
			return
		}
		if !ok {
			break
		}
		if !l.sleepUntil(c.due) {
			return
		}
		data := c.data
		for len(data) > 0 {
			l.p.mu.Lock()
			bw, slice, gap := l.p.bandwidth, l.p.slice, l.p.sliceGap
			l.p.mu.Unlock()
			n := len(data)
			if slice > 0 {
				n = min(n, slice)
			}
			if bw > 0 {
				n = min(n, max(bw/pieceRate, 1))
				if !l.sleepUntil(next) {
					return
				}
			}
			// Check the blackhole right before writing, after any wait.
			l.p.mu.Lock()
			bh, cut := l.p.blackhole, false
			if !bh && fromUpstream && l.cutLeft >= 0 {
				n = min(n, l.cutLeft)
				l.cutLeft -= n
				cut = l.cutLeft == 0
			}
			l.p.mu.Unlock()
			if bh {
				break // drop the rest of the chunk
			}
			if bw > 0 {
				now := time.Now()
				if next.Before(now) {
					next = now
				}
				next = next.Add(time.Duration(n) * time.Second / time.Duration(bw))
			}
			if n > 0 {
				if _, err := dst.Write(data[:n]); err != nil {
					// dst is gone (typically its peer reset): this
					// direction is over, the other one goes on until
					// it ends by itself, so that what its side sent
					// before still gets through.
					l.halfDone()
					l.discard(q)
					return
				}
			}
			if cut {
				l.close(false)
				return
			}
			data = data[n:]
			if slice > 0 && gap > 0 && len(data) > 0 && !l.sleepUntil(time.Now().Add(gap)) {
				return
			}
		}
	}

	// The source is finished. If the link is being closed by us there is
	// nothing to propagate.
	select {
	case <-l.done:
		return
	default:
	}
	// A dead path does not carry FIN or RST either.
	if !l.p.waitNotBlackholed(l.done) {
		return
	}
	if errors.Is(*readErr, io.EOF) {
		_ = dst.CloseWrite()
		l.halfDone()
		return
	}
	// The source failed (typically a reset): pass the reset on.
	l.close(true)
}

// halfDone records that one direction has finished (EOF passed on, or its
// destination failed) and closes the link, with a FIN, once both have.
func (l *link) halfDone() {
	l.p.mu.Lock()
	l.halfClose++
	both := l.halfClose == 2
	l.p.mu.Unlock()
	if both {
		l.close(false)
	}
}

// discard drops the chunks of q until its source is finished or the link is
// closed: after a write error the source is read on (and what it sends
// lost, as on a network whose far end is gone) instead of being blocked.
func (l *link) discard(q <-chan chunk) {
	for {
		select {
		case _, ok := <-q:
			if !ok {
				return
			}
		case <-l.done:
			return
		}
	}
}

// sleepUntil waits until t. It returns false if the link is closed first.
func (l *link) sleepUntil(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		select {
		case <-l.done:
			return false
		default:
			return true
		}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-l.done:
		return false
	}
}
