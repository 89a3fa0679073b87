package wsclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
)

// TLSError is a failed certificate verification. The default policy does not
// retry it: a wrong, expired or unknown certificate does not heal by retrying.
type TLSError struct {
	Err error
}

func (e *TLSError) Error() string {
	return "wsclient: TLS certificate verification failed (not retried by default: certificate errors do not heal by retrying): " + e.Err.Error()
}

func (e *TLSError) Unwrap() error { return e.Err }

// asTLSError returns a *TLSError when err is a certificate verification failure.
func asTLSError(err error) *TLSError {
	var (
		verr *tls.CertificateVerificationError
		uerr x509.UnknownAuthorityError
		herr x509.HostnameError
		cerr x509.CertificateInvalidError
	)
	if errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &cerr) {
		return &TLSError{Err: err}
	}
	return nil
}

// tlsConfig is the config of one attempt: the caller's, cloned, TLS 1.2 at least,
// verification on unless InsecureSkipVerifyTLS says otherwise.
func (c *Client) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{}
	if c.opts.TLSConfig != nil {
		cfg = c.opts.TLSConfig.Clone()
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if c.opts.InsecureSkipVerifyTLS {
		cfg.InsecureSkipVerify = true
	}
	return cfg, nil
}
