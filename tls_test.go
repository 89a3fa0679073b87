package wsclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testCA is a certificate authority made in the test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
	pool *x509.CertPool
}

func randomSerial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	require.NoError(t, err)
	return n
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// certSpec describes a certificate to issue.
type certSpec struct {
	cn       string
	hosts    []string  // DNS names and IP addresses
	notAfter time.Time // zero: a day from now
	client   bool      // for client authentication rather than a server
}

// issue signs l and returns the certificate and its key, PEM-encoded.
func (ca *testCA) issue(t testing.TB, l certSpec) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(t),
		Subject:      pkix.Name{CommonName: l.cn},
		NotBefore:    time.Now().Add(-2 * time.Hour),
		NotAfter:     l.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	}
	if l.client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, h := range l.hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

func (ca *testCA) pair(t testing.TB, l certSpec) tls.Certificate {
	t.Helper()
	certPEM, keyPEM := ca.issue(t, l)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	return pair
}

// serverCert is a server certificate for hosts.
func (ca *testCA) serverCert(t testing.TB, hosts ...string) tls.Certificate {
	return ca.pair(t, certSpec{cn: hosts[0], hosts: hosts})
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
	ca := newTestCA(t, "test CA")
	srv := newTestServer(t, serverConfig{tls: &tls.Config{
		Certificates: []tls.Certificate{ca.serverCert(t, "localhost", "127.0.0.1")},
		NextProtos:   []string{"h2", "http/1.1"},
	}})
	_, port, _ := net.SplitHostPort(srv.addr())
	for _, tc := range []struct {
		host, sni string
	}{
		{"127.0.0.1", ""}, // an IP address: verified against the IP SANs; no SNI is sent for it
		{"localhost", "localhost"},
	} {
		t.Run(tc.host, func(t *testing.T) {
			mine := &tls.Config{RootCAs: ca.pool, NextProtos: []string{"h2", "http/1.1"}}
			logs := newCaptureHandler()
			o := testOptions()
			o.TLSConfig = mine
			o.Logger = slog.New(logs)
			rec := newRecorder()
			c := mustNew(t, "wss://"+net.JoinHostPort(tc.host, port)+"/", rec, o)
			mine.RootCAs = nil // New took a copy: a later change does not reach the client
			startClient(t, c)
			rec.next(t, "connect")
			echoThrough(t, c, rec, TextFrame("verified"))

			req := srv.request(t)
			require.NotNil(t, req.TLS)
			assert.Equal(t, tc.sni, req.TLS.ServerName)
			assert.GreaterOrEqual(t, req.TLS.Version, uint16(tls.VersionTLS12))
			assert.NotEqual(t, "h2", req.TLS.NegotiatedProtocol, "ALPN offers http/1.1 only: the upgrade is HTTP/1.1")

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
	ca := newTestCA(t, "old CA")
	srv := newTestServer(t, serverConfig{tls: &tls.Config{
		Certificates: []tls.Certificate{ca.serverCert(t, "127.0.0.1")},
		MinVersion:   tls.VersionTLS10,
		MaxVersion:   tls.VersionTLS11,
	}})
	o := testOptions()
	o.TLSConfig = &tls.Config{RootCAs: ca.pool}
	rec := newRecorder()
	rec.decide = func(Disconnect) Decision { return Stop() }
	c := mustNew(t, srv.wsURL(), rec, o)
	err := c.Run(ctxTimeout(t, 5*time.Second))
	assert.ErrorContains(t, err, "protocol version")
	assert.Zero(t, srv.conns.Load(), "no handshake request went out")
}

func TestTLSCertificateErrorsStop(t *testing.T) {
	ca := newTestCA(t, "good CA")
	other := newTestCA(t, "other CA")
	for _, tc := range []struct {
		name    string
		cert    tls.Certificate
		roots   *x509.CertPool // nil: the system roots
		wantErr any
		check   func(t *testing.T, err error)
	}{
		{name: "unknown CA, system roots", cert: ca.serverCert(t, "127.0.0.1"), wantErr: &x509.UnknownAuthorityError{}},
		{name: "unknown CA, other pool", cert: ca.serverCert(t, "127.0.0.1"), roots: other.pool, wantErr: &x509.UnknownAuthorityError{}},
		{name: "wrong host name", cert: ca.serverCert(t, "other.example", "10.9.8.7"), roots: ca.pool, wantErr: &x509.HostnameError{}},
		{
			name:    "expired",
			cert:    ca.pair(t, certSpec{cn: "old", hosts: []string{"127.0.0.1"}, notAfter: time.Now().Add(-time.Hour)}),
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
			srv := newTestServer(t, serverConfig{tls: &tls.Config{Certificates: []tls.Certificate{tc.cert}}})
			o := testOptions()
			if tc.roots != nil {
				o.TLSConfig = &tls.Config{RootCAs: tc.roots}
			}
			d, err := runStopped(t, srv.wsURL(), o)
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
			assert.Zero(t, srv.conns.Load(), "no handshake request went out")
		})
	}
}

// mtlsServer requires a client certificate signed by clientCA and reports the
// common name of each one it accepted.
func mtlsServer(t *testing.T, serverCA, clientCA *testCA, maxVersion uint16) (*testServer, chan string) {
	t.Helper()
	names := make(chan string, 10)
	srv := newTestServer(t, serverConfig{
		tls: &tls.Config{
			Certificates: []tls.Certificate{serverCA.serverCert(t, "127.0.0.1")},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    clientCA.pool,
			MaxVersion:   maxVersion,
		},
		before: func(w http.ResponseWriter, r *http.Request, n int) bool {
			names <- r.TLS.PeerCertificates[0].Subject.CommonName
			return true
		},
	})
	return srv, names
}

func TestTLSMutual(t *testing.T) {
	serverCA, clientCA := newTestCA(t, "server CA"), newTestCA(t, "client CA")
	dir := t.TempDir()
	caFile := writePEMFile(t, dir, "ca.pem", serverCA.pem)
	certPEM, keyPEM := clientCA.issue(t, certSpec{cn: "client-1", client: true})
	certFile, keyFile := writePEMFile(t, dir, "client.pem", certPEM), writePEMFile(t, dir, "client.key", keyPEM)

	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			t.Run("Options.TLSFiles", func(t *testing.T) {
				srv, names := mtlsServer(t, serverCA, clientCA, version)
				rec := newRecorder()
				o := testOptions()
				o.TLSFiles = &TLSFiles{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}
				c := mustNew(t, srv.wsURL(), rec, o)
				startClient(t, c)
				rec.next(t, "connect")
				assert.Equal(t, "client-1", <-names)
				echoThrough(t, c, rec, TextFrame("mutual"))
			})
			t.Run("TLSFiles.Config", func(t *testing.T) {
				srv, names := mtlsServer(t, serverCA, clientCA, version)
				base := &tls.Config{ServerName: "127.0.0.1"}
				cfg, err := TLSFiles{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}.Config(base)
				require.NoError(t, err)
				assert.Nil(t, base.RootCAs, "base is not modified")
				assert.Empty(t, base.Certificates)
				rec := newRecorder()
				o := testOptions()
				o.TLSConfig = cfg
				c := mustNew(t, srv.wsURL(), rec, o)
				startClient(t, c)
				rec.next(t, "connect")
				assert.Equal(t, "client-1", <-names)
			})
			t.Run("no client certificate", func(t *testing.T) {
				srv, _ := mtlsServer(t, serverCA, clientCA, version)
				o := testOptions()
				o.TLSConfig = &tls.Config{RootCAs: serverCA.pool}
				d, err := runStopped(t, srv.wsURL(), o)
				var tlsErr *TLSError
				require.ErrorAs(t, err, &tlsErr, "got %v", err)
				assert.True(t, tlsErr.Remote)
				assert.Contains(t, err.Error(), "refused this client's certificate")
				assert.True(t, d.Suggested.IsStop())
			})
			t.Run("TLSConfig certificate of an unknown CA", func(t *testing.T) {
				// crypto/tls sends no certificate that the server's list of
				// acceptable CAs does not name.
				srv, _ := mtlsServer(t, serverCA, clientCA, version)
				o := testOptions()
				o.TLSConfig = &tls.Config{RootCAs: serverCA.pool,
					Certificates: []tls.Certificate{serverCA.pair(t, certSpec{cn: "intruder", client: true})}}
				d, err := runStopped(t, srv.wsURL(), o)
				var tlsErr *TLSError
				require.ErrorAs(t, err, &tlsErr, "got %v", err)
				assert.True(t, tlsErr.Remote)
				assert.True(t, d.Suggested.IsStop())
			})
			t.Run("TLSFiles certificate of an unknown CA", func(t *testing.T) {
				// TLSFiles sends its certificate anyway: the server's alert
				// then says what is wrong with it.
				srv, _ := mtlsServer(t, serverCA, clientCA, version)
				certPEM, keyPEM := serverCA.issue(t, certSpec{cn: "intruder", client: true})
				sub := t.TempDir()
				o := testOptions()
				o.TLSFiles = &TLSFiles{CAFile: caFile,
					CertFile: writePEMFile(t, sub, "c.pem", certPEM), KeyFile: writePEMFile(t, sub, "k.pem", keyPEM)}
				d, err := runStopped(t, srv.wsURL(), o)
				var tlsErr *TLSError
				require.ErrorAs(t, err, &tlsErr, "got %v", err)
				assert.True(t, tlsErr.Remote)
				assert.Contains(t, err.Error(), tls.AlertError(48).Error(), "unknown_ca")
				assert.True(t, d.Suggested.IsStop())
			})
		})
	}
}

