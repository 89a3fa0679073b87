package wstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
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

type issued struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	tlsCert tls.Certificate
	certPEM []byte
	keyPEM  []byte
}

// issue makes a certificate from tmpl, signed by parent (self-signed when nil).
func issue(tmpl *x509.Certificate, parent *issued) (*issued, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(7 * 24 * time.Hour)
	signer, signerCert := key, tmpl
	if parent != nil {
		signer, signerCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &issued{
		cert:    cert,
		key:     key,
		tlsCert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert},
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func caTemplate(name string) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: name},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
}

// newPKI generates the certificates of a wss server (and of its clients when
// clientCert is set).
func newPKI(clientCert bool) (*pki, error) {
	ca, err := issue(caTemplate("wstest CA"), nil)
	if err != nil {
		return nil, err
	}
	srv, err := issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "wstest server"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca)
	if err != nil {
		return nil, err
	}
	p := &pki{pool: x509.NewCertPool(), caPEM: ca.certPEM}
	p.pool.AddCert(ca.cert)
	p.server = &tls.Config{
		Certificates: []tls.Certificate{srv.tlsCert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}
	p.client = &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12}
	if !clientCert {
		return p, nil
	}
	cca, err := issue(caTemplate("wstest client CA"), nil)
	if err != nil {
		return nil, err
	}
	cl, err := issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "wstest client"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, cca)
	if err != nil {
		return nil, err
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(cca.cert)
	p.server.ClientAuth = tls.RequireAndVerifyClientCert
	p.server.ClientCAs = clientCAs
	p.clientCert, p.certPEM, p.keyPEM = cl.tlsCert, cl.certPEM, cl.keyPEM
	p.client.Certificates = []tls.Certificate{cl.tlsCert}
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
