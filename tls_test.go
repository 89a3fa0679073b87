package wsclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ff42ae21/wsclient/internal/testcerts"
	"github.com/ff42ae21/wsclient/wstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The servers of these tests are wstest's (Options.TLS, Options.ClientCert,
// with their generated certificates) wherever the client is to trust the
// server's certificate, or the server the client's. testCA makes the
// certificates wstest does not: for a wrong host name, an expired one, one of
// a CA nobody trusts, the CAs of a bundle; and handshakeOnlyServer serves
// them, and TLS below 1.2, for handshakes that must fail.

// testCA is a certificate authority made in the test (internal/testcerts).
type testCA struct {
	*testcerts.CA
	pool *x509.CertPool
}

func newTestCA(t testing.TB, name string) *testCA {
	ca := testcerts.MustCA(t, name)
	return &testCA{CA: ca, pool: ca.Pool()}
}

// serverCert is a server certificate for hosts.
func (ca *testCA) serverCert(t testing.TB, hosts ...string) tls.Certificate {
	return ca.MustIssue(t, testcerts.Spec{CommonName: hosts[0], Hosts: hosts}).TLS
}

// writePEMFile writes data to dir/name atomically (a new file renamed over the
// old one), as a certificate rotation should, and returns its path.
func writePEMFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	tmp := path + ".new"
	require.NoError(t, os.WriteFile(tmp, data, 0o600))
	require.NoError(t, os.Rename(tmp, path))
	return path
}

// handshakeOnlyServer is a TLS server with cfg that upgrades nothing: it
// counts the HTTP requests that reach it, for TLS handshakes that must fail
// before one does. Its error log (the failed handshakes) is discarded.
func handshakeOnlyServer(t *testing.T, cfg *tls.Config) (url string, requests func() int) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Error(w, "no WebSocket here", http.StatusNotImplemented)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return "wss" + strings.TrimPrefix(srv.URL, "https"), func() int { return int(n.Load()) }
}

// lastRequest is the last handshake request srv read.
func lastRequest(t *testing.T, srv *wstest.Server) *http.Request {
	t.Helper()
	reqs := srv.Requests()
	require.NotEmpty(t, reqs, "no handshake request")
	return reqs[len(reqs)-1]
}

// runStopped runs a client that is expected to stop by itself and returns
// Run's error and the disconnect that stopped it.
func runStopped(t *testing.T, url string, o *Options) (Disconnect, error) {
	t.Helper()
	rec := newRecorder()
	c := mustNew(t, url, rec, o)
	err := c.Run(ctxTimeout(t, 5*time.Second))
	return rec.next(t, "disconnect").disc, err
}

func TestTLSVerifiesChainAndHostName(t *testing.T) {
	srv := wstest.Start(t, &wstest.Options{TLS: true, Echo: true}) // a certificate for localhost and 127.0.0.1
	_, port, _ := net.SplitHostPort(srv.Addr())
	for _, tc := range []struct {
		host, sni string
	}{
		{"127.0.0.1", ""}, // an IP address: verified against the IP SANs; no SNI is sent for it
		{"localhost", "localhost"},
	} {
		t.Run(tc.host, func(t *testing.T) {
			mine := &tls.Config{RootCAs: srv.CertPool(), NextProtos: []string{"h2", "http/1.1"}}
			logs := newCaptureHandler()
			tap := &wireTap{record: true} // the ClientHello
			o := testOptions()
			o.TLSConfig = mine
			o.Logger = slog.New(logs)
			o.NetDialContext = tap.dial
			rec := newRecorder()
			c := mustNew(t, "wss://"+net.JoinHostPort(tc.host, port)+"/", rec, o)
			mine.RootCAs = nil // New took a copy: a later change does not reach the client
			startClient(t, c)
			rec.next(t, "connect")
			echoThrough(t, c, rec, TextFrame("verified"))

			req := lastRequest(t, srv)
			require.NotNil(t, req.TLS)
			assert.Equal(t, tc.sni, req.TLS.ServerName)
			assert.GreaterOrEqual(t, req.TLS.Version, uint16(tls.VersionTLS12))
			assert.NotEqual(t, "h2", req.TLS.NegotiatedProtocol, "ALPN offers http/1.1 only: the upgrade is HTTP/1.1")
			// wstest's server would pick http/1.1 anyway: what the client
			// offered is in its ClientHello.
			assert.Equal(t, []string{"http/1.1"}, tap.offeredALPN(t, 0), "ALPN offers http/1.1 only: the upgrade is HTTP/1.1")

			// The caller's config was never modified.
			assert.Empty(t, mine.ServerName)
			assert.Zero(t, mine.MinVersion)
			assert.False(t, mine.InsecureSkipVerify)
			assert.Equal(t, []string{"h2", "http/1.1"}, mine.NextProtos)
			assert.Nil(t, mine.RootCAs)
			assert.Empty(t, logs.find(slog.LevelWarn, "WITHOUT verifying"), "a verified connection does not warn")
		})
	}
}

