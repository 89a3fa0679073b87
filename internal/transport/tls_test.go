package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTLSVerification(t *testing.T) {
	t.Parallel()
	ca, other := newDTCA(t, "good CA"), newDTCA(t, "other CA")
	for _, tc := range []struct {
		name  string
		cert  tls.Certificate
		roots *x509.CertPool
		check func(t *testing.T, err error)
	}{
		{"unknown CA", ca.issue(t, "s", false, "127.0.0.1"), other.pool, func(t *testing.T, err error) {
			var e x509.UnknownAuthorityError
			assert.ErrorAs(t, err, &e)
		}},
		{"wrong host", ca.issue(t, "s", false, "other.example"), ca.pool, func(t *testing.T, err error) {
			var e x509.HostnameError
			assert.ErrorAs(t, err, &e)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newWSServer(t, wsServerOpts{tls: &tls.Config{Certificates: []tls.Certificate{tc.cert}}})
			_, err := dialT(t, &Config{URL: srv.url("wss", "/"), TLS: &tls.Config{RootCAs: tc.roots}})
			var te *TLSError
			require.ErrorAs(t, err, &te)
			assert.False(t, te.Remote)
			assert.Contains(t, err.Error(), "wsclient: TLS certificate verification failed")
			tc.check(t, err)
		})
	}
	t.Run("valid, config not modified", func(t *testing.T) {
		srv := newWSServer(t, wsServerOpts{tls: &tls.Config{Certificates: []tls.Certificate{ca.issue(t, "s", false, "127.0.0.1")}}})
		cfg := &tls.Config{RootCAs: ca.pool}
		// No ServerName and no InsecureSkipVerify would fail in crypto/tls:
		// it comes from the URL.
		c, err := dialT(t, &Config{URL: srv.url("wss", "/"), TLS: cfg})
		require.NoError(t, err)
		assert.True(t, c.Response().TLS.HandshakeComplete)
		assert.Nil(t, cfg.GetClientCertificate)
		assert.Empty(t, cfg.ServerName)
	})
}

// dropServer asks for a client certificate (TLS version v) and, when none
// comes, closes the socket without a TLS alert.
func dropServer(t *testing.T, ca *dtCA, v uint16) *rawServer {
	cert := ca.issue(t, "s", false, "127.0.0.1")
	return newRawServer(t, func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequestClientCert,
			MinVersion:   v, MaxVersion: v,
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					c.Close() // no alert can go out
					return errors.New("no certificate")
				}
				return nil
			},
		})
		tc.Handshake()
	})
}

func TestTLSMutual(t *testing.T) {
	t.Parallel()
	serverCA, clientCA := newDTCA(t, "server CA"), newDTCA(t, "client CA")
	clientCert := clientCA.issue(t, "client-1", true)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			srvConf := func() *tls.Config {
				return &tls.Config{
					Certificates: []tls.Certificate{serverCA.issue(t, "s", false, "127.0.0.1")},
					ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: clientCA.pool,
					MinVersion: v, MaxVersion: v,
				}
			}
			t.Run("certificate sent", func(t *testing.T) {
				srv := newWSServer(t, wsServerOpts{tls: srvConf()})
				_, err := dialT(t, &Config{URL: srv.url("wss", "/"), TLS: &tls.Config{RootCAs: serverCA.pool, Certificates: []tls.Certificate{clientCert}}})
				require.NoError(t, err)
				assert.Equal(t, "client-1", srv.request(t).TLS.PeerCertificates[0].Subject.CommonName)
			})
			t.Run("no certificate: alert", func(t *testing.T) {
				srv := newWSServer(t, wsServerOpts{tls: srvConf()})
				_, err := dialT(t, &Config{URL: srv.url("wss", "/"), TLS: &tls.Config{RootCAs: serverCA.pool}})
				var te *TLSError
				require.ErrorAs(t, err, &te, "got %v", err)
				assert.True(t, te.Remote)
				assert.NotErrorIs(t, err, ErrCertDropped)
				assert.Contains(t, err.Error(), "refused this client's certificate")
			})
			t.Run("certificate of another CA is not sent", func(t *testing.T) {
				srv := newWSServer(t, wsServerOpts{tls: srvConf()})
				_, err := dialT(t, &Config{URL: srv.url("wss", "/"), TLS: &tls.Config{RootCAs: serverCA.pool,
					Certificates: []tls.Certificate{serverCA.issue(t, "intruder", true)}}})
				var te *TLSError
				require.ErrorAs(t, err, &te, "got %v", err)
				assert.True(t, te.Remote)
			})
			t.Run("no certificate: dropped without an alert", func(t *testing.T) {
				srv := dropServer(t, serverCA, v)
				_, err := dialT(t, &Config{URL: &url.URL{Scheme: "wss", Host: srv.addr()}, TLS: &tls.Config{RootCAs: serverCA.pool}})
				var te *TLSError
				require.ErrorAs(t, err, &te, "got %v", err)
				assert.True(t, te.Remote)
				assert.ErrorIs(t, err, ErrCertDropped)
				assert.Contains(t, err.Error(), "the server asked for a client certificate and closed the connection without a TLS alert")
			})
		})
	}
	t.Run("a drop without a certificate request is no TLSError", func(t *testing.T) {
		cert := serverCA.issue(t, "s", false, "127.0.0.1")
		srv := newRawServer(t, func(c net.Conn) {
			tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
			tc.Handshake()
		})
		_, err := dialT(t, &Config{URL: &url.URL{Scheme: "wss", Host: srv.addr()}, TLS: &tls.Config{RootCAs: serverCA.pool}})
		require.Error(t, err)
		var te *TLSError
		assert.False(t, errors.As(err, &te), "got %v", err)
		assert.True(t, isDrop(err), "EOF or reset: %v", err)
		assert.Contains(t, err.Error(), "wsclient: dial wss://"+srv.addr()+": ")
	})
}

func TestAsTLSError(t *testing.T) {
	t.Parallel()
	alert := func(a tls.AlertError) error { return &net.OpError{Op: "remote error", Err: a} }
	assert.Nil(t, asTLSError(errors.New("plain"), true, true))
	assert.Nil(t, asTLSError(alert(40), false, false), "handshake_failure alone is not about a certificate")
	assert.Nil(t, asTLSError(alert(70), true, false))
	assert.Nil(t, asTLSError(errors.New("EOF-less"), true, true))
	for _, tc := range []struct {
		err                    error
		certRequested, dropped bool
	}{
		{alert(40), true, false}, {alert(42), false, false}, {alert(48), false, false}, {alert(116), false, false},
		{tls.AlertError(116), false, false},
	} {
		e := asTLSError(tc.err, tc.certRequested, tc.dropped)
		if assert.NotNil(t, e, tc.err) {
			assert.True(t, e.Remote)
		}
	}
	e := asTLSError(x509.UnknownAuthorityError{}, false, false)
	require.NotNil(t, e)
	assert.False(t, e.Remote)

	eof := &net.OpError{Op: "read", Err: errors.New("x")}
	assert.Nil(t, asTLSError(eof, true, true))
	for _, err := range []error{errEOFWrapped(), errResetWrapped()} {
		assert.Nil(t, asTLSError(err, false, true), "no certificate asked for")
		assert.Nil(t, asTLSError(err, true, false), "not before the server's answer")
		e := asTLSError(err, true, true)
		if assert.NotNil(t, e) {
			assert.True(t, e.Remote)
			assert.ErrorIs(t, e, ErrCertDropped)
			assert.ErrorIs(t, e, err)
		}
	}
}
