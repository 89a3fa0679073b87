package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync/atomic"
	"syscall"
)

// ErrCertDropped is inside a *TLSError{Remote: true} when the server asked for
// a client certificate and then closed the connection without a TLS alert (some
// servers refuse a missing or unknown certificate so; with TLS 1.3 the client
// learns it only while reading the upgrade response).
var ErrCertDropped = errors.New("the server asked for a client certificate and closed the connection without a TLS alert")

// CertDropsBeforeStop is how many ErrCertDropped in a row the default policy
// takes for a refused certificate: one alone may be a restart or a drop
// that had nothing to do with the certificate.
const CertDropsBeforeStop = 3

// certAlerts are the TLS alerts by which a server refuses the client's certificate.
var certAlerts = []tls.AlertError{
	42,  // bad_certificate
	43,  // unsupported_certificate
	44,  // certificate_revoked
	45,  // certificate_expired
	46,  // certificate_unknown
	48,  // unknown_ca
	116, // certificate_required (TLS 1.3: no client certificate was sent)
}

// alertHandshakeFailure is the alert a TLS 1.2 server (Go's, for one) sends when
// it required a client certificate and got none; it also means other things,
// so it counts as a certificate refusal only when the server asked for one.
const alertHandshakeFailure tls.AlertError = 40

// clientTLSConfig is cfg cloned (nil: an empty config), with ServerName from
// host when unset, and GetClientCertificate wrapped to note in requested that
// the server asked for a certificate. The choice stays crypto/tls's: the
// caller's GetClientCertificate, else the first of Certificates the server's
// request accepts, else none.
func clientTLSConfig(cfg *tls.Config, host string, requested *atomic.Bool) *tls.Config {
	c := &tls.Config{}
	if cfg != nil {
		c = cfg.Clone()
	}
	if c.ServerName == "" {
		c.ServerName = host
	}
	get, certs := c.GetClientCertificate, c.Certificates
	c.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		requested.Store(true)
		if get != nil {
			return get(cri)
		}
		for i := range certs {
			if cri.SupportsCertificate(&certs[i]) == nil {
				return &certs[i], nil
			}
		}
		return &tls.Certificate{}, nil // none fits: send none
	}
	return c
}

// tlsHandshake runs the client's TLS handshake over conn.
func tlsHandshake(ctx context.Context, conn net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// asTLSError returns a *TLSError when err is a certificate refused by either
// side. certRequested says whether the server asked for a client certificate
// during the handshake; dropped whether err is the connection ending before
// the server answered anything (during the TLS handshake, or before the first
// byte of the upgrade response): with a certificate requested, that is the
// server refusing it without an alert.
func asTLSError(err error, certRequested, dropped bool) *TLSError {
	var (
		verr *tls.CertificateVerificationError
		uerr x509.UnknownAuthorityError
		herr x509.HostnameError
		cerr x509.CertificateInvalidError
	)
	if errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &cerr) {
		return &TLSError{Err: err}
	}
	if a, ok := remoteAlert(err); ok && (slices.Contains(certAlerts, a) || (certRequested && a == alertHandshakeFailure)) {
		return &TLSError{Err: err, Remote: true}
	}
	if certRequested && dropped && isDrop(err) {
		return &TLSError{Err: fmt.Errorf("%w: %w", ErrCertDropped, err), Remote: true}
	}
	return nil
}

// isDrop reports whether err is the peer closing or resetting the connection.
func isDrop(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED)
}

// remoteAlert returns the TLS alert the server sent, if err is one. crypto/tls
// reports a received alert as a *net.OpError with Op "remote error" around an
// unexported alert type whose text is that of tls.AlertError. With TLS 1.3 a
// refused client certificate is told after the client's side of the handshake,
// so the alert arrives while the upgrade response is read.
func remoteAlert(err error) (tls.AlertError, bool) {
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return ae, true
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "remote error" || oe.Err == nil {
		return 0, false
	}
	msg := oe.Err.Error()
	for a := range 256 {
		if msg == tls.AlertError(a).Error() {
			return tls.AlertError(a), true
		}
	}
	return 0, false
}
