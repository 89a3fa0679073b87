package wsclient

import "syscall"

// yieldCPU gives the thread's CPU to another runnable thread of this CPU, if
// there is one (sched_yield); with none, it returns at once. (It does not run
// the P's other goroutines first: runtime.Gosched there cost 16 KiB streams
// 10 % of their throughput; see BENCHMARKS.md, change 15.)
func yieldCPU() { syscall.Syscall(syscall.SYS_SCHED_YIELD, 0, 0, 0) }
