module github.com/ff42ae21/wsclient/bench

go 1.24

replace github.com/ff42ae21/wsclient => ../

require (
	github.com/coder/websocket v1.8.15
	github.com/ff42ae21/wsclient v0.0.0-00010101000000-000000000000
	github.com/gorilla/websocket v1.5.3
	github.com/lxzan/gws v1.8.9
)

require (
	github.com/cenkalti/backoff/v4 v4.3.0 // indirect
	github.com/dolthub/maphash v0.1.0 // indirect
	github.com/klauspost/compress v1.17.9 // indirect
	golang.org/x/time v0.11.0 // indirect
)
