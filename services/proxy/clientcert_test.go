package proxy

import (
	"context"
	"crypto/tls"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/pkg/clientcert"
	"github.com/gatehouse/gatehouse/pkg/clientcert/clientcerttest"
)

func TestClientCertificateFromTLSOnly(t *testing.T) {
	c := clientcerttest.NewCA(t, "clients").Issue(t, clientcerttest.ClientOptions{})
	r := httptest.NewRequest("GET", "https://a.example.com/", nil)
	// Headers never carry a certificate gatehouse trusts.
	r.Header.Set("X-Forwarded-Client-Cert", clientcert.Encode(c.ChainCerts()))
	r.Header.Set("X-Client-Cert", clientcert.Encode(c.ChainCerts()))
	r.TLS = nil
	if got := clientCertificate(r); got != "" {
		t.Errorf("certificate from headers: %q", got)
	}
	r.TLS = &tls.ConnectionState{PeerCertificates: c.ChainCerts()}
	want := clientcert.Encode(c.ChainCerts())
	if got := clientCertificate(r); got != want {
		t.Errorf("got %q", got)
	}
	// Once per connection with ConnContext.
	r = r.WithContext(ConnContext(context.Background(), nil))
	if got := clientCertificate(r); got != want {
		t.Errorf("got %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { clientCertificate(r) }); n != 0 {
		t.Errorf("%v allocations per request on a connection", n)
	}
	b := checkPool.Get().(*checkBuf)
	b.fill(&checkInput{r: r, clientCert: want})
	if b.source.Certificate != want {
		t.Error("CheckRequest without the certificate")
	}
	b.release()
	if b.source.Certificate != "" {
		t.Error("pooled buffer keeps the certificate")
	}
}
