// Command wsc is a reconnecting command-line WebSocket client: each line of
// stdin is sent as a message, each message received is printed on stdout, and
// every state change with its cause goes to stderr. It keeps the connection
// alive with pings and reconnects after a server restart by the policy of
// github.com/ff42ae21/wsclient. Run wsc -h for the flags and exit codes.
//
//	go install github.com/ff42ae21/wsclient/cmd/wsc@latest
//	wsc wss://example.com/feed
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		cancel() // the first: close 1000, wait up to the close timeout
		<-sig
		fmt.Fprintln(os.Stderr, "interrupted again: exiting at once")
		os.Exit(exitForced)
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