func TestTLSFilesReloadedEveryAttempt(t *testing.T) {
	caA, caB := newTestCA(t, "CA before rotation"), newTestCA(t, "CA after rotation")
	clientCA := newTestCA(t, "client CA")
	certA, certB := caA.serverCert(t, "127.0.0.1"), caB.serverCert(t, "127.0.0.1")
	var handshakes atomic.Int32
	names := make(chan string, 10)
	serverTLS := func(cert tls.Certificate) *tls.Config {
		return &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCA.pool}
	}
	srv := newTestServer(t, serverConfig{
		tls: &tls.Config{
			// The server's own certificate rotates too: from the second
			// handshake on it is signed by caB, which the client trusts only
			// once its CA file was replaced.
			GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
				if handshakes.Add(1) == 1 {
					return serverTLS(certA), nil
				}
				return serverTLS(certB), nil
			},
		},
		before: func(w http.ResponseWriter, r *http.Request, n int) bool {
			names <- r.TLS.PeerCertificates[0].Subject.CommonName
			return true
		},
		serve: func(ws *websocket.Conn, n int) {
			if n == 1 { // go away, come back with the new certificate
				ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(CloseServiceRestart, "rotate"))
				ws.ReadMessage()
				return
			}
			echo(ws)
		},
	})

	dir := t.TempDir()
	write := func(ca *testCA, cn string) {
		certPEM, keyPEM := clientCA.issue(t, certSpec{cn: cn, client: true})
		writePEMFile(t, dir, "ca.pem", ca.pem)
		writePEMFile(t, dir, "client.pem", certPEM)
		writePEMFile(t, dir, "client.key", keyPEM)
	}
	write(caA, "client-before")
	files := &TLSFiles{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "client.pem"), KeyFile: filepath.Join(dir, "client.key")}

	rec := newRecorder()
	rec.decide = func(d Disconnect) Decision {
		write(caB, "client-after") // rotated on disk between two attempts
		return Decision{}
	}
	o := testOptions()
	o.TLSFiles = files
	c := mustNew(t, srv.wsURL(), rec, o)
	files.CAFile = "/nonexistent" // New took a copy
	startClient(t, c)
	rec.next(t, "connect")
	assert.Equal(t, "client-before", <-names)
	d := rec.next(t, "disconnect").disc
	assert.Equal(t, CloseServiceRestart, CloseStatus(d.Err))
	ev := rec.next(t, "connect")
	assert.Equal(t, uint64(2), ev.gen, "the rotated files work at the very next attempt")
	assert.Equal(t, "client-after", <-names)
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
		ca := newTestCA(t, "CA")
		srv := newTestServer(t, serverConfig{tls: &tls.Config{Certificates: []tls.Certificate{ca.serverCert(t, "127.0.0.1")}}})
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
			c := mustNew(t, srv.wsURL(), rec, o)
			startClient(t, c)
			for i := 1; i <= 2; i++ {
				d := rec.next(t, "disconnect").disc
				assert.ErrorContains(t, d.Err, tc.want)
				assert.ErrorContains(t, d.Err, tc.file)
				assert.False(t, d.Suggested.IsStop(), "a rotation in progress heals")
			}
			require.NoError(t, c.Close(ctxTimeout(t, 5*time.Second), CloseNormal, ""))
		}
		assert.Zero(t, srv.conns.Load())
	})
	t.Run("not read for ws", func(t *testing.T) {
		srv := newTestServer(t, serverConfig{})
		rec := newRecorder()
		o := testOptions()
		o.TLSFiles = &TLSFiles{CAFile: garbage}
		c := mustNew(t, srv.wsURL(), rec, o)
		startClient(t, c)
		rec.next(t, "connect")
	})
}