func TestTLSBelow12Refused(t *testing.T) {
	ca := newTestCA(t, "old CA") // wstest serves TLS 1.2 and up
	url, requests := handshakeOnlyServer(t, &tls.Config{
		Certificates: []tls.Certificate{ca.serverCert(t, "127.0.0.1")},
		MinVersion:   tls.VersionTLS10,
		MaxVersion:   tls.VersionTLS11,
	})
	o := testOptions()
	o.TLSConfig = &tls.Config{RootCAs: ca.pool}
	rec := newRecorder()
	rec.decide = func(Disconnect) Decision { return Stop() }
	c := mustNew(t, url, rec, o)
	err := c.Run(ctxTimeout(t, 5*time.Second))
	assert.ErrorContains(t, err, "protocol version")
	assert.Zero(t, requests(), "no handshake request went out")
}

func TestTLSCertificateErrorsStop(t *testing.T) {
	ca := newTestCA(t, "good CA")
	other := newTestCA(t, "other CA")
	// wstest: a certificate for 127.0.0.1 of a CA the client does not know.
	wss := func(t *testing.T) (string, func() int) {
		srv := wstest.Start(t, &wstest.Options{TLS: true})
		return srv.URL(), func() int { return srv.Stats().Requests }
	}
	// Certificates wstest does not make.
	serving := func(cert tls.Certificate) func(t *testing.T) (string, func() int) {
		return func(t *testing.T) (string, func() int) {
			return handshakeOnlyServer(t, &tls.Config{Certificates: []tls.Certificate{cert}})
		}
	}
	for _, tc := range []struct {
		name    string
		server  func(t *testing.T) (url string, requests func() int)
		roots   *x509.CertPool // nil: the system roots
		wantErr any
		check   func(t *testing.T, err error)
	}{
		{name: "unknown CA, system roots", server: wss, wantErr: &x509.UnknownAuthorityError{}},
		{name: "unknown CA, other pool", server: wss, roots: other.pool, wantErr: &x509.UnknownAuthorityError{}},
		{name: "wrong host name", server: serving(ca.serverCert(t, "other.example", "10.9.8.7")), roots: ca.pool, wantErr: &x509.HostnameError{}},
		{
			name:    "expired",
			server:  serving(ca.MustIssue(t, testcerts.Spec{CommonName: "old", Hosts: []string{"127.0.0.1"}, NotAfter: time.Now().Add(-time.Hour)}).TLS),
			roots:   ca.pool,
			wantErr: &x509.CertificateInvalidError{},
			check: func(t *testing.T, err error) {
				var ce x509.CertificateInvalidError
				require.ErrorAs(t, err, &ce)
				assert.Equal(t, x509.Expired, ce.Reason)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, requests := tc.server(t)
			o := testOptions()
			if tc.roots != nil {
				o.TLSConfig = &tls.Config{RootCAs: tc.roots}
			}
			d, err := runStopped(t, url, o)
			var tlsErr *TLSError
			require.ErrorAs(t, err, &tlsErr)
			assert.False(t, tlsErr.Remote)
			assert.Contains(t, err.Error(), "not retried by default")
			switch want := tc.wantErr.(type) {
			case *x509.UnknownAuthorityError:
				assert.ErrorAs(t, err, want)
			case *x509.HostnameError:
				assert.ErrorAs(t, err, want)
			case *x509.CertificateInvalidError:
				assert.ErrorAs(t, err, want)
			}
			if tc.check != nil {
				tc.check(t, err)
			}
			assert.True(t, d.Suggested.IsStop(), "certificate errors stop by default")
			assert.Equal(t, 1, d.Attempt)
			assert.False(t, d.Connected)
			assert.Zero(t, requests(), "no handshake request went out")
		})
	}
}

