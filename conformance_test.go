package wsclient

// Client conformance to RFC 6455, with the Autobahn testsuite's client cases
// (groups 1-7, 9 and 10) as the map. The server is wstest's: it completes a
// valid handshake and then writes hand-made frames (Conn.SendFrame, WriteRaw,
// WriteSliced), so every case is exact. For each case the suite checks what the
// client sent back (echoes, pongs, its close frame: wstest.Conn.Frames, and
// nothing after it while it closes the connection: AwaitClientClose,
// AfterClose), what the handler saw (HandleFrame, and Disconnect.Err,
// Suggested), and that the client then reconnects or stops as the policy says.
//
// The handler echoes every text and binary message, as Autobahn's test clients do.
// Case names start with the Autobahn case they follow, where there is one.
//
// The cases run on several paths (connPaths): all of them over plain ws; close
// frames, UTF-8 and the read limits also over wss, direct and through an HTTP
// CONNECT or SOCKS5 proxy (internal/testproxy), and close frames and the read
// limits over ws through either proxy. The server speaks TLS for wss
// (wstest.Options.TLS, its own generated CA: confServer, confClient).

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ff42ae21/wsclient/internal/testproxy"
	"github.com/ff42ae21/wsclient/internal/utf8cases"
	"github.com/ff42ae21/wsclient/wstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// confCase is one conformance case.
type confCase struct {
	name string
	// serve is the server's part after the handshake. The runner then waits
	// for the client's close frame and for it to close the connection.
	serve func(c *wstest.Conn) error
	// frames is what HandleFrame must see, in order.
	frames []Frame
	// replies are the messages and control frames the client must send before
	// its close frame (fragments merged into messages).
	replies []wstest.Frame
	// close is the code of the client's close frame (1005 for an empty one).
	close int
	// errCode, local, reason: Disconnect.Err must be a *CloseError with this code
	// and Local, and this Reason when it is not empty.
	errCode int
	local   bool
	reason  string
	// stop is what the policy suggests: stop, or reconnect.
	stop bool
	// wire marks the cases that the wire watcher under gorilla decides
	// (wireConn in conn.go); gorilla alone gets them wrong.
	wire bool
	// limit is Options.ReadLimit, 0 for the default.
	limit int64
}

// okCase: the server runs serve and then closes with 1000; the client must not
// fail, but echo the close.
func okCase(name string, serve func(*wstest.Conn) error, frames []Frame, replies []wstest.Frame) confCase {
	return confCase{name: name, serve: seq(serve, closeWith(CloseNormal, "")),
		frames: frames, replies: replies, close: CloseNormal, errCode: CloseNormal}
}

// echoCase: the server sends fs and the handler must get the message m, which
// the client echoes.
func echoCase(name string, m Frame, serve func(*wstest.Conn) error) confCase {
	return okCase(name, serve, []Frame{m}, []wstest.Frame{reply(m)})
}

// failCase: the client must fail the connection with code, after seeing frames
// and sending replies; the policy stops after all of these codes.
func failCase(name string, code int, serve func(*wstest.Conn) error, frames []Frame, replies []wstest.Frame) confCase {
	return confCase{name: name, serve: serve, frames: frames, replies: replies,
		close: code, errCode: code, local: true, stop: true}
}

// remoteClose: the server closes with code and reason; the client echoes the code.
func remoteClose(name string, code int, reason string) confCase {
	return confCase{name: name, serve: closeWith(code, reason), close: code,
		errCode: code, reason: reason, stop: stopCloseCode(code)}
}

// Scripts.

// closeWith sends a close frame with a valid code and reason (Conn.Close: the
// server then knows that its close frame went first).
func closeWith(code int, reason string) func(*wstest.Conn) error {
	return func(c *wstest.Conn) error { return c.Close(code, reason) }
}

func send(fs ...wstest.Frame) func(*wstest.Conn) error {
	return func(c *wstest.Conn) error {
		for _, f := range fs {
			if err := c.SendFrame(f); err != nil {
				return err
			}
		}
		return nil
	}
}

func encode(fs ...wstest.Frame) []byte {
	var b []byte
	for _, f := range fs {
		b = append(b, f.Bytes()...)
	}
	return b
}

// sendOne writes fs in a single write.
func sendOne(fs ...wstest.Frame) func(*wstest.Conn) error {
	return func(c *wstest.Conn) error { return c.WriteRaw(encode(fs...)) }
}

// chopped writes fs in writes of size bytes, with a short pause between them so
// that they arrive as separate reads (over wss, as separate TLS records).
func chopped(size int, fs ...wstest.Frame) func(*wstest.Conn) error {
	return func(c *wstest.Conn) error { return c.WriteSliced(encode(fs...), size, 100*time.Microsecond) }
}

// raw writes b as it is.
func raw(b []byte) func(*wstest.Conn) error {
	return func(c *wstest.Conn) error { return c.WriteRaw(b) }
}

// pause is a scripted gap between two writes, so that they arrive apart: no
// wait for anything (the case holds whether they arrive apart or not).
func pause(d time.Duration) func(*wstest.Conn) error {
	return func(*wstest.Conn) error { time.Sleep(d); return nil }
}

func seq(steps ...func(*wstest.Conn) error) func(*wstest.Conn) error {
	return func(c *wstest.Conn) error {
		for _, s := range steps {
			if err := s(c); err != nil {
				return err
			}
		}
		return nil
	}
}

// Frames.

func wText(s string) wstest.Frame {
	return wstest.Frame{Op: wstest.OpText, Fin: true, Payload: []byte(s)}
}
func wBinary(b []byte) wstest.Frame { return wstest.Frame{Op: wstest.OpBinary, Fin: true, Payload: b} }
func wPing(p []byte) wstest.Frame   { return wstest.Frame{Op: wstest.OpPing, Fin: true, Payload: p} }
func wPong(p []byte) wstest.Frame   { return wstest.Frame{Op: wstest.OpPong, Fin: true, Payload: p} }

// wCloseRaw is a close frame with any payload (empty, or a single byte).
func wCloseRaw(p []byte) wstest.Frame { return wstest.Frame{Op: wstest.OpClose, Fin: true, Payload: p} }

// wFrag is one fragment of a message: op is OpText or OpBinary for the first,
// OpContinuation for the others; fin marks the last.
func wFrag(op byte, fin bool, p []byte) wstest.Frame {
	return wstest.Frame{Op: op, Fin: fin, Payload: p}
}

func tf(s string) Frame  { return Frame{Type: Text, Data: []byte(s)} }
func bf(b []byte) Frame  { return Frame{Type: Binary, Data: b} }
func pf(b []byte) Frame  { return Frame{Type: Ping, Data: b} }
func pof(b []byte) Frame { return Frame{Type: Pong, Data: b} }

