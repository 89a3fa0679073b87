// Command echoserver is a small WebSocket echo server for trying the client:
//
//	go run ./examples/echoserver -addr 127.0.0.1:8080
//	go run ./examples/sample -url ws://127.0.0.1:8080/
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/ff42ae21/wsclient/examples/internal/echo"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()
	srv, err := echo.Listen(*addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echoserver:", err)
		os.Exit(1)
	}
	fmt.Println("echo server at", srv.URL())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	<-stop
	srv.Close()
}