func TestLoadCertPool(t *testing.T) {
	a, b := newTestCA(t, "A"), newTestCA(t, "B")
	dir := t.TempDir()
	bundle := writePEMFile(t, dir, "bundle.pem", append(append([]byte("comment\n"), a.pem...), b.pem...))
	pool, err := LoadCertPool(bundle)
	require.NoError(t, err)
	for _, ca := range []*testCA{a, b} {
		certPEM, _ := ca.issue(t, certSpec{cn: "x", hosts: []string{"x.example"}})
		block, _ := pem.Decode(certPEM)
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
	ca := newTestCA(t, "nobody trusts me")
	srv := newTestServer(t, serverConfig{
		tls: &tls.Config{Certificates: []tls.Certificate{
			ca.pair(t, certSpec{cn: "wrong", hosts: []string{"wrong.example"}, notAfter: time.Now().Add(-time.Hour)}),
		}},
		serve: func(ws *websocket.Conn, n int) {
			if n == 1 {
				return // drop the first connection: the client connects again
			}
			echo(ws)
		},
	})
	logs := newCaptureHandler()
	rec := newRecorder()
	o := testOptions()
	o.InsecureSkipVerifyTLS = true
	o.Logger = slog.New(logs)
	c := mustNew(t, srv.wsURL(), rec, o)
	startClient(t, c)
	rec.next(t, "connect")
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
	assert.Equal(t, srv.wsURL(), url)
}

func TestInsecureSkipVerifyNeedsTheExplicitOption(t *testing.T) {
	_, err := New("wss://h/", BaseHandler{}, &Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	assert.ErrorContains(t, err, "InsecureSkipVerifyTLS")
	_, err = New("wss://h/", BaseHandler{}, &Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}, InsecureSkipVerifyTLS: true})
	assert.NoError(t, err)
}
