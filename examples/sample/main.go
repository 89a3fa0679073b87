// Command sample is the Go port of websocket_client's sample handler:
//
//	init([]) -> {once, 2}.
//	onconnect(_WSReq, State) -> websocket_client:cast(self(), {text, <<"message 1">>}), {ok, State}.
//	ondisconnect({remote, closed}, State) -> {reconnect, State}.
//	websocket_handle({pong, _}, _ConnState, State) -> {ok, State};
//	websocket_handle({text, Msg}, _ConnState, 5) -> io:format("Received msg ~p~n", [Msg]), {close, <<>>, "done"};
//	websocket_handle({text, Msg}, _ConnState, State) -> io:format("Received msg ~p~n", [Msg]), timer:sleep(1000),
//	    BinInt = list_to_binary(integer_to_list(State)), {reply, {text, <<"hello, this is message #", BinInt/binary >>}, State + 1}.
//	websocket_info(start, _ConnState, State) -> {reply, {text, <<"erlang message received">>}, State}.
//	websocket_terminate(Reason, _ConnState, State) -> io:format("Websocket closed in state ~p wih reason ~p~n", [State, Reason]), ok.
//
// Against an echo server it prints "message 1", then "hello, this is message #2",
// #3 and #4, and at state 5 closes ({close, <<>>, "done"}: an empty close
// payload, for which the nearest a client may send is code 1000 with no reason)
// and its state becomes "done"; the close ends Run. A close from
// the server reconnects, and the conversation starts again from "message 1" with
// the state kept. Where the Erlang handler sleeps, this one starts a timer: a
// callback never blocks the client.
//
// With no -url it starts its own echo server on 127.0.0.1, so it needs no network:
//
//	go run ./examples/sample
//	go run ./examples/sample -delay 10ms
//	go run ./examples/sample -url wss://example.com/echo
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/ff42ae21/wsclient"
	"github.com/ff42ae21/wsclient/examples/internal/echo"
)

// The messages the handler posts to itself with Client.Info, and "start", which
// anyone may post (the Erlang `Pid ! start`).
type (
	// cast is websocket_client:cast(self(), Frame): send Frame on the
	// connection that is open when HandleInfo gets it.
	cast wsclient.Frame
	// paused is posted by the pause timer: the reply at the head of the queue
	// is due.
	paused struct{}
)

// reply is the {reply, Frame, _} of HandleFrame, sent when its pause is over. It
// goes out on the connection that received the frame, or nowhere if that
// connection has ended meanwhile.
type reply struct {
	conn  *wsclient.Conn
	frame wsclient.Frame
}

// start is the message websocket_info(start, ...) answers.
const start = "start"

// sample is the behaviour. Its fields are plain: callbacks never overlap.
type sample struct {
	wsclient.BaseHandler
	client *wsclient.Client // set after New: OnConnect and the reply timer post Info through it
	delay  time.Duration    // the Erlang timer:sleep(1000)
	out    io.Writer

	state     int         // the Erlang handler state; it survives reconnects
	done      bool        // the state has become "done" (the close at state 5)
	connected bool        // a connection has been open once ({once, _}: the first dial is not retried)
	replies   []reply     // replies waiting for their pause, in the order of their frames
	pause     *time.Timer // the pause before replies[0]; stopped by Terminate
	lastErr   error       // why the latest connection ended, for Terminate
}

// newSample is init([]) -> {once, 2}.
func newSample(delay time.Duration, out io.Writer) *sample {
	return &sample{state: 2, delay: delay, out: out}
}

func (h *sample) OnConnect(*wsclient.Conn) error {
	h.connected = true
	// Info only waits while Options.InfoQueueSize messages are queued; the
	// handler never has more than a few, so it cannot block OnConnect.
	return h.client.Info(context.Background(), cast(wsclient.TextFrame("message 1")))
}

func (h *sample) OnDisconnect(d wsclient.Disconnect) wsclient.Decision {
	h.lastErr = d.Err
	var ce *wsclient.CloseError
	isClose := errors.As(d.Err, &ce)
	switch {
	case d.Final: // Client.Close or the end of ctx: nothing to decide
		return d.Suggested
	case isClose && !ce.Local:
		// ondisconnect({remote, closed}, State) -> {reconnect, State}: a close
		// frame from the server, or the connection cut under it (1006).
		fmt.Fprintf(h.out, "Disconnected (%v); reconnecting in state %d\n", d.Err, h.state)
		return wsclient.Reconnect()
	case !d.Connected && !h.connected:
		return wsclient.Stop() // {once, _}: the first connection is tried once; Run returns the error
	case isClose && ce.Local && ce.Code == wsclient.CloseNormal:
		return d.Suggested // our own close at state 5: the suggested stop
	}
	// The Erlang handler has no clause for anything else (it would crash);
	// this one follows the policy.
	fmt.Fprintf(h.out, "Disconnected (%v); %v\n", d.Err, d.Suggested)
	return d.Suggested
}