// reply is the frame the client sends back for m: an echo, or a pong for a ping.
func reply(m Frame) wstest.Frame {
	switch m.Type {
	case Text:
		return wText(string(m.Data))
	case Binary:
		return wBinary(m.Data)
	case Ping:
		return wPong(m.Data)
	}
	panic("no reply to " + m.Type.String())
}

func star(n int) string                             { return strings.Repeat("*", n) }
func bin(n int) []byte                              { return bytes.Repeat([]byte{0xfe}, n) }
func frag(op byte, fin bool, s string) wstest.Frame { return wFrag(op, fin, []byte(s)) }

// fragments splits p into a message of fragments of size bytes.
func fragments(op byte, p []byte, size int) []wstest.Frame {
	var fs []wstest.Frame
	for first := true; first || len(p) > 0; first = false {
		n := min(size, len(p))
		o := byte(wstest.OpContinuation)
		if first {
			o = op
		}
		fs = append(fs, wFrag(o, n == len(p), p[:n]))
		p = p[n:]
	}
	return fs
}

func withRSV(f wstest.Frame, rsv byte) wstest.Frame {
	f.Rsv = rsv
	return f
}

// TestConformance runs every case over plain ws, and the cases the transport
// must get right on every path (close frames, UTF-8, read limits) over wss,
// direct and through an HTTP CONNECT or SOCKS5 proxy:
// TestConformance/<path>/<section>/<case>. Over ws through either proxy it
// runs the close frames and read limits (UTF-8 is checked above the bytes,
// which those paths do not change).
func TestConformance(t *testing.T) {
	// Paths, groups and cases run concurrently, the cases up to
	// eachConcurrently's bound: each mostly waits on its server.
	eachConcurrently(t, len(connPaths), func(i int) string { return connPaths[i].name }, false, func(t *testing.T, i int) {
		p := connPaths[i]
		groups := conformanceGroups()
		if p.name != "ws" {
			groups = everyPathGroups(groups, p.tls)
		}
		eachConcurrently(t, len(groups), func(j int) string { return groups[j].name }, false, func(t *testing.T, j int) {
			cases := groups[j].cases
			eachConcurrently(t, len(cases), func(k int) string { return cases[k].name }, true, func(t *testing.T, k int) {
				runConformance(t, p, cases[k])
			})
		})
	})
}

// everyPathGroups are the sections run on every path: close frames, the read
// limits (the cases with a ReadLimit or a 1009, from every group) and, with
// utf8, UTF-8.
func everyPathGroups(all []confGroup, utf8 bool) []confGroup {
	var out []confGroup
	limits := confGroup{name: "read-limits"}
	for _, g := range all {
		switch {
		case g.name == "7-close", g.name == "6-utf8" && utf8:
			out = append(out, g)
			continue
		case g.name == "6-utf8":
			continue
		}
		for _, tc := range g.cases {
			if tc.limit != 0 || tc.errCode == CloseMessageTooBig {
				limits.cases = append(limits.cases, tc)
			}
		}
	}
	return append(out, limits)
}

// connPath is one way from the client to a server: ws or wss, direct or
// through a proxy.
type connPath struct {
	name  string
	tls   bool
	proxy *testproxy.Kind // nil: direct
}

func proxyKind(k testproxy.Kind) *testproxy.Kind { return &k }

// connPaths: the four paths of issue 10, then ws through each proxy.
var connPaths = []connPath{
	{name: "ws"},
	{name: "wss", tls: true},
	{name: "wss-connect", tls: true, proxy: proxyKind(testproxy.Connect)},
	{name: "wss-socks5", tls: true, proxy: proxyKind(testproxy.SOCKS5)},
	{name: "ws-connect", proxy: proxyKind(testproxy.Connect)},
	{name: "ws-socks5", proxy: proxyKind(testproxy.SOCKS5)},
}

func (p connPath) scheme() string {
	if p.tls {
		return "wss"
	}
	return "ws"
}

// pathCA signs a certificate for 127.0.0.1: connPath.client trusts it for
// wss (the conformance tests use confClient and wstest's own CA).
var pathCA struct {
	once sync.Once
	ca   *testCA
	cert tls.Certificate
}

func pathCerts(t testing.TB) (*testCA, tls.Certificate) {
	pathCA.once.Do(func() {
		pathCA.ca = newTestCA(t, "path test CA")
		pathCA.cert = pathCA.ca.serverCert(t, "127.0.0.1")
		warmUpTLS(t, pathCA.ca, pathCA.cert)
	})
	require.NotNil(t, pathCA.ca, "the test CA")
	return pathCA.ca, pathCA.cert
}

// warmUpTLS runs one TLS handshake with the path certificate in memory, so
// that the first wss attempt of a test does not pay crypto/tls's one-time
// set-up (slow under the race detector) inside a 200 ms HandshakeTimeout.
func warmUpTLS(t testing.TB, ca *testCA, cert tls.Certificate) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	done := make(chan error, 1)
	go func() {
		done <- tls.Server(a, &tls.Config{Certificates: []tls.Certificate{cert}, CurvePreferences: []tls.CurveID{tls.X25519}}).Handshake()
	}()
	err := tls.Client(b, &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1"}).Handshake()
	require.NoError(t, err, "TLS warm-up")
	require.NoError(t, <-done, "TLS warm-up, server side")
}

// startProxy starts a proxy of kind k, closed at the end of the test.
func startProxy(t testing.TB, k testproxy.Kind, o testproxy.Options) *testproxy.Proxy {
	t.Helper()
	px, err := testproxy.New(k, o)
	require.NoError(t, err)
	t.Cleanup(px.Close)
	return px
}

// client sets o up for the path: the test CA as the root for wss, and a
// proxy of its own for a proxied path. The returned check, called once the
// client has connected at least once, asserts that the connection went
// through the proxy to target (host:port); it does nothing for a direct path.
func (p connPath) client(t testing.TB, o *Options, target string) (check func(t testing.TB)) {
	t.Helper()
	if p.tls {
		ca, _ := pathCerts(t)
		o.TLSConfig = &tls.Config{RootCAs: ca.pool}
	}
	return p.viaProxy(t, o, target)
}

// viaProxy gives o a proxy of its own for a proxied path; the returned
// check asserts that the connection went through it to target.
func (p connPath) viaProxy(t testing.TB, o *Options, target string) (check func(t testing.TB)) {
	t.Helper()
	if p.proxy == nil {
		return func(testing.TB) {}
	}
	px := startProxy(t, *p.proxy, testproxy.Options{})
	o.Proxy = http.ProxyURL(px.URL("", ""))
	return func(t testing.TB) {
		t.Helper()
		select {
		case got := <-px.Seen():
			assert.Equal(t, target, got, "the proxy's tunnel goes to the server")
		default:
			t.Errorf("the client did not connect through the %s proxy", p.name)
		}
	}
}

