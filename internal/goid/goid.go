// Package goid tells goroutines apart: a library that calls user code must
// know whether a call into it comes from inside that code (where waiting for
// the code to return would wait for ever). Go offers no other way than the
// first line of a goroutine's stack trace ("goroutine 42 [running]:").
package goid

import (
	"bytes"
	"runtime"
	"strconv"
)

// ID is the calling goroutine's id. It costs a short stack trace: call it
// only on paths that would otherwise wait.
func ID() uint64 {
	var buf [32]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseUint(string(b), 10, 64)
	return id
}
