//go:build linux

package peers

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// NginxPath returns the nginx binary: /usr/sbin/nginx (Debian's, often not
// on a non-root PATH) or else nginx from PATH.
func NginxPath() (string, error) {
	const debian = "/usr/sbin/nginx"
	if fi, err := os.Stat(debian); err == nil && !fi.IsDir() {
		return debian, nil
	}
	return exec.LookPath("nginx")
}

// StartNginxWSS starts nginx as a TLS reverse proxy for the WebSocket server
// at upstreamHostPort ("127.0.0.1:PORT"; a ws:// URL is accepted too) and
// returns it at wss://127.0.0.1:PORT/.
//
// The server certificate, for 127.0.0.1, ::1 and localhost, is signed by a
// throwaway CA made for this call; Peer.CAPool, Peer.CAPEM and
// Peer.TLSConfig let a client verify it. Configuration, keys, logs and
// temporary files live in a t.TempDir.
func StartNginxWSS(t testing.TB, upstreamHostPort string) *Peer {
	t.Helper()
	nginx, err := NginxPath()
	if err != nil {
		unavailable(t, "nginx not found")
		return nil
	}
	upstream, err := normalizeUpstream(upstreamHostPort)
	if err != nil {
		t.Fatalf("peers: StartNginxWSS: %v", err)
	}

	dir := t.TempDir()
	ca, err := writeTestCerts(dir)
	if err != nil {
		t.Fatalf("peers: StartNginxWSS: %v", err)
	}
	errorLog := filepath.Join(dir, "error.log")

	// The free port is found by binding and closing it, so another process
	// may take it before nginx binds it: try again then.
	const attempts = 3
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("peers: StartNginxWSS: %v", err)
		}
		conf := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(conf, []byte(nginxConfig(dir, port, upstream, ca)), 0o600); err != nil {
			t.Fatalf("peers: StartNginxWSS: %v", err)
		}
		_ = os.Remove(errorLog)
		cmd := exec.Command(nginx, "-p", dir+"/", "-c", conf, "-e", errorLog)
		cmd.Dir = dir
		proc, err := startProcess("nginx-wss", cmd, &outputBuffer{}, nil, false)
		if err != nil {
			t.Fatalf("peers: %v", err)
		}
		p := newPeer(t, "nginx-wss", proc)
		p.logFiles = []string{errorLog, filepath.Join(dir, "access.log")}
		p.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		p.URL = "wss://" + p.Addr + "/"
		p.CAPool = ca.pool
		p.CAPEM = ca.caPEM

		err = waitAccepting(p.Addr, proc)
		if err == nil {
			return p
		}
		out := p.Output()
		p.Stop()
		if attempt < attempts && strings.Contains(out, "Address already in use") {
			continue
		}
		t.Fatalf("peers: nginx: %v; output:\n%s", err, out)
	}
}

func normalizeUpstream(s string) (string, error) {
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return "", err
		}
		if u.Scheme != "ws" && u.Scheme != "http" {
			return "", fmt.Errorf("upstream %q: scheme must be ws or http", s)
		}
		s = u.Host
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("upstream %q: %w", s, err)
	}
	if host == "" || port == "" {
		return "", fmt.Errorf("upstream %q: want host:port", s)
	}
	return net.JoinHostPort(host, port), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitAccepting waits until addr accepts TCP connections, failing early if
// the process exits.
func waitAccepting(addr string, proc *process) error {
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-proc.done:
			return fmt.Errorf("%s before accepting connections", proc.exitStatus())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting after %v: %w", addr, startTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nginxConfig returns a single-process, foreground nginx configuration that
// keeps every file it writes inside dir.
func nginxConfig(dir string, port int, upstream string, ca *testCerts) string {
	q := strconv.Quote
	path := func(name string) string { return q(filepath.Join(dir, name)) }
	return fmt.Sprintf(`# Written by internal/peers.StartNginxWSS.
daemon off;
master_process off;
worker_processes 1;
pid %[1]s;
error_log %[2]s notice;

events {
    worker_connections 256;
}

http {
    access_log %[3]s;
    client_body_temp_path %[4]s;
    proxy_temp_path %[5]s;
    fastcgi_temp_path %[6]s;
    uwsgi_temp_path %[7]s;
    scgi_temp_path %[8]s;

    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      close;
    }

    server {
        listen 127.0.0.1:%[9]d ssl;
        server_name localhost 127.0.0.1;

        ssl_certificate %[10]s;
        ssl_certificate_key %[11]s;
        ssl_protocols TLSv1.2 TLSv1.3;

        location / {
            proxy_pass http://%[12]s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            proxy_buffering off;
            proxy_request_buffering off;
        }
    }
}
`,
		path("nginx.pid"), path("error.log"), path("access.log"),
		path("client_body_temp"), path("proxy_temp"), path("fastcgi_temp"),
		path("uwsgi_temp"), path("scgi_temp"),
		port, q(ca.certFile), q(ca.keyFile), upstream)
}

type testCerts struct {
	certFile, keyFile string
	caPEM             []byte
	pool              *x509.CertPool
}

// writeTestCerts makes a throwaway CA and a server certificate for
// 127.0.0.1, ::1 and localhost signed by it, and writes the server
// certificate and key to dir.
func writeTestCerts(dir string) (*testCerts, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caSerial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          caSerial,
		Subject:               pkix.Name{CommonName: "wsclient peers throwaway CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(48 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}

	c := &testCerts{
		certFile: filepath.Join(dir, "server.crt"),
		keyFile:  filepath.Join(dir, "server.key"),
		caPEM:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pool:     x509.NewCertPool(),
	}
	c.pool.AddCert(caCert)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(c.certFile, certPEM, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(c.keyFile, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), c.caPEM, 0o600); err != nil {
		return nil, err
	}
	return c, nil
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	if n.Sign() == 0 {
		return nil, errors.New("zero serial")
	}
	return n, nil
}