// mtlsServer is a wstest echo server that requires a client certificate
// signed by its client CA (Options.ClientCert), and its files: its CA, the
// client certificate and key.
func mtlsServer(t *testing.T) (srv *wstest.Server, caFile, certFile, keyFile string) {
	t.Helper()
	srv = wstest.Start(t, &wstest.Options{ClientCert: true, Echo: true})
	caFile, certFile, keyFile, err := srv.CertFiles(t.TempDir())
	require.NoError(t, err)
	return srv, caFile, certFile, keyFile
}

// acceptedClientCert checks that srv's last handshake request came with
// want, the client certificate, over TLS version, and returns its common name.
func acceptedClientCert(t *testing.T, srv *wstest.Server, want tls.Certificate, version uint16) string {
	t.Helper()
	st := lastRequest(t, srv).TLS
	require.NotNil(t, st)
	require.NotEmpty(t, st.PeerCertificates, "no client certificate")
	assert.True(t, st.PeerCertificates[0].Equal(want.Leaf), "the client certificate")
	assert.Equal(t, tls.VersionName(version), tls.VersionName(st.Version))
	return st.PeerCertificates[0].Subject.CommonName
}

func TestTLSMutual(t *testing.T) {
	intruder := newTestCA(t, "intruder CA") // a CA no wstest server trusts
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			// The client caps the version: wstest's server offers 1.2 and 1.3.
			capped := func(cfg *tls.Config) *tls.Config {
				if cfg == nil {
					cfg = &tls.Config{}
				}
				cfg.MaxVersion = version
				return cfg
			}
			t.Run("Options.TLSFiles", func(t *testing.T) {
				srv, caFile, certFile, keyFile := mtlsServer(t)
				rec := newRecorder()
				o := testOptions()
				o.TLSFiles = &TLSFiles{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}
				if version != tls.VersionTLS13 { // 1.3 with TLSFiles alone
					o.TLSConfig = capped(nil)
				}
				c := mustNew(t, srv.URL(), rec, o)
				startClient(t, c)
				rec.next(t, "connect")
				assert.Equal(t, "wstest client", acceptedClientCert(t, srv, srv.ClientCertificate(), version))
				echoThrough(t, c, rec, TextFrame("mutual"))
			})
			t.Run("TLSFiles.Config", func(t *testing.T) {
				srv, caFile, certFile, keyFile := mtlsServer(t)
				base := capped(&tls.Config{ServerName: "127.0.0.1"})
				cfg, err := TLSFiles{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}.Config(base)
				require.NoError(t, err)
				assert.Nil(t, base.RootCAs, "base is not modified")
				assert.Empty(t, base.Certificates)
				rec := newRecorder()
				o := testOptions()
				o.TLSConfig = cfg
				c := mustNew(t, srv.URL(), rec, o)
				startClient(t, c)
				rec.next(t, "connect")
				assert.Equal(t, "wstest client", acceptedClientCert(t, srv, srv.ClientCertificate(), version))
			})
			t.Run("no client certificate", func(t *testing.T) {
				srv, _, _, _ := mtlsServer(t)
				o := testOptions()
				o.TLSConfig = capped(&tls.Config{RootCAs: srv.CertPool()})
				d, err := runStopped(t, srv.URL(), o)
				var tlsErr *TLSError
				require.ErrorAs(t, err, &tlsErr, "got %v", err)
				assert.True(t, tlsErr.Remote)
				assert.Contains(t, err.Error(), "refused this client's certificate")
				assert.True(t, d.Suggested.IsStop())
			})
			t.Run("TLSConfig certificate of an unknown CA", func(t *testing.T) {
				// crypto/tls sends no certificate that the server's list of
				// acceptable CAs does not name.
				srv, _, _, _ := mtlsServer(t)
				o := testOptions()
				o.TLSConfig = capped(&tls.Config{RootCAs: srv.CertPool(),
					Certificates: []tls.Certificate{intruder.MustIssue(t, testcerts.Spec{CommonName: "intruder", Client: true}).TLS}})
				d, err := runStopped(t, srv.URL(), o)
				var tlsErr *TLSError
				require.ErrorAs(t, err, &tlsErr, "got %v", err)
				assert.True(t, tlsErr.Remote)
				assert.True(t, d.Suggested.IsStop())
			})
			t.Run("TLSFiles certificate of an unknown CA", func(t *testing.T) {
				// TLSFiles sends its certificate anyway: the server's alert
				// then says what is wrong with it.
				srv, caFile, _, _ := mtlsServer(t)
				cert := intruder.MustIssue(t, testcerts.Spec{CommonName: "intruder", Client: true})
				sub := t.TempDir()
				o := testOptions()
				o.TLSConfig = capped(nil)
				o.TLSFiles = &TLSFiles{CAFile: caFile,
					CertFile: writePEMFile(t, sub, "c.pem", cert.PEM), KeyFile: writePEMFile(t, sub, "k.pem", cert.PKCS8KeyPEM)}
				d, err := runStopped(t, srv.URL(), o)
				var tlsErr *TLSError
				require.ErrorAs(t, err, &tlsErr, "got %v", err)
				assert.True(t, tlsErr.Remote)
				assert.Contains(t, err.Error(), tls.AlertError(48).Error(), "unknown_ca")
				assert.True(t, d.Suggested.IsStop())
			})
		})
	}
}

