//go:build !linux

package wsclient

import (
	"fmt"
	"os"
)

func noticeMissingPeers() {
	fmt.Fprintln(os.Stderr, "wsclient: interop tests skip: the third-party peers run on Linux only")
}