func (h *sample) HandleFrame(c *wsclient.Conn, f wsclient.Frame) error {
	if f.Type != wsclient.Text {
		return nil // {pong, _} -> {ok, State}; pings are answered by the client
	}
	fmt.Fprintf(h.out, "Received msg %q\n", f.Data)
	if h.state == 5 {
		h.done = true // the new state "done"
		return c.Close(wsclient.CloseNormal, "")
	}
	h.replies = append(h.replies, reply{conn: c, frame: wsclient.TextFrame("hello, this is message #" + strconv.Itoa(h.state))})
	h.state++
	if len(h.replies) == 1 {
		h.startPause()
	}
	return nil
}

// startPause starts the pause before replies[0]. The pauses run one after the
// other, as the Erlang handler's sleeps do: each reply goes out a delay after
// its frame, and after the reply before it.
func (h *sample) startPause() {
	h.pause = time.AfterFunc(h.delay, func() {
		// ErrClosed: Run has ended meanwhile, and the reply has nowhere to go.
		if err := h.client.Info(context.Background(), paused{}); err != nil && !errors.Is(err, wsclient.ErrClosed) {
			fmt.Fprintln(os.Stderr, "sample: posting the reply:", err)
		}
	})
}

func (h *sample) HandleInfo(c *wsclient.Conn, msg any) error {
	var err error
	switch m := msg.(type) {
	case cast:
		err = c.Send(wsclient.Frame(m))
	case paused:
		if len(h.replies) == 0 {
			return nil // cannot happen: a pause runs only before a queued reply
		}
		r := h.replies[0]
		h.replies = h.replies[1:]
		if len(h.replies) > 0 {
			h.startPause()
		}
		msg, err = r, r.conn.Send(r.frame)
	case string:
		if m == start {
			err = c.SendText("erlang message received")
		}
	}
	if errors.Is(err, wsclient.ErrNotConnected) {
		// The connection ended before the frame could go: a reconnect starts
		// the conversation again from "message 1".
		fmt.Fprintln(h.out, "Not sent, the connection has ended:", msg)
		return nil
	}
	return err
}

func (h *sample) Terminate(err error) {
	if h.pause != nil {
		h.pause.Stop()
	}
	reason := err
	if reason == nil {
		reason = h.lastErr // Run ended on our close: say which one
	}
	fmt.Fprintf(h.out, "Websocket closed in state %s with reason %v\n", h.stateString(), reason)
}

// stateString is the state as Erlang's ~p prints it: 5, or "done".
func (h *sample) stateString() string {
	if h.done {
		return strconv.Quote("done")
	}
	return strconv.Itoa(h.state)
}

// String makes the messages readable in the "Not sent" line.
func (r reply) String() string { return strconv.Quote(string(r.frame.Data)) }
func (c cast) String() string  { return strconv.Quote(string(c.Data)) }

// run dials url with the sample handler and returns once Run has: on the close
// at state 5 (nil), at the end of ctx, or on a failure the handler stops on.
func run(ctx context.Context, url string, delay time.Duration, out io.Writer) (*sample, error) {
	h := newSample(delay, out)
	c, err := wsclient.New(url, h, &wsclient.Options{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return nil, err
	}
	h.client = c // before Run: no callback runs earlier
	return h, c.Run(ctx)
}

// runMain is main without the exit: it parses args, starts the local echo
// server unless -url is given, and runs the sample for up to a minute.
func runMain(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("sample", flag.ContinueOnError)
	url := fs.String("url", "", "ws:// or wss:// URL of an echo server (default: start one on 127.0.0.1)")
	delay := fs.Duration("delay", time.Second, "pause before each reply (the Erlang timer:sleep(1000))")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" {
		srv, err := echo.Start()
		if err != nil {
			return err
		}
		defer srv.Close()
		*url = srv.URL()
		fmt.Fprintln(out, "started a local echo server at", *url)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err := run(ctx, *url, *delay, out)
	return err
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := runMain(ctx, os.Args[1:], os.Stdout)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "sample:", err)
		os.Exit(1)
	}
}