// TestTLSFilesReloadedEveryAttempt: the server goes away (close 1012) and
// comes back with new certificates, its own signed by a new CA and a new
// client CA: the CA and client certificate files, rotated on disk meanwhile,
// are read again for the next attempt. The server before and the one after
// are two wstest servers (each with its own certificates) behind the same URL:
// the client's dialer reaches the first, then the second.
func TestTLSFilesReloadedEveryAttempt(t *testing.T) {
	before := wstest.Start(t, &wstest.Options{ClientCert: true})
	after := wstest.Start(t, &wstest.Options{ClientCert: true, Echo: true})
	pemFiles := func(srv *wstest.Server) map[string][]byte {
		caFile, certFile, keyFile, err := srv.CertFiles(t.TempDir())
		require.NoError(t, err)
		out := map[string][]byte{}
		for name, f := range map[string]string{"ca.pem": caFile, "client.pem": certFile, "client.key": keyFile} {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			out[name] = data
		}
		return out
	}
	dir := t.TempDir()
	// write replaces the files atomically, as a rotation should.
	write := func(files map[string][]byte) error {
		for name, data := range files {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path+".new", data, 0o600); err != nil {
				return err
			}
			if err := os.Rename(path+".new", path); err != nil {
				return err
			}
		}
		return nil
	}
	filesBefore, filesAfter := pemFiles(before), pemFiles(after)
	require.NoError(t, write(filesBefore))
	files := &TLSFiles{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "client.pem"), KeyFile: filepath.Join(dir, "client.key")}

	rotated := make(chan error, 10)
	rec := newRecorder()
	rec.decide = func(d Disconnect) Decision {
		rotated <- write(filesAfter) // rotated on disk between two attempts
		return Decision{}
	}
	var dials atomic.Int32
	o := testOptions()
	o.TLSFiles = files
	o.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) > 1 {
			addr = after.Addr() // the server came back with its new certificates
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	c := mustNew(t, before.URL(), rec, o)
	files.CAFile = "/nonexistent" // New took a copy
	startClient(t, c)
	rec.next(t, "connect")
	assert.Equal(t, "wstest client", acceptedClientCert(t, before, before.ClientCertificate(), tls.VersionTLS13), "the certificate before the rotation")
	require.NoError(t, nextConn(t, before).Close(CloseServiceRestart, "rotate")) // go away, come back with the new certificate
	d := rec.next(t, "disconnect").disc
	assert.Equal(t, CloseServiceRestart, CloseStatus(d.Err))
	require.NoError(t, <-rotated)
	ev := rec.next(t, "connect")
	assert.Equal(t, uint64(2), ev.gen, "the rotated files work at the very next attempt")
	assert.Equal(t, "wstest client", acceptedClientCert(t, after, after.ClientCertificate(), tls.VersionTLS13), "the certificate after the rotation")
	echoThrough(t, c, rec, TextFrame("rotated"))
}

func TestTLSFilesErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := writePEMFile(t, dir, "garbage.pem", []byte("not a certificate\n"))
	badBlock := writePEMFile(t, dir, "bad.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}))

	t.Run("New", func(t *testing.T) {
		for _, tc := range []struct {
			files TLSFiles
			want  string
		}{
			{TLSFiles{}, "names no file"},
			{TLSFiles{CertFile: "c.pem"}, "both CertFile and KeyFile"},
			{TLSFiles{KeyFile: "k.pem"}, "both CertFile and KeyFile"},
		} {
			_, err := New("wss://h/", BaseHandler{}, &Options{TLSFiles: &tc.files})
			assert.ErrorContains(t, err, tc.want)
		}
	})
	t.Run("attempts fail and are retried", func(t *testing.T) {
		srv := wstest.Start(t, &wstest.Options{TLS: true})
		for _, tc := range []struct {
			file, want string
		}{
			{filepath.Join(dir, "missing.pem"), "no such file"},
			{garbage, "holds no PEM CERTIFICATE block"},
			{badBlock, "certificate 1"},
		} {
			rec := newRecorder()
			o := testOptions()
			o.TLSFiles = &TLSFiles{CAFile: tc.file}
			c := mustNew(t, srv.URL(), rec, o)
			startClient(t, c)
			for i := 1; i <= 2; i++ {
				d := rec.next(t, "disconnect").disc
				assert.ErrorContains(t, d.Err, tc.want)
				assert.ErrorContains(t, d.Err, tc.file)
				assert.False(t, d.Suggested.IsStop(), "a rotation in progress heals")
			}
			require.NoError(t, c.Close(ctxTimeout(t, 5*time.Second), CloseNormal, ""))
		}
		assert.Zero(t, srv.Stats().Requests)
	})
	t.Run("not read for ws", func(t *testing.T) {
		srv := wstest.Start(t, nil)
		rec := newRecorder()
		o := testOptions()
		o.TLSFiles = &TLSFiles{CAFile: garbage}
		c := mustNew(t, srv.URL(), rec, o)
		startClient(t, c)
		rec.next(t, "connect")
	})
}

func TestLoadCertPool(t *testing.T) {
	a, b := newTestCA(t, "A"), newTestCA(t, "B")
	dir := t.TempDir()
	bundle := writePEMFile(t, dir, "bundle.pem", append(append([]byte("comment\n"), a.PEM...), b.PEM...))
	pool, err := LoadCertPool(bundle)
	require.NoError(t, err)
	for _, ca := range []*testCA{a, b} {
		block, _ := pem.Decode(ca.MustIssue(t, testcerts.Spec{CommonName: "x", Hosts: []string{"x.example"}}).PEM)
		cert, err := x509.ParseCertificate(block.Bytes)
		require.NoError(t, err)
		_, err = cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "x.example"})
		assert.NoError(t, err, "every certificate of the bundle is trusted")
	}
	_, err = LoadCertPool(filepath.Join(dir, "none.pem"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// captureHandler is a slog.Handler that keeps every record, with the
// attributes of its loggers (With) added to each.
type captureHandler struct {
	mu    *sync.Mutex
	recs  *[]slog.Record
	attrs []slog.Attr
}

func newCaptureHandler() *captureHandler {
	return &captureHandler{mu: &sync.Mutex{}, recs: &[]slog.Record{}}
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	r = r.Clone()
	r.AddAttrs(h.attrs...)
	*h.recs = append(*h.recs, r)
	return nil
}
func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}
func (h *captureHandler) WithGroup(string) slog.Handler { return h }

// find returns the records at level whose message holds substr.
func (h *captureHandler) find(level slog.Level, substr string) []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []slog.Record
	for _, r := range *h.recs {
		if r.Level == level && strings.Contains(r.Message, substr) {
			out = append(out, r)
		}
	}
	return out
}

