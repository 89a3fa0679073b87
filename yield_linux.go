package wsclient

import "syscall"

// yieldCPU gives the thread's CPU to another runnable thread, if there is one
// (sched_yield); with none, it returns at once.
func yieldCPU() { syscall.Syscall(syscall.SYS_SCHED_YIELD, 0, 0, 0) }
