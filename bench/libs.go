package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/ff42ae21/wsclient"
	gorilla "github.com/gorilla/websocket"
	"github.com/lxzan/gws"
)

// A lib is one client library behind the same small interface: dial a URL,
// send from one goroutine, get every received message through onMsg (called
// on the library's reader goroutine, or its callback).
type lib struct {
	name string
	// sequential libraries can also be used without a reader goroutine:
	// dial with onMsg nil, then send and readOne on the same goroutine.
	sequential bool
	dial       func(url string, o dialOpts) (session, error)
}

type dialOpts struct {
	onMsg     func(p []byte) // nil: no reader goroutine (sequential libs only)
	keepalive bool           // ping every 20 s, dead after 10 s without an answer
}

type session interface {
	send(p []byte) error
	readOne() error // sequential libs, dialed with onMsg nil
	close()
}

const (
	kaInterval = 20 * time.Second // wsclient's default PingInterval
	kaTimeout  = 10 * time.Second // wsclient's default PongTimeout
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var allLibs = []*lib{
	{name: "wsclient", dial: dialWsclient},
	{name: "gorilla", sequential: true, dial: dialGorilla},
	{name: "coder", sequential: true, dial: dialCoder},
	{name: "gws", dial: dialGws},
}

// ---- wsclient: the library under test, with its defaults (keepalive on).

type wsHandler struct {
	wsclient.BaseHandler
	onMsg  func([]byte)
	opened chan struct{}
	once   sync.Once
}

func (h *wsHandler) OnConnect(*wsclient.Conn) error {
	h.once.Do(func() { close(h.opened) })
	return nil
}

func (h *wsHandler) HandleFrame(_ *wsclient.Conn, f wsclient.Frame) error {
	if h.onMsg != nil && (f.Type == wsclient.Binary || f.Type == wsclient.Text) {
		h.onMsg(f.Data)
	}
	return nil
}

// OnDisconnect stops: a benchmark connection that drops is an error, not a reconnect.
func (h *wsHandler) OnDisconnect(wsclient.Disconnect) wsclient.Decision { return wsclient.Stop() }

type wsSession struct {
	c       *wsclient.Client
	runDone chan error
}

func wsOptions() *wsclient.Options {
	return &wsclient.Options{Logger: quiet, Proxy: wsclient.NoProxy}
}

func dialWsclient(url string, o dialOpts) (session, error) {
	h := &wsHandler{onMsg: o.onMsg, opened: make(chan struct{})}
	opts := wsOptions()
	if !o.keepalive {
		opts.PingInterval = -1
	}
	return startWsclient(url, h, opts, h.opened)
}

func startWsclient(url string, h wsclient.Handler, opts *wsclient.Options, opened <-chan struct{}) (*wsSession, error) {
	c, err := wsclient.New(url, h, opts)
	if err != nil {
		return nil, err
	}
	s := &wsSession{c: c, runDone: make(chan error, 1)}
	go func() { s.runDone <- c.Run(context.Background()) }()
	select {
	case <-opened:
		return s, nil
	case err := <-s.runDone:
		return nil, errors.Join(errors.New("wsclient: Run ended before open"), err)
	case <-time.After(30 * time.Second):
		s.close()
		return nil, errTimeout
	}
}

func (s *wsSession) send(p []byte) error {
	return s.c.Send(context.Background(), wsclient.BinaryFrame(p))
}

func (s *wsSession) readOne() error { return errors.New("not sequential") }

func (s *wsSession) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.c.Close(ctx, wsclient.CloseNormal, "")
}

// ---- gorilla/websocket, used raw: one reader goroutine, writes on the caller's.

type gorillaSession struct {
	ws         *gorilla.Conn
	readerDone chan struct{}
	ka         *time.Timer
}

func dialGorilla(url string, o dialOpts) (session, error) {
	d := gorilla.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, _, err := d.Dial(url, nil)
	if err != nil {
		return nil, err
	}
	s := &gorillaSession{ws: ws}
	if o.keepalive {
		// The usual gorilla keepalive: a read deadline that pongs push back, and
		// a timer (not a goroutine) that pings.
		ws.SetReadDeadline(time.Now().Add(kaInterval + kaTimeout))
		ws.SetPongHandler(func(string) error {
			return ws.SetReadDeadline(time.Now().Add(kaInterval + kaTimeout))
		})
		s.ka = time.AfterFunc(kaInterval, s.ping)
	}
	if o.onMsg != nil {
		s.readerDone = make(chan struct{})
		go func() {
			defer close(s.readerDone)
			for {
				_, p, err := ws.ReadMessage()
				if err != nil {
					return
				}
				o.onMsg(p)
			}
		}()
	}
	return s, nil
}

