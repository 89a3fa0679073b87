package wstest

import (
	"time"

	"github.com/ff42ae21/wsclient/internal/faultproxy"
)

// Network is the fault proxy between the clients and a Server (every client
// dials it: Server.URL). A fault applies to both directions, to the live
// connections and the later ones, until switched off, unless its method says
// otherwise (CutAfter counts the server's bytes, ResetAll hits the live
// connections only); the zero setting of each is off. Its methods are safe
// for concurrent use.
type Network struct {
	px *faultproxy.Proxy
}

// SetLatency delays every chunk of bytes by d, in order (a burst arrives
// about d later, not d per chunk). 0 turns it off.
func (n *Network) SetLatency(d time.Duration) { n.px.SetLatency(d) }

// SetBandwidth caps each direction of each connection to bytesPerSec. 0
// turns it off.
func (n *Network) SetBandwidth(bytesPerSec int) { n.px.SetBandwidth(bytesPerSec) }

// SetBlackhole(true) forwards nothing any more, in either direction, not
// even the end of a connection: a dead network path, where only a keepalive
// finds out. New connections are accepted and blackholed too. What was sent
// meanwhile is lost; false resumes forwarding (and passes on the ends that
// happened meanwhile).
func (n *Network) SetBlackhole(on bool) { n.px.Blackhole(on) }

// SetSlicing forwards in writes of at most size bytes, waiting gap between
// two: frames arrive in pieces. size 0 turns it off.
func (n *Network) SetSlicing(size int, gap time.Duration) { n.px.SetSlicing(size, gap) }

// CutAfter closes every connection (FIN both ways) once bytes more went
// from the server to the client: a connection lost in the middle of a frame.
// 0 turns it off.
func (n *Network) CutAfter(bytes int) { n.px.CutAfter(bytes) }

// ResetAll resets every live connection (a TCP RST to both sides). Later
// connections are not affected.
func (n *Network) ResetAll() { n.px.ResetAll() }

// Clear turns every fault off.
func (n *Network) Clear() {
	n.px.Blackhole(false)
	n.px.SetLatency(0)
	n.px.SetBandwidth(0)
	n.px.SetSlicing(0, 0)
	n.px.CutAfter(0)
}
