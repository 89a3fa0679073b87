//go:build !linux

package wsclient

// yieldCPU does nothing here: only Linux gets the yield of a streaming read.
func yieldCPU() {}
