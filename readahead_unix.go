//go:build unix

package wsclient

import "syscall"

// readNonBlocking reads into b what the socket already holds, without waiting
// (Go's sockets are non-blocking; the callback says it is done either way).
func (r *readAhead) readNonBlocking(b []byte) int {
	if r.probe == nil {
		r.probe = func(fd uintptr) bool {
			for {
				k, err := syscall.Read(int(fd), r.probeBuf)
				if err == syscall.EINTR {
					continue
				}
				r.probeN = 0
				if err == nil && k > 0 {
					r.probeN = k
				}
				return true
			}
		}
	}
	r.probeBuf = b
	err := r.raw.Read(r.probe)
	r.probeBuf = nil
	if err != nil {
		return 0
	}
	return r.probeN
}
