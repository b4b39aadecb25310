package authorize

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse/gatehouse/pkg/clientcert"
	"github.com/gatehouse/gatehouse/pkg/clientcert/clientcerttest"
	"github.com/gatehouse/gatehouse/pkg/extauthz"
)

func withCert(s string) reqOpt {
	return func(r *authv3.CheckRequest) { r.Attributes.Source.Certificate = s }
}

func TestCheckClientCertificate(t *testing.T) {
	ca := clientcerttest.NewCA(t, "clients")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	valid := ca.Issue(t, clientcerttest.ClientOptions{})
	wrong := clientcerttest.NewCA(t, "other").Issue(t, clientcerttest.ClientOptions{})
	s := newTestService(t, testConfig(t, `services: authorize,databroker
shared_secret: `+testSecret+`
authenticate_service_url: https://authenticate.localhost.pomerium.io
downstream_mtls:
  ca_file: `+caFile+`
routes:
  - from: https://mtls.localhost.pomerium.io
    to: http://up:80
    allow_public_unauthenticated_access: true
    set_request_headers:
      X-Fingerprint: 'sha256=${pomerium.client_cert_fingerprint}'
      X-Static: static
  - from: https://plain-mtls.localhost.pomerium.io
    to: http://up:80
    allow_public_unauthenticated_access: true
`))
	ctx := context.Background()
	check := func(opts ...reqOpt) *authv3.CheckResponse {
		resp, err := s.Check(ctx, newReq("GET", "https://mtls.localhost.pomerium.io/", append(opts, jsonClient())...))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := check(withCert(clientcert.Encode(valid.ChainCerts())))
	if !extauthz.Allowed(resp) {
		t.Fatalf("valid certificate denied: %v", resp)
	}
	h := okHeaders(resp)
	if h["x-fingerprint"] != "sha256="+clientcert.Fingerprint(valid.Cert) || h["x-static"] != "static" {
		t.Errorf("headers %v", h)
	}
	for name, opt := range map[string]reqOpt{"none": withCert(""), "wrong CA": withCert(clientcert.Encode(wrong.ChainCerts())), "garbage": withCert("%ZZ")} {
		resp := check(opt)
		if extauthz.Allowed(resp) || extauthz.DeniedStatus(resp) != StatusInvalidClientCertificate {
			t.Errorf("%s: %v, want 495", name, resp)
		}
	}
}

// TestCheckClientCertificateAllocs: a certificate seen before costs Check
// no allocation (the verification is cached by certificate).
func TestCheckClientCertificateAllocs(t *testing.T) {
	ca := clientcerttest.NewCA(t, "clients")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	valid := ca.Issue(t, clientcerttest.ClientOptions{})
	s := newTestService(t, testConfig(t, `services: authorize,databroker
shared_secret: `+testSecret+`
authenticate_service_url: https://authenticate.localhost.pomerium.io
routes:
  - from: https://mtls.localhost.pomerium.io
    to: http://up:80
    allow_public_unauthenticated_access: true
    tls_downstream_client_ca_file: `+caFile+`
  - from: https://plain.localhost.pomerium.io
    to: http://up:80
    allow_public_unauthenticated_access: true
`))
	ctx := context.Background()
	withCertReq := newReq("GET", "https://mtls.localhost.pomerium.io/", withCert(clientcert.Encode(valid.ChainCerts())))
	plainReq := newReq("GET", "https://plain.localhost.pomerium.io/")
	for _, req := range []*authv3.CheckRequest{withCertReq, plainReq} {
		if resp, err := s.Check(ctx, req); err != nil || !extauthz.Allowed(resp) {
			t.Fatalf("%v %v", resp, err)
		}
	}
	with := testing.AllocsPerRun(100, func() { _, _ = s.Check(ctx, withCertReq) })
	without := testing.AllocsPerRun(100, func() { _, _ = s.Check(ctx, plainReq) })
	if with > without {
		t.Errorf("Check allocates %v times with a known certificate, %v without", with, without)
	}
}