func (s *gorillaSession) ping() {
	if s.ws.WriteControl(gorilla.PingMessage, nil, time.Now().Add(kaTimeout)) == nil {
		s.ka.Reset(kaInterval)
	}
}

func (s *gorillaSession) send(p []byte) error { return s.ws.WriteMessage(gorilla.BinaryMessage, p) }

func (s *gorillaSession) readOne() error {
	_, _, err := s.ws.ReadMessage()
	return err
}

func (s *gorillaSession) close() {
	if s.ka != nil {
		s.ka.Stop()
	}
	_ = s.ws.WriteControl(gorilla.CloseMessage, gorilla.FormatCloseMessage(gorilla.CloseNormalClosure, ""), time.Now().Add(time.Second))
	s.ws.Close()
	if s.readerDone != nil {
		<-s.readerDone
	}
}

// ---- coder/websocket (formerly nhooyr.io/websocket).

// coderHTTP dials directly (no proxy from the environment).
var coderHTTP = &http.Client{Transport: &http.Transport{}}

type coderSession struct {
	c          *websocket.Conn
	readerDone chan struct{}
	ka         *time.Timer
}

func dialCoder(url string, o dialOpts) (session, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: coderHTTP})
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(32 << 20)
	s := &coderSession{c: c}
	if o.keepalive {
		s.ka = time.AfterFunc(kaInterval, s.ping)
	}
	if o.onMsg != nil {
		s.readerDone = make(chan struct{})
		go func() {
			defer close(s.readerDone)
			for {
				_, p, err := c.Read(context.Background())
				if err != nil {
					return
				}
				o.onMsg(p)
			}
		}()
	}
	return s, nil
}

func (s *coderSession) ping() {
	ctx, cancel := context.WithTimeout(context.Background(), kaTimeout)
	defer cancel()
	if s.c.Ping(ctx) == nil {
		s.ka.Reset(kaInterval)
	}
}

func (s *coderSession) send(p []byte) error {
	return s.c.Write(context.Background(), websocket.MessageBinary, p)
}

func (s *coderSession) readOne() error {
	_, _, err := s.c.Read(context.Background())
	return err
}

func (s *coderSession) close() {
	if s.ka != nil {
		s.ka.Stop()
	}
	s.c.CloseNow()
	if s.readerDone != nil {
		<-s.readerDone
	}
}

// ---- lxzan/gws: callback style, like wsclient.

type gwsHandler struct {
	gws.BuiltinEventHandler
	onMsg  func([]byte)
	opened chan struct{}
}

func (h *gwsHandler) OnOpen(*gws.Conn) { close(h.opened) }

func (h *gwsHandler) OnPing(c *gws.Conn, payload []byte) { _ = c.WritePong(payload) }

func (h *gwsHandler) OnPong(c *gws.Conn, _ []byte) {
	_ = c.SetReadDeadline(time.Now().Add(kaInterval + kaTimeout))
}

func (h *gwsHandler) OnMessage(_ *gws.Conn, m *gws.Message) {
	if h.onMsg != nil {
		h.onMsg(m.Bytes())
	}
	m.Close()
}

type gwsSession struct {
	c          *gws.Conn
	readerDone chan struct{}
	ka         *time.Timer
}

func dialGws(url string, o dialOpts) (session, error) {
	h := &gwsHandler{onMsg: o.onMsg, opened: make(chan struct{})}
	c, _, err := gws.NewClient(h, &gws.ClientOption{Addr: url, HandshakeTimeout: 10 * time.Second, ReadMaxPayloadSize: 32 << 20})
	if err != nil {
		return nil, err
	}
	s := &gwsSession{c: c, readerDone: make(chan struct{})}
	if o.keepalive {
		_ = c.SetReadDeadline(time.Now().Add(kaInterval + kaTimeout))
		s.ka = time.AfterFunc(kaInterval, s.ping)
	}
	go func() { defer close(s.readerDone); c.ReadLoop() }()
	<-h.opened
	return s, nil
}

func (s *gwsSession) ping() {
	if s.c.WritePing(nil) == nil {
		s.ka.Reset(kaInterval)
	}
}

func (s *gwsSession) send(p []byte) error { return s.c.WriteMessage(gws.OpcodeBinary, p) }

func (s *gwsSession) readOne() error { return errors.New("not sequential") }

func (s *gwsSession) close() {
	if s.ka != nil {
		s.ka.Stop()
	}
	_ = s.c.WriteClose(1000, nil)
	_ = s.c.NetConn().Close()
	<-s.readerDone
}
