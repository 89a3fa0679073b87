//go:build linux

package wsclient

import (
	"fmt"
	"os"
	"strings"

	"github.com/ff42ae21/wsclient/internal/peers"
)

// noticeMissingPeers says in one line which third-party peers are missing,
// so that a plain `go test` never skips the interop tests without a word.
func noticeMissingPeers() {
	if m := peers.Missing(); len(m) > 0 && os.Getenv("CI") != "true" {
		fmt.Fprintf(os.Stderr, "wsclient: interop tests skip: %s missing; install them with `bash .ci/install-peers` (Debian: apt-get install nginx-light python3-websockets; npm ws)\n",
			strings.Join(m, ", "))
	}
}
