package devcerts

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

func TestWriteIssuesWildcardTrustedByCA(t *testing.T) {
	dir := t.TempDir()
	f, err := Write(dir, "localhost.pomerium.io", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	caPEM, _ := os.ReadFile(f.CACert)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	for _, host := range []string{"grafana.localhost.pomerium.io", "authenticate.localhost.pomerium.io", "localhost.pomerium.io", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "a.b.localhost.pomerium.io", Roots: pool}); err == nil {
		t.Error("wildcard matched two labels")
	}
	// A second run keeps the CA, so trust given once stays valid.
	f2, err := Write(dir, "localhost.pomerium.io")
	if err != nil {
		t.Fatal(err)
	}
	caPEM2, _ := os.ReadFile(f2.CACert)
	if string(caPEM) != string(caPEM2) {
		t.Error("CA was replaced")
	}
}
