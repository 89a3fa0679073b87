package wsclient

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
)

// TLSError is a certificate that one side refused during the TLS handshake: the
// server's certificate failed this client's verification (unknown authority,
// wrong host name, expired, ...), or the server refused this client's
// certificate with a TLS alert (missing, expired or unknown client certificate
// for mutual TLS). The default policy does not retry it: a wrong, expired or
// unknown certificate does not heal by retrying. An OnDisconnect that expects a
// rotation on disk (Options.TLSFiles) may return Reconnect to wait for it.
type TLSError struct {
	// Err is the error of crypto/tls: a *tls.CertificateVerificationError (with
	// the x509 error inside) when this client refused the server's certificate,
	// or a *net.OpError holding the server's alert when Remote is true.
	Err error
	// Remote is true when the server refused this client's certificate.
	Remote bool
}

func (e *TLSError) Error() string {
	what := "TLS certificate verification failed"
	if e.Remote {
		what = "TLS: the server refused this client's certificate"
	}
	return "wsclient: " + what + " (not retried by default: certificate errors do not heal by retrying): " + e.Err.Error()
}

func (e *TLSError) Unwrap() error { return e.Err }

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

// asTLSError returns a *TLSError when err is a certificate refused by either
// side. certRequested says whether the server asked for a client certificate
// during the handshake.
func asTLSError(err error, certRequested bool) *TLSError {
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
	return nil
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

// TLSFiles names PEM files for wss. As Options.TLSFiles they are read again at
// every connection attempt, so a certificate or CA bundle replaced on disk
// (rotated) is used from the next attempt on, without a restart; replace files
// atomically (write a new file, then rename it over the old one). A file that
// cannot be read or parsed fails that attempt with an error naming the file,
// and the default policy retries it with backoff (a rotation in progress heals).
//
// TLSFiles.Config builds a *tls.Config once, for callers that want one.
type TLSFiles struct {
	// CAFile holds the CA certificates (PEM, one or more) that verify the
	// server. When set, they replace the system roots.
	CAFile string
	// CertFile holds the client certificate (PEM; the leaf first, then any
	// intermediates) and KeyFile its private key (PEM), for servers that
	// require mutual TLS. Both or neither.
	CertFile, KeyFile string
}

// Config reads the files now and returns a copy of base (nil: an empty config)
// with RootCAs from CAFile, and Certificates and GetClientCertificate from
// CertFile and KeyFile: the certificate is sent whenever the server asks for
// one. Fields whose files are not named are left as base has them. base is
// never modified.
func (f TLSFiles) Config(base *tls.Config) (*tls.Config, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{}
	if base != nil {
		cfg = base.Clone()
	}
	if f.CAFile != "" {
		pool, err := LoadCertPool(f.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if f.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("wsclient: client certificate %s, key %s: %w", f.CertFile, f.KeyFile, err)
		}
		// Sent whenever the server asks for a certificate, even when its list of
		// acceptable CAs does not name the issuer: its refusal then says why.
		cfg.Certificates = []tls.Certificate{pair}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	}
	return cfg, nil
}

func (f TLSFiles) check() error {
	switch {
	case f == (TLSFiles{}):
		return errors.New("wsclient: TLSFiles names no file")
	case (f.CertFile == "") != (f.KeyFile == ""):
		return errors.New("wsclient: TLSFiles needs both CertFile and KeyFile, or neither")
	}
	return nil
}

// LoadCertPool reads a PEM bundle of CA certificates into a new pool. Unlike
// x509.CertPool.AppendCertsFromPEM it fails on a certificate it cannot parse
// and on a file with no certificate at all, so that a broken bundle is found
// at once rather than as "unknown authority" later.
func LoadCertPool(pemFile string) (*x509.CertPool, error) {
	data, err := os.ReadFile(pemFile)
	if err != nil {
		return nil, fmt.Errorf("wsclient: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("wsclient: CA file %s: certificate %d: %w", pemFile, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("wsclient: CA file %s holds no PEM CERTIFICATE block", pemFile)
	}
	return pool, nil
}

// checkTLS validates the TLS options in New and copies TLSFiles, so that the
// caller's value is never kept. Skipping verification takes the explicit
// InsecureSkipVerifyTLS: a TLSConfig with InsecureSkipVerify alone is refused,
// so that a config borrowed from elsewhere cannot turn verification off unseen.
func (o *Options) checkTLS() error {
	var errs []error
	if o.TLSFiles != nil {
		f := *o.TLSFiles
		o.TLSFiles = &f
		if err := f.check(); err != nil {
			errs = append(errs, err)
		}
	}
	if o.TLSConfig != nil && o.TLSConfig.InsecureSkipVerify && !o.InsecureSkipVerifyTLS {
		errs = append(errs, errors.New("TLSConfig.InsecureSkipVerify is set: skipping verification takes Options.InsecureSkipVerifyTLS"))
	}
	return errors.Join(errs...)
}

// tlsConfig is the config of one wss attempt (nil for ws): the caller's
// TLSConfig, cloned, with TLSFiles read now; TLS 1.2 at least unless the
// caller set MinVersion; ServerName from the attempt's URL unless the caller
// set it (so an IP address URL is verified against the certificate's IP
// SANs); ALPN limited to http/1.1, since a WebSocket upgrade is HTTP/1.1;
// verification on unless InsecureSkipVerifyTLS.
func (c *Client) tlsConfig(att *dialAttempt) (*tls.Config, error) {
	if c.url.Scheme != "wss" {
		return nil, nil
	}
	var cfg *tls.Config
	switch {
	case c.opts.TLSFiles != nil:
		var err error
		if cfg, err = c.opts.TLSFiles.Config(c.opts.TLSConfig); err != nil {
			return nil, err
		}
	case c.opts.TLSConfig != nil:
		cfg = c.opts.TLSConfig.Clone()
	default:
		cfg = &tls.Config{}
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if cfg.ServerName == "" {
		cfg.ServerName = c.url.Hostname()
	}
	var alpn []string
	for _, p := range cfg.NextProtos {
		if p == "http/1.1" {
			alpn = []string{p}
		}
	}
	cfg.NextProtos = alpn
	if c.opts.InsecureSkipVerifyTLS {
		cfg.InsecureSkipVerify = true
	}
	// Note whether the server asks for a client certificate, to tell a refused
	// one from other handshake failures; the choice is crypto/tls's own.
	get, certs := cfg.GetClientCertificate, cfg.Certificates
	cfg.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		att.certRequested.Store(true)
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
	return cfg, nil
}
