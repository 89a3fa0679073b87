package wsclient

import (
	"runtime"
	"syscall"
)

// yieldCPU lets what is runnable run first: the goroutines of this P (the
// handler may just have woken one, which Go queues to run next on this P and
// which would otherwise wait while this thread is away in the system call),
// then, with sched_yield, another thread of this CPU, if one is runnable (with
// none, it returns at once).
func yieldCPU() {
	runtime.Gosched()
	syscall.Syscall(syscall.SYS_SCHED_YIELD, 0, 0, 0)
}
