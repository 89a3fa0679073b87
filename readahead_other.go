//go:build !unix

package wsclient

// readNonBlocking is not available here: every read is a direct read.
func (r *readAhead) readNonBlocking([]byte) int { return 0 }
