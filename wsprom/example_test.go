package wsprom_test

import (
	"log"

	"github.com/ff42ae21/wsclient"
	"github.com/ff42ae21/wsclient/wsprom"
	"github.com/prometheus/client_golang/prometheus"
)

// One collector for all the clients of a process, one label value per feed.
func Example() {
	col := wsprom.NewCollector(wsprom.Options{Namespace: "myapp", Label: "feed"})
	prometheus.MustRegister(col)

	opts := &wsclient.Options{}
	opts.OnStateChange = col.Observe("trades", opts.OnStateChange) // before New: the events
	client, err := wsclient.New("wss://example.com/trades", wsclient.BaseHandler{}, opts)
	if err != nil {
		log.Fatal(err)
	}
	col.Track("trades", client) // after New: Stats at every scrape
	// go client.Run(ctx); serve promhttp.Handler() on /metrics.
}
