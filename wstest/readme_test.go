package wstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient"
	"github.com/ff42ae21/wsclient/wstest"
)

// feed is the README's handler.
type feed struct{ wsclient.BaseHandler }

func (*feed) OnConnect(c *wsclient.Conn) error {
	return c.SendText(`{"op":"subscribe","channel":"trades"}`)
}

// TestReadmeSection is the test of the README section "Testing your handler with wstest", as printed there.
func TestReadmeSection(t *testing.T) {
	srv := wstest.Start(t, nil) // ws://127.0.0.1:port/, closed by t.Cleanup
	c, _ := wsclient.New(srv.URL(), &feed{}, &wsclient.Options{
		Backoff: wsclient.Backoff{Initial: 10 * time.Millisecond},
		Logger:  quiet, // not in the README
	})
	go c.Run(t.Context())
	t.Cleanup(func() { c.Close(context.Background(), wsclient.CloseNormal, "") })

	for range 2 { // the first connection, then the one after the restart
		conn, err := srv.NextConn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		got, err := conn.ReadText(t.Context())
		if err != nil || got != `{"op":"subscribe","channel":"trades"}` {
			t.Fatalf("got %q, %v", got, err)
		}
		srv.Restart(20 * time.Millisecond) // drop everything, refuse, come back
	}
}