// confServer is the wstest server of a conformance case, speaking the path's
// scheme. Its waits and writes are bounded by 15 s (4 MiB over wss under the
// race detector, with every case of a path in parallel).
func confServer(t testing.TB, p connPath) *wstest.Server {
	if p.tls {
		confWarmUp.Do(func() { confWarmUpErr = warmUpWSS() })
		require.NoError(t, confWarmUpErr, "TLS warm-up")
	}
	return wstest.Start(t, &wstest.Options{TLS: p.tls, WaitTimeout: 15 * time.Second})
}

var (
	confWarmUp    sync.Once
	confWarmUpErr error
)

// warmUpWSS runs one TLS handshake with a wstest server of its own, so that
// the first wss attempt of a case does not pay crypto/tls's one-time set-up
// (slow under the race detector) inside its HandshakeTimeout.
func warmUpWSS() error {
	srv, err := wstest.NewServer(&wstest.Options{TLS: true})
	if err != nil {
		return err
	}
	defer srv.Close()
	cfg := srv.ClientTLSConfig()
	cfg.CurvePreferences = []tls.CurveID{tls.X25519}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", srv.Addr(), cfg)
	if err != nil {
		return err
	}
	return conn.Close()
}

// confClient sets o up for srv on the path: srv's CA for wss, a proxy of its
// own for a proxied path. The returned check, called once the client has
// connected, asserts that the connection went through the proxy to srv.
func confClient(t testing.TB, p connPath, srv *wstest.Server, o *Options) (check func(t testing.TB)) {
	t.Helper()
	if p.tls {
		o.TLSConfig = srv.ClientTLSConfig()
		// X25519 alone: the default hybrid key exchange (X25519MLKEM768)
		// costs a third more per handshake under the race detector.
		o.TLSConfig.CurvePreferences = []tls.CurveID{tls.X25519}
	}
	return p.viaProxy(t, o, srv.Addr())
}

type confGroup struct {
	name  string
	cases []confCase
}

func conformanceGroups() []confGroup {
	return []confGroup{
		{"1-framing", framingCases()},
		{"2-ping-pong", pingCases()},
		{"3-reserved-bits", rsvCases()},
		{"4-opcodes", opcodeCases()},
		{"5-fragmentation", fragmentationCases()},
		{"6-utf8", utf8Cases()},
		{"7-close", closeCases()},
		{"9-limits-and-performance", largeCases()},
		{"10-misc", miscCases()},
	}
}

