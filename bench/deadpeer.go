package main

import (
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ff42ae21/wsclient"
)

// blackholeProxy is a tiny TCP proxy on 127.0.0.1: it forwards bytes both ways
// until blackhole is switched on, then swallows everything, in both directions,
// without closing anything: a peer that went silent (a dead NAT entry, a cable).
type blackholeProxy struct {
	ln       net.Listener
	upstream string
	hole     atomic.Bool
	mu       sync.Mutex
	conns    []net.Conn
	wg       sync.WaitGroup
}

func newBlackholeProxy(upstream string) (*blackholeProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &blackholeProxy{ln: ln, upstream: upstream}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *blackholeProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(u, c)
		go p.pipe(c, u)
	}
}

func (p *blackholeProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.hole.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *blackholeProxy) url(path string) string { return "ws://" + p.ln.Addr().String() + path }

func (p *blackholeProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

type deadPeerHandler struct {
	wsclient.BaseHandler
	opened chan struct{}
	lost   chan time.Time
}

func (h *deadPeerHandler) OnConnect(*wsclient.Conn) error { close(h.opened); return nil }

func (h *deadPeerHandler) OnDisconnect(d wsclient.Disconnect) wsclient.Decision {
	if d.Connected {
		h.lost <- time.Now()
	}
	return wsclient.Stop()
}

// deadPeer: n clients with PingInterval 1 s and PongTimeout 1 s, started at
// even offsets over one ping interval (so the blackhole hits every phase of the
// ping cycle), all behind one proxy; the proxy goes silent, and each figure is
// the time from then to the client's OnDisconnect.
func deadPeer(srv *serverProc, n int) ([]time.Duration, error) {
	p, err := newBlackholeProxy(srv.url(0, "")[len("ws://"):])
	if err != nil {
		return nil, err
	}
	defer p.close()
	type client struct {
		s *wsSession
		h *deadPeerHandler
	}
	clients := make([]client, n)
	defer func() {
		for _, c := range clients {
			if c.s != nil {
				c.s.close()
			}
		}
	}()
	for i := range clients {
		h := &deadPeerHandler{opened: make(chan struct{}), lost: make(chan time.Time, 1)}
		opts := wsOptions()
		opts.PingInterval, opts.PongTimeout = time.Second, time.Second
		s, err := startWsclient(p.url("/echo"), h, opts, h.opened)
		if err != nil {
			return nil, err
		}
		clients[i] = client{s, h}
		time.Sleep(time.Second / time.Duration(n))
	}
	time.Sleep(1500 * time.Millisecond) // a few pings answered
	start := time.Now()
	p.hole.Store(true)
	var out []time.Duration
	limit := time.After(15 * time.Second)
	for _, c := range clients {
		select {
		case t := <-c.h.lost:
			out = append(out, t.Sub(start))
		case <-limit:
			return out, errTimeout
		}
	}
	slices.Sort(out)
	return out, nil
}
