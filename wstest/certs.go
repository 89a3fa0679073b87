package wstest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"

	"github.com/ff42ae21/wsclient/internal/testcerts"
)

// pki is what a wss Server generated: a CA and the server certificate it
// signed, and with Options.ClientCert a client CA and a client certificate.
type pki struct {
	server     *tls.Config    // the server's side
	client     *tls.Config    // what a client needs: RootCAs, the client certificate
	pool       *x509.CertPool // the server CA
	caPEM      []byte         // the server CA
	clientCert tls.Certificate
	certPEM    []byte // the client certificate
	keyPEM     []byte // its key
}

// newPKI generates the certificates of a wss server (and of its clients when
// clientCert is set).
func newPKI(clientCert bool) (*pki, error) {
	ca, err := testcerts.NewCA("wstest CA")
	if err != nil {
		return nil, err
	}
	srv, err := ca.Issue(testcerts.Spec{CommonName: "wstest server", Hosts: []string{"localhost", "127.0.0.1", "::1"}})
	if err != nil {
		return nil, err
	}
	p := &pki{pool: ca.Pool(), caPEM: ca.PEM}
	p.server = &tls.Config{
		Certificates: []tls.Certificate{srv.TLS},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}
	p.client = &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12}
	if !clientCert {
		return p, nil
	}
	cca, err := testcerts.NewCA("wstest client CA")
	if err != nil {
		return nil, err
	}
	cl, err := cca.Client("wstest client")
	if err != nil {
		return nil, err
	}
	p.server.ClientAuth = tls.RequireAndVerifyClientCert
	p.server.ClientCAs = cca.Pool()
	p.clientCert, p.certPEM, p.keyPEM = cl.TLS, cl.PEM, cl.KeyPEM
	p.client.Certificates = []tls.Certificate{cl.TLS}
	return p, nil
}

// CertFiles writes the server's CA certificate and, with Options.ClientCert,
// the client certificate and its key as PEM files in dir (t.TempDir(), say),
// for clients that read files (wsclient.TLSFiles). certFile and keyFile are
// empty without Options.ClientCert. It fails on a ws server.
func (s *Server) CertFiles(dir string) (caFile, certFile, keyFile string, err error) {
	if s.pki == nil {
		return "", "", "", errors.New("wstest: CertFiles on a ws server (set Options.TLS)")
	}
	caFile = filepath.Join(dir, "wstest-ca.pem")
	if err := os.WriteFile(caFile, s.pki.caPEM, 0o600); err != nil {
		return "", "", "", err
	}
	if s.pki.certPEM == nil {
		return caFile, "", "", nil
	}
	certFile = filepath.Join(dir, "wstest-client.pem")
	keyFile = filepath.Join(dir, "wstest-client-key.pem")
	if err := os.WriteFile(certFile, s.pki.certPEM, 0o600); err != nil {
		return "", "", "", err
	}
	if err := os.WriteFile(keyFile, s.pki.keyPEM, 0o600); err != nil {
		return "", "", "", err
	}
	return caFile, certFile, keyFile, nil
}

// ClientTLSConfig is the *tls.Config a client needs for this wss server: the
// generated CA as RootCAs and, with Options.ClientCert, the client
// certificate. Each call returns a new copy. It is nil for a ws server.
func (s *Server) ClientTLSConfig() *tls.Config {
	if s.pki == nil {
		return nil
	}
	return s.pki.client.Clone()
}

// CertPool holds the CA that signed the server's certificate (nil for ws).
func (s *Server) CertPool() *x509.CertPool {
	if s.pki == nil {
		return nil
	}
	return s.pki.pool.Clone()
}

// ClientCertificate is the client certificate signed by the client CA the
// server trusts (zero without Options.ClientCert).
func (s *Server) ClientCertificate() tls.Certificate {
	if s.pki == nil {
		return tls.Certificate{}
	}
	return s.pki.clientCert
}
