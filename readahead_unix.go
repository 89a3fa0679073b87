//go:build unix

package wsclient

import "syscall"

// readNonBlocking reads into b what the socket already holds, without waiting
// (Go's sockets are non-blocking; the callback says it is done either way).
func readNonBlocking(raw syscall.RawConn, b []byte) int {
	n := 0
	err := raw.Read(func(fd uintptr) bool {
		for {
			k, err := syscall.Read(int(fd), b)
			if err == syscall.EINTR {
				continue
			}
			if err == nil && k > 0 {
				n = k
			}
			return true
		}
	})
	if err != nil {
		return 0
	}
	return n
}
