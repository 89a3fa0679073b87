// Package testcerts makes certificate authorities and the certificates they
// sign, for tests: the generated CAs of wstest and the certificates the tests
// of this module make themselves (for a host name, an IP address, a client;
// expired or not yet valid; of a CA nobody trusts). Every key is ECDSA P-256.
//
// It imports nothing of this module, so that every package can use it.
package testcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"
)

// Validity is how long a certificate is valid by default: from an hour ago
// (clocks drift) to Validity from now.
const Validity = 7 * 24 * time.Hour

// CA is a self-signed certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	PEM  []byte // Cert, PEM-encoded (a CERTIFICATE block)
}

// Spec describes a certificate for a CA to issue.
type Spec struct {
	CommonName string
	// Hosts are the DNS names and IP addresses (each parsed by net.ParseIP)
	// the certificate is for.
	Hosts []string
	// Client makes a certificate for client authentication rather than for
	// a server.
	Client bool
	// NotBefore and NotAfter bound its validity. Zero NotBefore is an hour
	// before NotAfter or now, whichever is earlier; zero NotAfter is Validity
	// after NotBefore or now, whichever is later. A NotAfter in the past
	// makes an expired certificate, a NotBefore in the future one not yet
	// valid.
	NotBefore, NotAfter time.Time
}

// Cert is an issued certificate and its key.
type Cert struct {
	TLS         tls.Certificate // with Leaf set
	Key         *ecdsa.PrivateKey
	PEM         []byte // the certificate, a CERTIFICATE block
	KeyPEM      []byte // the key, SEC 1 (an EC PRIVATE KEY block)
	PKCS8KeyPEM []byte // the key, PKCS #8 (a PRIVATE KEY block)
}

// NewCA makes a CA named name.
func NewCA(name string) (*CA, error) {
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: name},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	c, err := create(tmpl, time.Time{}, time.Time{}, nil)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: c.TLS.Leaf, Key: c.Key, PEM: c.PEM}, nil
}

// MustCA is NewCA for a test: it fails t on an error.
func MustCA(t testing.TB, name string) *CA {
	t.Helper()
	ca, err := NewCA(name)
	if err != nil {
		t.Fatalf("testcerts: CA %q: %v", name, err)
	}
	return ca
}

// Pool is a new pool that holds the CA alone.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

// Issue makes and signs the certificate s describes.
func (ca *CA) Issue(s Spec) (*Cert, error) {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: s.CommonName},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if s.Client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, h := range s.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return create(tmpl, s.NotBefore, s.NotAfter, ca)
}

// MustIssue is Issue for a test: it fails t on an error.
func (ca *CA) MustIssue(t testing.TB, s Spec) *Cert {
	t.Helper()
	c, err := ca.Issue(s)
	if err != nil {
		t.Fatalf("testcerts: certificate %q: %v", s.CommonName, err)
	}
	return c
}

// Server is a server certificate for hosts, named after the first.
func (ca *CA) Server(hosts ...string) (*Cert, error) {
	var cn string
	if len(hosts) > 0 {
		cn = hosts[0]
	}
	return ca.Issue(Spec{CommonName: cn, Hosts: hosts})
}

// Client is a client certificate named cn.
func (ca *CA) Client(cn string) (*Cert, error) {
	return ca.Issue(Spec{CommonName: cn, Client: true})
}

// create fills in tmpl's serial number and validity and signs it with a new
// key: by parent, or by the new key itself when parent is nil.
func create(tmpl *x509.Certificate, notBefore, notAfter time.Time, parent *CA) (*Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if notBefore.IsZero() {
		notBefore = now
		if !notAfter.IsZero() && notAfter.Before(now) {
			notBefore = notAfter
		}
		notBefore = notBefore.Add(-time.Hour)
	}
	if notAfter.IsZero() {
		notAfter = now
		if notBefore.After(now) {
			notAfter = notBefore
		}
		notAfter = notAfter.Add(Validity)
	}
	tmpl.NotBefore, tmpl.NotAfter = notBefore, notAfter
	signer, signerCert := key, tmpl
	if parent != nil {
		signer, signerCert = parent.Key, parent.Cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	sec1, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Cert{
		TLS:         tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		Key:         key,
		PEM:         pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:      pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
		PKCS8KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
	}, nil
}