func framingCases() []confCase {
	var cs []confCase
	for _, n := range []int{0, 125, 126, 127, 128, 65535, 65536} {
		cs = append(cs,
			echoCase(fmt.Sprintf("1.1 text %d bytes", n), tf(star(n)), send(wText(star(n)))),
			echoCase(fmt.Sprintf("1.2 binary %d bytes", n), bf(bin(n)), send(wBinary(bin(n)))))
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB, a 64-bit length
	many := make([]wstest.Frame, 100)
	var manyFrames []Frame
	for i := range many {
		many[i] = wText(fmt.Sprintf("message %d", i))
		manyFrames = append(manyFrames, tf(fmt.Sprintf("message %d", i)))
	}
	manyReplies := make([]wstest.Frame, len(many))
	for i, f := range manyFrames {
		manyReplies[i] = reply(f)
	}
	nonMinimal16 := wText("short")
	nonMinimal16.LengthBits = 16
	nonMinimal64 := wBinary([]byte{1, 2, 3})
	nonMinimal64.LengthBits = 64
	mixed := []wstest.Frame{wText("a"), wPing([]byte("p1")), wBinary([]byte{0}), wPong([]byte("x")), wText("b")}
	return append(cs,
		echoCase("1.1.8 text 65536 bytes in chops of 997", tf(star(65536)), chopped(997, wText(star(65536)))),
		echoCase("1.2.8 binary 65536 bytes in chops of 997", bf(bin(65536)), chopped(997, wBinary(bin(65536)))),
		echoCase("text frame split into single bytes", tf("Hello, world!"), chopped(1, wText("Hello, world!"))),
		echoCase("16-bit length frame split into single bytes", tf(star(300)), chopped(1, wText(star(300)))),
		echoCase("64-bit length header split into single bytes", bf(bin(65536)),
			func(c *wstest.Conn) error {
				b := wBinary(bin(65536)).Bytes()
				if err := c.WriteSliced(b[:10], 1, 100*time.Microsecond); err != nil {
					return err
				}
				return c.WriteRaw(b[10:])
			}),
		echoCase("1 MiB binary, 64-bit length", bf(big), send(wBinary(big))),
		okCase("100 frames in one write", sendOne(many...), manyFrames, manyReplies),
		okCase("mixed data and control frames in one write", sendOne(mixed...),
			[]Frame{tf("a"), pf([]byte("p1")), bf([]byte{0}), pof([]byte("x")), tf("b")},
			[]wstest.Frame{wText("a"), wPong([]byte("p1")), wBinary([]byte{0}), wText("b")}),
		// RFC 6455 5.2 asks senders for the minimal length encoding but says
		// nothing of receivers; like most clients, this one accepts the others.
		echoCase("length in a non-minimal 16-bit form is accepted", tf("short"), send(nonMinimal16)),
		echoCase("length in a non-minimal 64-bit form is accepted", bf([]byte{1, 2, 3}), send(nonMinimal64)),
		func() confCase {
			c := echoCase("message of exactly ReadLimit", bf(bin(1000)), send(wBinary(bin(1000))))
			c.limit = 1000
			return c
		}(),
		func() confCase {
			c := failCase("message over ReadLimit: 1009", CloseMessageTooBig, send(wBinary(bin(1001))), nil, nil)
			c.limit = 1000
			return c
		}(),
		func() confCase {
			c := failCase("fragments over ReadLimit: 1009", CloseMessageTooBig,
				send(fragments(wstest.OpBinary, bin(1200), 400)...), nil, nil)
			c.limit = 1000
			return c
		}(),
		failCase("64-bit length of 4 GiB: over ReadLimit, 1009", CloseMessageTooBig,
			send(wBinary(nil).WithLength(1<<32)), nil, nil),
		// RFC 6455 5.2: the most significant bit of a 64-bit length MUST be 0.
		failCase("64-bit length with its most significant bit set: 1002", CloseProtocolError,
			send(wBinary(nil).WithLength(1<<63|5)), nil, nil),
	)
}

func pingCases() []confCase {
	p125 := bin(125)
	tenPings := make([]wstest.Frame, 10)
	var tenFrames []Frame
	var tenPongs []wstest.Frame
	for i := range tenPings {
		p := []byte(fmt.Sprintf("payload-%d", i))
		tenPings[i] = wPing(p)
		tenFrames = append(tenFrames, pf(p))
		tenPongs = append(tenPongs, wPong(p))
	}
	pingCase := func(name string, p []byte, serve func(*wstest.Conn) error) confCase {
		return okCase(name, serve, []Frame{pf(p)}, []wstest.Frame{wPong(p)})
	}
	return []confCase{
		pingCase("2.1 ping without payload", nil, send(wPing(nil))),
		pingCase("2.2 ping with text payload", []byte("Hello, world!"), send(wPing([]byte("Hello, world!")))),
		pingCase("2.3 ping with binary payload", []byte{0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff},
			send(wPing([]byte{0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff}))),
		pingCase("2.4 ping with 125-byte payload", p125, send(wPing(p125))),
		failCase("2.5 ping with 126-byte payload: 1002", CloseProtocolError, send(wPing(bin(126))), nil, nil),
		failCase("ping of 5 bytes in a 16-bit length form (over 125): 1002", CloseProtocolError,
			send(wstest.Frame{Fin: true, Op: wstest.OpPing, Payload: []byte("hello"), LengthBits: 16}), nil, nil),
		failCase("pong with 126-byte payload: 1002", CloseProtocolError, send(wPong(bin(126))), nil, nil),
		pingCase("2.6 ping with 125-byte payload in single bytes", p125, chopped(1, wPing(p125))),
		okCase("2.7 unsolicited pong without payload", send(wPong(nil)), []Frame{pof(nil)}, nil),
		okCase("2.8 unsolicited pong with payload", send(wPong([]byte("unsolicited pong payload"))),
			[]Frame{pof([]byte("unsolicited pong payload"))}, nil),
		okCase("2.9 unsolicited pong, then ping", send(wPong([]byte("unsolicited")), wPing([]byte("ping payload"))),
			[]Frame{pof([]byte("unsolicited")), pf([]byte("ping payload"))}, []wstest.Frame{wPong([]byte("ping payload"))}),
		okCase("2.10 ten pings", send(tenPings...), tenFrames, tenPongs),
		okCase("2.11 ten pings in single bytes", chopped(1, tenPings...), tenFrames, tenPongs),
	}
}

func rsvCases() []confCase {
	hello := wText("Hello, world!")
	echoed := []Frame{tf("Hello, world!")}
	echoes := []wstest.Frame{wText("Hello, world!")}
	ping := wPing([]byte("Hello, world!"))
	return []confCase{
		failCase("3.1 text with RSV=1: 1002", CloseProtocolError, send(withRSV(hello, 1)), nil, nil),
		failCase("3.2 text, text with RSV=2, ping: 1002", CloseProtocolError,
			send(hello, withRSV(hello, 2), ping), echoed, echoes),
		failCase("3.3 text, text with RSV=3, ping in one write: 1002", CloseProtocolError,
			sendOne(hello, withRSV(hello, 3), ping), echoed, echoes),
		failCase("3.4 text, text with RSV=4 (RSV1 without compression), ping in single bytes: 1002", CloseProtocolError,
			chopped(1, hello, withRSV(hello, 4), ping), echoed, echoes),
		failCase("3.5 binary with RSV=5: 1002", CloseProtocolError, send(withRSV(wBinary(bin(8)), 5)), nil, nil),
		failCase("3.6 ping with RSV=6: 1002", CloseProtocolError, send(withRSV(ping, 6)), nil, nil),
		failCase("3.7 close with RSV=7: 1002", CloseProtocolError, send(withRSV(wstest.CloseFrame(CloseNormal, ""), 7)), nil, nil),
	}
}

func opcodeCases() []confCase {
	hello := wText("Hello, world!")
	echoed := []Frame{tf("Hello, world!")}
	echoes := []wstest.Frame{wText("Hello, world!")}
	ping := wPing([]byte("Hello, world!"))
	var cs []confCase
	for i, op := range []byte{3, 4, 5, 6, 7} {
		cs = append(cs, reservedOpcodeCase(fmt.Sprintf("4.1.%d", i+1), op, hello, ping, echoed, echoes))
	}
	for i, op := range []byte{11, 12, 13, 14, 15} {
		cs = append(cs, reservedOpcodeCase(fmt.Sprintf("4.2.%d", i+1), op, hello, ping, echoed, echoes))
	}
	return cs
}

// reservedOpcodeCase follows Autobahn's five variants of a reserved opcode.
func reservedOpcodeCase(id string, op byte, hello, ping wstest.Frame, echoed []Frame, echoes []wstest.Frame) confCase {
	bad := wstest.Frame{Fin: true, Op: op}
	withPayload := bad
	withPayload.Payload = []byte("reserved opcode payload")
	name := fmt.Sprintf("%s opcode %d", id, op)
	switch id[len(id)-1] {
	case '1':
		return failCase(name+": 1002", CloseProtocolError, send(bad), nil, nil)
	case '2':
		return failCase(name+" with payload: 1002", CloseProtocolError, send(withPayload), nil, nil)
	case '3':
		return failCase("text, "+name+", ping: 1002", CloseProtocolError, send(hello, bad, ping), echoed, echoes)
	case '4':
		return failCase("text, "+name+" with payload, ping: 1002", CloseProtocolError, send(hello, withPayload, ping), echoed, echoes)
	default:
		return failCase("text, "+name+" with payload, ping in single bytes: 1002", CloseProtocolError,
			chopped(1, hello, withPayload, ping), echoed, echoes)
	}
}

func fragmentationCases() []confCase {
	const txt, bin2, cont = wstest.OpText, wstest.OpBinary, wstest.OpContinuation
	f1, f2 := frag(txt, false, "fragment1"), frag(cont, true, "fragment2")
	whole := tf("fragment1fragment2")
	ping := wPing([]byte("ping payload"))
	withPing := []Frame{pf([]byte("ping payload")), whole}
	withPong := []wstest.Frame{wPong([]byte("ping payload")), reply(whole)}
	binMsg := bytes.Repeat([]byte{0, 1, 2, 3, 0xfe, 0xff}, 100)
	var five []wstest.Frame
	var fivePings []Frame
	var fivePongs []wstest.Frame
	for i := 1; i <= 5; i++ {
		op := byte(cont)
		if i == 1 {
			op = txt
		}
		five = append(five, frag(op, i == 5, fmt.Sprintf("fragment%d", i)))
		if i < 5 {
			p := []byte(fmt.Sprintf("pongme %d!", i))
			five = append(five, wPing(p))
			fivePings = append(fivePings, pf(p))
			fivePongs = append(fivePongs, wPong(p))
		}
	}
	fiveMsg := tf("fragment1fragment2fragment3fragment4fragment5")
	return []confCase{
		failCase("5.1 ping in 2 fragments: 1002", CloseProtocolError,
			send(wstest.Frame{Op: wstest.OpPing, Payload: []byte("fragment1")}, frag(cont, true, "fragment2")), nil, nil),
		failCase("5.2 pong in 2 fragments: 1002", CloseProtocolError,
			send(wstest.Frame{Op: wstest.OpPong, Payload: []byte("fragment1")}, frag(cont, true, "fragment2")), nil, nil),
		echoCase("5.3 text in 2 fragments", whole, send(f1, f2)),
		echoCase("5.4 text in 2 fragments, one write", whole, sendOne(f1, f2)),
		echoCase("5.5 text in 2 fragments in single bytes", whole, chopped(1, f1, f2)),
		okCase("5.6 text in 2 fragments, ping between", send(f1, ping, f2), withPing, withPong),
		okCase("5.7 text in 2 fragments, ping between, one write", sendOne(f1, ping, f2), withPing, withPong),
		okCase("5.8 text in 2 fragments, ping between, single bytes", chopped(1, f1, ping, f2), withPing, withPong),
		failCase("5.9 continuation (FIN) with nothing to continue: 1002", CloseProtocolError,
			send(frag(cont, true, "non-continuation payload"), f1, f2), nil, nil),
		failCase("5.10 continuation (FIN) with nothing to continue, one write: 1002", CloseProtocolError,
			sendOne(frag(cont, true, "non-continuation payload"), f1, f2), nil, nil),
		failCase("5.11 continuation (FIN) with nothing to continue, single bytes: 1002", CloseProtocolError,
			chopped(1, frag(cont, true, "non-continuation payload"), f1, f2), nil, nil),
		failCase("5.12 continuation (no FIN) with nothing to continue: 1002", CloseProtocolError,
			send(frag(cont, false, "non-continuation payload"), f1, f2), nil, nil),
		failCase("5.13 continuation (no FIN) with nothing to continue, one write: 1002", CloseProtocolError,
			sendOne(frag(cont, false, "non-continuation payload"), f1, f2), nil, nil),
		failCase("5.15 message, then a continuation with nothing to continue: 1002", CloseProtocolError,
			send(f1, f2, frag(cont, false, "fragment3"), frag(txt, true, "fragment4")), []Frame{whole}, []wstest.Frame{reply(whole)}),
		failCase("5.16 continuation after a complete message: 1002", CloseProtocolError,
			sendOne(wText("complete"), frag(cont, true, "dangling")), []Frame{tf("complete")}, []wstest.Frame{wText("complete")}),
		failCase("5.18 new message before the last finished: 1002", CloseProtocolError,
			send(f1, frag(txt, true, "fragment2")), nil, nil),
		failCase("new binary message before a text one finished: 1002", CloseProtocolError,
			send(f1, wBinary([]byte("x"))), nil, nil),
		okCase("5.19 text in 5 fragments with pings between", seq(send(five[:4]...), pause(5*time.Millisecond), send(five[4:]...)),
			append(fivePings, fiveMsg), append(fivePongs, reply(fiveMsg))),
		okCase("5.20 text in 5 fragments with pings between, single bytes", chopped(1, five...),
			append(fivePings, fiveMsg), append(fivePongs, reply(fiveMsg))),
		echoCase("text in 1-byte fragments", tf("Hello-µ@ßöäüàá-UTF-8!!"),
			send(fragments(txt, []byte("Hello-µ@ßöäüàá-UTF-8!!"), 1)...)),
		echoCase("binary in 100 fragments", bf(binMsg), send(fragments(bin2, binMsg, 6)...)),
		echoCase("binary in 100 fragments, one write", bf(binMsg), sendOne(fragments(bin2, binMsg, 6)...)),
		okCase("ping with 125 bytes between fragments", send(f1, wPing(bin(125)), f2),
			[]Frame{pf(bin(125)), whole}, []wstest.Frame{wPong(bin(125)), reply(whole)}),
		okCase("pong between fragments", send(f1, wPong([]byte("p")), f2),
			[]Frame{pof([]byte("p")), whole}, []wstest.Frame{reply(whole)}),
		echoCase("empty fragments around data", tf("data"),
			send(frag(txt, false, ""), frag(cont, false, "da"), frag(cont, false, ""), frag(cont, false, "ta"), frag(cont, true, ""))),
	}
}

// impossibleAt is the length of the shortest prefix of p that no bytes can
// complete to valid UTF-8, or len(p) when there is none (p is valid, or only
// cut short at its end). It asks utf8.Valid, not the client's checker.
func impossibleAt(p []byte) int {
	for i := 1; i <= len(p); i++ {
		if !canComplete(p[:i]) {
			return i
		}
	}
	return len(p)
}

// canComplete reports whether some 0 to 3 continuation bytes make p valid
// UTF-8. One byte of each range that RFC 3629 tells apart is enough.
func canComplete(p []byte) bool {
	if utf8.Valid(p) {
		return true
	}
	conts := []byte{0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf}
	for _, a := range conts {
		if utf8.Valid(append(p[:len(p):len(p)], a)) {
			return true
		}
		for _, b := range conts {
			if utf8.Valid(append(p[:len(p):len(p)], a, b)) {
				return true
			}
			for _, c := range conts {
				if utf8.Valid(append(p[:len(p):len(p)], a, b, c)) {
					return true
				}
			}
		}
	}
	return false
}

func utf8Cases() []confCase {
	var cs []confCase
	for i, s := range utf8cases.Valid {
		p := []byte(s)
		name := fmt.Sprintf("valid %d %q", i+1, s)
		cs = append(cs,
			echoCase(name+" in one frame", tf(s), send(wText(s))),
			echoCase(name+" in 1-byte fragments", tf(s), send(fragments(wstest.OpText, p, 1)...)),
			echoCase(name+" in single-byte writes", tf(s), chopped(1, wText(s))))
	}
	for i, s := range utf8cases.Invalid {
		p := []byte(s)
		bad := impossibleAt(p)
		name := fmt.Sprintf("invalid %d %q", i+1, s)
		frags := fragments(wstest.OpText, p, 1)
		whole := wText(s).Bytes()
		hdr := len(whole) - len(p)
		// Fail fast: only the bytes up to the first that makes the text
		// impossible are sent; the client must fail before the rest comes.
		cs = append(cs,
			failCase(name+" in one frame, cut after the bad byte", CloseInvalidPayload, raw(whole[:hdr+bad]), nil, nil),
			failCase(name+" in 1-byte fragments, up to the bad one", CloseInvalidPayload, send(frags[:bad]...), nil, nil),
			failCase(name+" in single-byte writes, up to the bad one", CloseInvalidPayload,
				func(c *wstest.Conn) error { return c.WriteSliced(whole[:hdr+bad], 1, 100*time.Microsecond) }, nil, nil))
	}
	const txt, cont = wstest.OpText, wstest.OpContinuation
	part1, part2, part3 := "κόσμε", "\xf4\x90\x80\x80", "edited"
	return append(cs,
		echoCase("6.1.1 empty text", tf(""), send(wText(""))),
		echoCase("6.1.2 empty text in 3 empty fragments", tf(""), send(frag(txt, false, ""), frag(cont, false, ""), frag(cont, true, ""))),
		echoCase("6.1.3 text in fragments, empty ones first and last", tf("middle frame payload"),
			send(frag(txt, false, ""), frag(cont, false, "middle frame payload"), frag(cont, true, ""))),
		echoCase("6.2.3 valid text in single-byte writes", tf("Hello-µ@ßöäüàá-UTF-8!!"), chopped(1, wText("Hello-µ@ßöäüàá-UTF-8!!"))),
		echoCase("6.2.4 valid text, split inside a sequence across fragments", tf("κόσμε"),
			send(fragments(txt, []byte("κόσμε"), 3)...)),
		failCase("6.3.2 invalid text in 1-byte fragments, all of it", CloseInvalidPayload,
			send(fragments(txt, []byte(utf8cases.Invalid[0]), 1)...), nil, nil),
		// 6.4: fail fast. The client must fail on the fragment (or read) that makes
		// the text impossible; the rest is never sent.
		failCase("6.4.1 3 fragments, the 2nd makes it invalid, the 3rd never comes", CloseInvalidPayload,
			send(frag(txt, false, part1), frag(cont, false, part2)), nil, nil),
		failCase("6.4.2 3 fragments, the 2nd starts with the bad byte, the 3rd never comes", CloseInvalidPayload,
			send(frag(txt, false, part1+"\xf4"), frag(cont, false, "\x90\x80\x80")), nil, nil),
		failCase("6.4.3 one frame, the read with the bad bytes fails it, the rest never comes", CloseInvalidPayload,
			func(c *wstest.Conn) error {
				b := wText(part1 + part2 + part3).Bytes()
				cut := len(b) - len(part3)
				if err := c.WriteRaw(b[:cut-len(part2)]); err != nil {
					return err
				}
				time.Sleep(2 * time.Millisecond)
				return c.WriteRaw(b[cut-len(part2) : cut])
			}, nil, nil),
		failCase("6.4.4 one frame, the read with the bad byte alone fails it, the rest never comes", CloseInvalidPayload,
			func(c *wstest.Conn) error {
				b := wText(part1 + part2 + part3).Bytes()
				at := len(b) - len(part3) - 3 // after the 0xf4
				if err := c.WriteRaw(b[:at]); err != nil {
					return err
				}
				time.Sleep(2 * time.Millisecond)
				return c.WriteRaw(b[at : at+1]) // 0x90
			}, nil, nil),
		failCase("valid prefix cut by the message's end: 1007 at the last fragment", CloseInvalidPayload,
			send(frag(txt, false, "abc\xe2\x82"), frag(cont, true, "")), nil, nil),
		failCase("invalid text after a ping between fragments", CloseInvalidPayload,
			send(frag(txt, false, "ok\xe2"), wPing([]byte("p")), frag(cont, false, "\x28")),
			[]Frame{pf([]byte("p"))}, []wstest.Frame{wPong([]byte("p"))}),
		echoCase("binary is not checked for UTF-8", bf([]byte{0xff, 0xfe, 0xc0}), send(wBinary([]byte{0xff, 0xfe, 0xc0}))),
	)
}

func closeCases() []confCase {
	hello := wText("Hello, world!")
	cs := []confCase{
		{name: "7.1.1 text, then close", serve: send(hello, wstest.CloseFrame(CloseNormal, "")),
			frames: []Frame{tf("Hello, world!")}, replies: []wstest.Frame{wText("Hello, world!")}, close: CloseNormal, errCode: CloseNormal},
		{name: "7.1.2 close twice: echoed once", serve: sendOne(wstest.CloseFrame(CloseNormal, ""), wstest.CloseFrame(CloseNormal, "")),
			close: CloseNormal, errCode: CloseNormal},
		{name: "7.1.3 close, then ping: no pong", serve: sendOne(wstest.CloseFrame(CloseNormal, ""), wPing([]byte("Hello"))),
			close: CloseNormal, errCode: CloseNormal},
		{name: "7.1.4 close, then text: ignored", serve: sendOne(wstest.CloseFrame(CloseNormal, ""), hello),
			close: CloseNormal, errCode: CloseNormal},
		{name: "7.1.5 fragment, close, last fragment: no message", serve: sendOne(frag(wstest.OpText, false, "fragment1"),
			wstest.CloseFrame(CloseNormal, ""), frag(wstest.OpContinuation, true, "fragment2")), close: CloseNormal, errCode: CloseNormal},
		{name: "7.1.6 256 KiB message, close, ping", serve: sendOne(wText(star(256<<10)), wstest.CloseFrame(CloseNormal, ""), wPing(nil)),
			frames: []Frame{tf(star(256 << 10))}, replies: []wstest.Frame{wText(star(256 << 10))}, close: CloseNormal, errCode: CloseNormal},
		{name: "data after close, in a later write: ignored", serve: seq(send(wstest.CloseFrame(CloseNormal, "")), pause(time.Millisecond),
			func(c *wstest.Conn) error { _ = c.SendFrame(hello); return nil }), close: CloseNormal, errCode: CloseNormal},
		// 7.3.1: RFC 6455 5.5.1: a close without a code is answered with a
		// close; the client sends none (1005 is never put on the wire).
		{name: "7.3.1 close without payload: answered with an empty close", serve: send(wCloseRaw(nil)),
			close: CloseNoStatus, errCode: CloseNoStatus},
		{name: "7.3.2 close with a 1-byte payload: 1002", serve: send(wCloseRaw([]byte("a"))),
			close: CloseProtocolError, errCode: CloseProtocolError, local: true, stop: true, wire: true},
		{name: "close with a 1-byte payload in single-byte writes: 1002", serve: chopped(1, wCloseRaw([]byte{3})),
			close: CloseProtocolError, errCode: CloseProtocolError, local: true, stop: true, wire: true},
		{name: "close with a 1-byte payload after a message in the same write: 1002", serve: sendOne(hello, wCloseRaw([]byte{0xe8})),
			frames: []Frame{tf("Hello, world!")}, replies: []wstest.Frame{wText("Hello, world!")},
			close: CloseProtocolError, errCode: CloseProtocolError, local: true, stop: true, wire: true},
		remoteClose("7.3.3 close with a code only", CloseNormal, ""),
		remoteClose("7.3.4 close with a code and a reason", CloseNormal, "Hello World!"),
		remoteClose("7.3.5 close with a 123-byte reason", CloseNormal, star(123)),
		{name: "7.3.6 close with a 124-byte reason (payload 126): 1002", serve: send(wstest.CloseFrame(CloseNormal, star(124))),
			close: CloseProtocolError, errCode: CloseProtocolError, local: true, stop: true},
		{name: "close with a code and reason in single-byte writes", serve: chopped(1, wstest.CloseFrame(CloseGoingAway, "bye")),
			close: CloseGoingAway, errCode: CloseGoingAway, reason: "bye"},
		{name: "close 1014 with a reason in single-byte writes", serve: chopped(1, wstest.CloseFrame(CloseBadGateway, "upstream down")),
			close: CloseBadGateway, errCode: CloseBadGateway, reason: "upstream down", wire: true},
		{name: "close in 2 fragments: 1002", serve: send(wstest.Frame{Op: wstest.OpClose, Payload: []byte{3}}, frag(wstest.OpContinuation, true, "\xe8")),
			close: CloseProtocolError, errCode: CloseProtocolError, local: true, stop: true},
		{name: "masked close: 1002", serve: send(wstest.Frame{Fin: true, Op: wstest.OpClose, Masked: true, MaskKey: [4]byte{1, 2, 3, 4}, Payload: []byte{3, 0xe8}}),
			close: CloseProtocolError, errCode: CloseProtocolError, local: true, stop: true},
		// 7.5.1: RFC 6455 5.5.1 and 8.1 make an invalid reason fail the
		// connection; the client uses 1007, as for a text message (Autobahn
		// accepts 1002 or 1007).
		{name: "7.5.1 close reason not UTF-8: 1007", serve: send(wstest.CloseFrame(CloseNormal, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64")),
			close: CloseInvalidPayload, errCode: CloseInvalidPayload, local: true, stop: true, wire: true},
		{name: "close reason cut inside a sequence: 1007", serve: send(wstest.CloseFrame(CloseGoingAway, "abc\xe2\x82")),
			close: CloseInvalidPayload, errCode: CloseInvalidPayload, local: true, stop: true, wire: true},
		{name: "close reason not UTF-8, in single-byte writes: 1007", serve: chopped(1, wstest.CloseFrame(CloseNormal, "\xff")),
			close: CloseInvalidPayload, errCode: CloseInvalidPayload, local: true, stop: true, wire: true},
		{name: "close reason not UTF-8 after messages in one write: 1007",
			serve:  sendOne(hello, wPing([]byte("p")), wstest.CloseFrame(4000, "\xc0\xaf"), hello),
			frames: []Frame{tf("Hello, world!"), pf([]byte("p"))}, replies: []wstest.Frame{wText("Hello, world!"), wPong([]byte("p"))},
			close: CloseInvalidPayload, errCode: CloseInvalidPayload, local: true, stop: true, wire: true},
		// An invalid code comes first: 1002, whatever the reason holds.
		{name: "invalid close code and a reason not UTF-8: 1002", serve: send(wstest.CloseFrame(999, "\xff")),
			close: CloseProtocolError, errCode: CloseProtocolError, local: true, stop: true},
	}
	for _, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		c := remoteClose(fmt.Sprintf("7.7 valid close code %d: echoed", code), code, "")
		c.wire = code == CloseBadGateway // gorilla rejects it on its own
		cs = append(cs, c)
	}
	for _, code := range []int{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		cs = append(cs, confCase{name: fmt.Sprintf("7.9/7.13 invalid close code %d: 1002", code), serve: send(wstest.CloseFrame(code, "")),
			close: CloseProtocolError, errCode: CloseProtocolError, local: true, stop: true})
	}
	return cs
}

func largeCases() []confCase {
	mib := 1 << 20
	text4 := star(4 * mib)
	bin4 := bytes.Repeat([]byte{0xfe, 0x00, 0x7f}, 4*mib/3)
	text1 := []byte(strings.Repeat("*µ", mib/3))
	bin1 := bytes.Repeat([]byte{0xfe, 0x00, 0x7f, 0x80}, mib/4)
	cs := []confCase{
		echoCase("9.1.1 text 64 KiB", tf(star(64<<10)), send(wText(star(64<<10)))),
		echoCase("9.1.5 text 4 MiB", tf(text4), send(wText(text4))),
		echoCase("9.2.1 binary 64 KiB", bf(bin(64<<10)), send(wBinary(bin(64<<10)))),
		echoCase("9.2.5 binary 4 MiB", bf(bin4), send(wBinary(bin4))),
	}
	for _, size := range []int{64, 4 << 10, 64 << 10, 1 << 20} {
		cs = append(cs,
			echoCase(fmt.Sprintf("9.3 text 1 MiB in fragments of %d", size), tf(string(text1)), send(fragments(wstest.OpText, text1, size)...)),
			echoCase(fmt.Sprintf("9.4 binary 1 MiB in fragments of %d", size), bf(bin1), send(fragments(wstest.OpBinary, bin1, size)...)))
	}
	for _, size := range []int{64, 4 << 10} {
		cs = append(cs,
			echoCase(fmt.Sprintf("9.5 text 1 MiB in writes of %d", size), tf(string(text1)), writeIn(size, wText(string(text1)))),
			echoCase(fmt.Sprintf("9.6 binary 1 MiB in writes of %d", size), bf(bin1), writeIn(size, wBinary(bin1))))
	}
	over := failCase("text 1 MiB + 1 over a ReadLimit of 1 MiB: 1009", CloseMessageTooBig, send(wText(star(mib+1))), nil, nil)
	over.limit = int64(mib)
	at := echoCase("text of exactly a ReadLimit of 1 MiB", tf(star(mib)), send(wText(star(mib))))
	at.limit = int64(mib)
	return append(cs, over, at)
}

// writeIn writes the frames in writes of size bytes, without pauses.
func writeIn(size int, fs ...wstest.Frame) func(*wstest.Conn) error {
	return func(c *wstest.Conn) error { return c.WriteSliced(encode(fs...), size, 0) }
}

func miscCases() []confCase {
	p := []byte(star(65536))
	return []confCase{
		echoCase("10.1.1 text 65536 bytes in fragments of 1300", tf(string(p)), send(fragments(wstest.OpText, p, 1300)...)),
		failCase("masked text from the server: 1002", CloseProtocolError,
			send(wstest.Frame{Fin: true, Op: wstest.OpText, Masked: true, MaskKey: [4]byte{9, 8, 7, 6}, Payload: []byte("masked")}), nil, nil),
		failCase("masked ping from the server: 1002", CloseProtocolError,
			send(wstest.Frame{Fin: true, Op: wstest.OpPing, Masked: true, Payload: []byte("masked")}), nil, nil),
	}
}

func runConformance(t *testing.T, p connPath, tc confCase) {
	srv := confServer(t, p)
	rec := newRecorder()
	rec.onFrame = func(c *Conn, f Frame) error {
		if f.Type == Text || f.Type == Binary {
			return c.Send(f)
		}
		return nil
	}
	o := testOptions()
	o.ReadLimit = tc.limit
	o.WriteTimeout = 5 * time.Second
	viaProxy := confClient(t, p, srv, o)
	c := mustNew(t, srv.URL(), rec, o)
	wait := startClient(t, c)

	// The first connection: the script, then what the client sent up to its
	// close frame, and after it until it closed the connection.
	ctx := ctxTimeout(t, 15*time.Second)
	conn, err := srv.NextConn(ctx)
	require.NoError(t, err, "the client did not connect")
	conn.AwaitClientClose()
	serveErr := tc.serve(conn)
	code, reason, closeErr := conn.WaitClosed(ctx)
	after, afterErr := conn.AfterClose(ctx)
	sent := conn.Frames()
	viaProxy(t)
	frames, d := untilDisconnect(t, rec)

	// What the client sent.
	if serveErr != nil && !tc.local {
		t.Errorf("server script: %v", serveErr)
	}
	// WaitClosed's error: the client broke the protocol (an unmasked frame,
	// a fragmented close frame, ...).
	require.NoError(t, closeErr, "the client's frames (script error: %v)", serveErr)
	require.NotEmpty(t, sent, "no close frame from the client (it ended with %d; script error: %v)", code, serveErr)
	closeFrame := sent[len(sent)-1]
	require.Equal(t, wstest.OpClose, closeFrame.Op, "no close frame from the client (it ended with %d, last frame %v; script error: %v)",
		code, closeFrame, serveErr)
	assert.True(t, closeFrame.Masked && closeFrame.Fin, "client close frame %v", closeFrame)
	assert.Equal(t, tc.close, code, "the client's close code (reason %q)", reason)
	if !tc.local {
		assert.Empty(t, reason, "an echoed close carries the code only")
	}
	checkMessages(t, "client sent", messagesOf(t, sent[:len(sent)-1]), tc.replies)
	assert.NoError(t, afterErr, "after its close frame, the client did not close the connection")
	assert.Empty(t, after, "the client sent bytes after its close frame")

	// What the handler saw.
	checkMessages(t, "handler saw", framesOnWire(frames), framesOnWire(tc.frames))
	var ce *CloseError
	require.ErrorAs(t, d.Err, &ce)
	assert.Equal(t, tc.errCode, ce.Code, "Disconnect.Err: %v", d.Err)
	assert.Equal(t, tc.local, ce.Local, "CloseError.Local: %v", d.Err)
	if tc.reason != "" {
		assert.Equal(t, tc.reason, ce.Reason)
	}
	assert.True(t, d.Connected)
	assert.Equal(t, tc.stop, d.Suggested.IsStop(), "Suggested: %v for %v", d.Suggested, d.Err)
	assert.Zero(t, rec.overlaps.Load())

	// And then the policy: the handler follows the suggestion.
	if tc.stop {
		err := wait()
		assert.Equal(t, tc.errCode, CloseStatus(err), "Run: %v", err)
		st := srv.Stats()
		assert.Equal(t, 1, st.Requests, "the client reconnected after a stop (%v)", st)
		assert.Equal(t, 1, st.Upgraded, "the client reconnected after a stop (%v)", st)
		return
	}
	_, err = srv.NextConn(ctx) // the reconnect the policy asked for
	require.NoError(t, err, "the client did not reconnect")
	rec.next(t, "connect")
	closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.Close(closeCtx, CloseNormal, ""))
	require.NoError(t, wait())
}

// untilDisconnect returns the frames delivered before the first OnDisconnect, and it.
func untilDisconnect(t *testing.T, rec *recorder) ([]Frame, Disconnect) {
	t.Helper()
	var frames []Frame
	for {
		ev := rec.next(t, "frame", "disconnect")
		if ev.kind == "disconnect" {
			return frames, ev.disc
		}
		frames = append(frames, ev.frame)
	}
}

// messagesOf merges the client's data fragments into messages, and checks that
// every frame is masked and every control frame whole and at most 125 bytes.
func messagesOf(t *testing.T, fs []wstest.Frame) []wstest.Frame {
	t.Helper()
	var msgs []wstest.Frame
	var cur *wstest.Frame
	for _, f := range fs {
		if !f.Masked || f.Rsv != 0 {
			t.Errorf("client frame not masked or with RSV bits: %v", f)
		}
		switch {
		case f.Op >= wstest.OpClose:
			if !f.Fin || len(f.Payload) > 125 {
				t.Errorf("bad client control frame: %v", f)
			}
			msgs = append(msgs, wstest.Frame{Fin: true, Op: f.Op, Payload: f.Payload})
		case f.Op == wstest.OpContinuation:
			if cur == nil {
				t.Errorf("client continuation with nothing to continue: %v", f)
				continue
			}
			cur.Payload = append(cur.Payload, f.Payload...)
		default:
			if cur != nil {
				t.Errorf("client started a message before the last one finished: %v", f)
			}
			cur = &wstest.Frame{Fin: true, Op: f.Op, Payload: append([]byte(nil), f.Payload...)}
		}
		if cur != nil && f.Fin && f.Op < wstest.OpClose {
			msgs = append(msgs, *cur)
			cur = nil
		}
	}
	if cur != nil {
		t.Errorf("client message left unfinished: %v", *cur)
	}
	return msgs
}

// framesOnWire are the handler's frames as the frames that carry them.
func framesOnWire(fs []Frame) []wstest.Frame {
	out := make([]wstest.Frame, len(fs))
	for i, f := range fs {
		out[i] = wstest.Frame{Fin: true, Op: byte(f.Type), Payload: f.Data}
	}
	return out
}

// checkMessages compares opcodes and payloads, reporting short descriptions.
func checkMessages(t *testing.T, what string, got, want []wstest.Frame) {
	t.Helper()
	same := len(got) == len(want)
	for i := 0; same && i < len(got); i++ {
		same = got[i].Op == want[i].Op && bytes.Equal(got[i].Payload, want[i].Payload)
	}
	if !same {
		t.Errorf("%s:\n got  %v\n want %v", what, got, want)
	}
}
