package testcerts

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
	"time"
)

func TestServerCertificate(t *testing.T) {
	ca := MustCA(t, "test CA")
	if !ca.Cert.IsCA || ca.Cert.Subject.CommonName != "test CA" {
		t.Fatalf("CA %v, IsCA %v", ca.Cert.Subject, ca.Cert.IsCA)
	}
	c, err := ca.Server("localhost", "127.0.0.1", "::1")
	if err != nil {
		t.Fatal(err)
	}
	if cn := c.TLS.Leaf.Subject.CommonName; cn != "localhost" {
		t.Errorf("common name %q, want the first host", cn)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		_, err := c.TLS.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: host})
		if err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	_, err = c.TLS.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "other.example"})
	var he x509.HostnameError
	if !errors.As(err, &he) {
		t.Errorf("other.example: %v, want a HostnameError", err)
	}
	_, err = c.TLS.Leaf.Verify(x509.VerifyOptions{Roots: MustCA(t, "other CA").Pool(), DNSName: "localhost"})
	var ue x509.UnknownAuthorityError
	if !errors.As(err, &ue) {
		t.Errorf("another CA's pool: %v, want an UnknownAuthorityError", err)
	}
	_, err = c.TLS.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "localhost",
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err == nil {
		t.Error("a server certificate verified for client authentication")
	}
}

func TestClientCertificate(t *testing.T) {
	ca := MustCA(t, "client CA")
	c, err := ca.Client("client-1")
	if err != nil {
		t.Fatal(err)
	}
	if cn := c.TLS.Leaf.Subject.CommonName; cn != "client-1" {
		t.Errorf("common name %q", cn)
	}
	_, err = c.TLS.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		t.Error(err)
	}
}

func TestValidity(t *testing.T) {
	ca := MustCA(t, "CA")
	now := time.Now()
	for _, tc := range []struct {
		name                string
		spec                Spec
		notBefore, notAfter time.Time // roughly
		reason              x509.InvalidReason
		valid               bool
	}{
		{"default", Spec{}, now.Add(-time.Hour), now.Add(Validity), 0, true},
		{"expired", Spec{NotAfter: now.Add(-time.Hour)}, now.Add(-2 * time.Hour), now.Add(-time.Hour), x509.Expired, false},
		{"not yet valid", Spec{NotBefore: now.Add(time.Hour)}, now.Add(time.Hour), now.Add(time.Hour + Validity), x509.Expired, false},
		{"both set", Spec{NotBefore: now.Add(-3 * time.Hour), NotAfter: now.Add(3 * time.Hour)}, now.Add(-3 * time.Hour), now.Add(3 * time.Hour), 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Hosts = []string{"x.example"}
			leaf := ca.MustIssue(t, tc.spec).TLS.Leaf
			if d := leaf.NotBefore.Sub(tc.notBefore); d < -time.Minute || d > time.Minute {
				t.Errorf("NotBefore %v, want about %v", leaf.NotBefore, tc.notBefore)
			}
			if d := leaf.NotAfter.Sub(tc.notAfter); d < -time.Minute || d > time.Minute {
				t.Errorf("NotAfter %v, want about %v", leaf.NotAfter, tc.notAfter)
			}
			_, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "x.example"})
			if tc.valid {
				if err != nil {
					t.Error(err)
				}
				return
			}
			var ce x509.CertificateInvalidError
			if !errors.As(err, &ce) || ce.Reason != tc.reason {
				t.Errorf("%v, want a CertificateInvalidError (%v)", err, tc.reason)
			}
		})
	}
}

func TestPEM(t *testing.T) {
	ca := MustCA(t, "PEM CA")
	block, rest := pem.Decode(ca.PEM)
	if block == nil || block.Type != "CERTIFICATE" || len(rest) != 0 {
		t.Fatalf("CA PEM %q", ca.PEM)
	}
	if cert, err := x509.ParseCertificate(block.Bytes); err != nil || !cert.Equal(ca.Cert) {
		t.Errorf("CA PEM: %v", err)
	}
	c := ca.MustIssue(t, Spec{CommonName: "s", Hosts: []string{"127.0.0.1"}})
	for _, tc := range []struct {
		keyPEM []byte
		typ    string
	}{{c.KeyPEM, "EC PRIVATE KEY"}, {c.PKCS8KeyPEM, "PRIVATE KEY"}} {
		if b, _ := pem.Decode(tc.keyPEM); b == nil || b.Type != tc.typ {
			t.Errorf("key PEM %q, want a %s block", tc.keyPEM, tc.typ)
		}
		pair, err := tls.X509KeyPair(c.PEM, tc.keyPEM)
		if err != nil {
			t.Errorf("%s: %v", tc.typ, err)
			continue
		}
		if !pair.Leaf.Equal(c.TLS.Leaf) {
			t.Errorf("%s: another certificate", tc.typ)
		}
	}
	if c.TLS.PrivateKey != c.Key || len(c.TLS.Certificate) != 1 {
		t.Error("TLS holds another key or chain")
	}
}

func TestSerialsDiffer(t *testing.T) {
	ca := MustCA(t, "CA")
	a, b := ca.MustIssue(t, Spec{}), ca.MustIssue(t, Spec{})
	if a.TLS.Leaf.SerialNumber.Cmp(b.TLS.Leaf.SerialNumber) == 0 {
		t.Error("two certificates with one serial number")
	}
	if a.TLS.Leaf.SerialNumber.Sign() <= 0 {
		t.Error("serial number not positive")
	}
}
