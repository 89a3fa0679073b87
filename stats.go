package wsclient

import "sync/atomic"

// counters are the client's running totals, for Stats. The reader alone adds
// to the received ones, so they are never contended; the sent ones are added
// by whichever goroutine sent.
type counters struct {
	msgsIn, bytesIn   atomic.Uint64
	msgsOut, bytesOut atomic.Uint64
	pings             atomic.Uint64
	keepaliveTimeouts atomic.Uint64
	connects          atomic.Uint64
	disconnects       atomic.Uint64
	rtt               atomic.Int64
}

func (s *counters) received(f Frame) {
	if f.Type == Text || f.Type == Binary {
		s.msgsIn.Add(1)
		s.bytesIn.Add(uint64(len(f.Data)))
	}
}

func (s *counters) sent(f Frame) {
	if f.Type == Text || f.Type == Binary {
		s.msgsOut.Add(1)
		s.bytesOut.Add(uint64(len(f.Data)))
	}
}
