package wsclient

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
)

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

// tlsConfig is the config of one wss attempt to u (nil for ws): the caller's
// TLSConfig, cloned, with TLSFiles read now; TLS 1.2 at least unless the
// caller set MinVersion; ServerName from the attempt's URL unless the caller
// set it (so an IP address URL is verified against the certificate's IP
// SANs); ALPN limited to http/1.1, since a WebSocket upgrade is HTTP/1.1;
// verification on unless InsecureSkipVerifyTLS. The transport runs the
// handshake with it, the same way on every path (direct or through a proxy).
func (c *Client) tlsConfig(u *url.URL) (*tls.Config, error) {
	if u.Scheme != "wss" {
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
		cfg.ServerName = u.Hostname()
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
	return cfg, nil
}