func TestInsecureSkipVerifyWarnsAtEveryConnect(t *testing.T) {
	// A certificate of a CA the client does not know (it has no RootCAs).
	srv := wstest.Start(t, &wstest.Options{TLS: true})
	logs := newCaptureHandler()
	rec := newRecorder()
	o := testOptions()
	o.InsecureSkipVerifyTLS = true
	o.Logger = slog.New(logs)
	c := mustNew(t, srv.URL(), rec, o)
	startClient(t, c)
	rec.next(t, "connect")
	nextConn(t, srv).Drop() // drop the first connection: the client connects again
	rec.next(t, "disconnect")
	rec.next(t, "connect")
	warnings := logs.find(slog.LevelWarn, "WITHOUT verifying")
	require.Len(t, warnings, 2, "one warning per connect")
	var url string
	warnings[1].Attrs(func(a slog.Attr) bool {
		if a.Key == "url" {
			url = a.Value.String()
		}
		return true
	})
	assert.Equal(t, srv.URL(), url)
}

func TestInsecureSkipVerifyNeedsTheExplicitOption(t *testing.T) {
	_, err := New("wss://h/", BaseHandler{}, &Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	assert.ErrorContains(t, err, "InsecureSkipVerifyTLS")
	_, err = New("wss://h/", BaseHandler{}, &Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}, InsecureSkipVerifyTLS: true})
	assert.NoError(t, err)
}

// TestTLSCertDropRetriedThenStops: a server that asked for a client
// certificate and then hung up before answering may have refused the
// certificate, or may be restarting. Such a drop is retried; the third in a
// row stops, with an error that says what happened.
func TestTLSCertDropRetriedThenStops(t *testing.T) {
	hangUp := wstest.Response{Raw: func(*http.Request, io.Writer) {}} // no answer: close_notify, FIN
	t.Run("drops that stop", func(t *testing.T) {
		srv := wstest.Start(t, &wstest.Options{ClientCert: true, Check: func(*http.Request) *wstest.Response { return &hangUp }})
		o := testOptions()
		o.TLSConfig = srv.ClientTLSConfig()
		rec := newRecorder()
		c := mustNew(t, srv.URL(), rec, o)
		err := c.Run(ctxTimeout(t, 5*time.Second))
		require.ErrorIs(t, err, ErrCertDropped)
		var te *TLSError
		require.ErrorAs(t, err, &te)
		assert.True(t, te.Remote)
		assert.Contains(t, err.Error(), "the server asked for a client certificate and closed the connection without a TLS alert")
		assert.Contains(t, err.Error(), "perhaps a refused client certificate")
		for attempt := 1; attempt <= 3; attempt++ {
			d := rec.next(t, "disconnect").disc
			assert.Equal(t, attempt, d.Attempt)
			assert.ErrorIs(t, d.Err, ErrCertDropped)
			assert.Equal(t, attempt == 3, d.Suggested.IsStop(), "attempt %d", attempt)
		}
		assert.Equal(t, 3, srv.Stats().Requests, "each attempt sent its request")
	})
	t.Run("a drop between connections that open", func(t *testing.T) {
		srv := wstest.Start(t, &wstest.Options{ClientCert: true})
		srv.Enqueue(hangUp, hangUp, wstest.Response{}, hangUp, hangUp, wstest.Response{})
		o := testOptions()
		o.TLSConfig = srv.ClientTLSConfig()
		rec := newRecorder()
		c := mustNew(t, srv.URL(), rec, o)
		startClient(t, c)
		for round := range 2 {
			for range 2 {
				d := rec.next(t, "disconnect").disc
				assert.ErrorIs(t, d.Err, ErrCertDropped)
				assert.False(t, d.Suggested.IsStop(), "round %d: retried", round)
			}
			rec.next(t, "connect")
			if round == 0 {
				nextConn(t, srv).Drop() // the open connection is lost: reconnect
				assert.NotErrorIs(t, rec.next(t, "disconnect").disc.Err, ErrCertDropped)
			}
		}
	})
}
