//go:build !unix

package wsclient

import "syscall"

// readNonBlocking is not available here: every read is a direct read.
func readNonBlocking(syscall.RawConn, []byte) int { return 0 }
