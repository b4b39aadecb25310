package config

import (
	"crypto/tls"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/pkg/clientcert"
	"github.com/gatehouse/gatehouse/pkg/clientcert/clientcerttest"
	"github.com/gatehouse/gatehouse/pkg/policy"
)

// mtlsBase runs authorize (no listener of its own) so that no server
// certificate is needed.
const mtlsBase = `services: authorize,databroker
shared_secret: ` + secret + `
authenticate_service_url: https://auth.example.com
`

const mtlsRoute = `routes:
  - from: https://a.example.com
    to: http://up.example.com
    allow_public_unauthenticated_access: true
`

func TestDownstreamMTLS(t *testing.T) {
	ca := clientcerttest.NewCA(t, "clients")
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	valid := ca.Issue(t, clientcerttest.ClientOptions{Emails: []string{"a@example.com"}})

	t.Run("DefaultDeny", func(t *testing.T) {
		cfg, err := Parse([]byte(mtlsBase+"downstream_mtls:\n  ca_file: "+caFile+"\n"+mtlsRoute), "c.yaml", nil)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MTLS == nil || cfg.MTLS.Enforcement != clientcert.EnforcePolicyWithDefaultDeny || cfg.MTLS.ClientAuth() != tls.RequestClientCert {
			t.Fatalf("MTLS %+v", cfg.MTLS)
		}
		r := &cfg.Routes[0]
		if r.ClientCA == nil {
			t.Fatal("route has no client CA")
		}
		// allow_public_unauthenticated_access, yet no certificate is denied.
		d := r.Evaluator.Evaluate(&policy.Input{Method: "GET", Path: "/"})
		if d.Allow || d.Reasons.String() != "client-certificate-required" {
			t.Errorf("no certificate: %v %v", d.Allow, d.Reasons)
		}
		cert, _ := r.ClientCA.Check(clientcert.Encode(valid.ChainCerts()), valid.Cert.NotBefore.Add(1))
		d = r.Evaluator.Evaluate(&policy.Input{Method: "GET", Path: "/", ClientCert: cert})
		if !d.Allow {
			t.Errorf("valid certificate: %v %v", d.Allow, d.Reasons)
		}
	})
	t.Run("PolicyMode", func(t *testing.T) {
		cfg, err := Parse([]byte(mtlsBase+"downstream_mtls:\n  ca: "+base64.StdEncoding.EncodeToString(ca.PEM())+"\n  enforcement: policy\n"+mtlsRoute), "c.yaml", nil)
		if err != nil {
			t.Fatal(err)
		}
		d := cfg.Routes[0].Evaluator.Evaluate(&policy.Input{Method: "GET", Path: "/"})
		if !d.Allow {
			t.Errorf("policy mode adds no deny: %v %v", d.Allow, d.Reasons)
		}
	})
	t.Run("RejectConnection", func(t *testing.T) {
		cfg, err := Parse([]byte(mtlsBase+"downstream_mtls:\n  ca_file: "+caFile+"\n  enforcement: reject_connection\n"+mtlsRoute), "c.yaml", nil)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MTLS.ClientAuth() != tls.RequireAnyClientCert {
			t.Errorf("client auth %v", cfg.MTLS.ClientAuth())
		}
		if err := cfg.MTLS.VerifyConnection(tls.ConnectionState{PeerCertificates: valid.ChainCerts()}); err != nil {
			t.Error(err)
		}
		other := clientcerttest.NewCA(t, "other").Issue(t, clientcerttest.ClientOptions{})
		if err := cfg.MTLS.VerifyConnection(tls.ConnectionState{PeerCertificates: other.ChainCerts()}); err == nil {
			t.Error("a certificate from another CA passed")
		}
	})
	t.Run("RouteCA", func(t *testing.T) {
		cfg, err := Parse([]byte(mtlsBase+mtlsRoute+"    tls_downstream_client_ca_file: "+caFile+"\n  - from: https://b.example.com\n    to: http://up\n    allow_public_unauthenticated_access: true\n"), "c.yaml", nil)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MTLS == nil || cfg.Routes[0].ClientCA == nil || cfg.Routes[1].ClientCA != nil {
			t.Fatalf("route CAs: %v %v", cfg.Routes[0].ClientCA, cfg.Routes[1].ClientCA)
		}
		if d := cfg.Routes[1].Evaluator.Evaluate(&policy.Input{Method: "GET", Path: "/"}); !d.Allow {
			t.Error("a route without a client CA requires a certificate")
		}
	})
	t.Run("Env", func(t *testing.T) {
		cfg, err := Parse([]byte(mtlsBase+mtlsRoute), "c.yaml", env(map[string]string{"DOWNSTREAM_MTLS_CA_FILE": caFile, "DOWNSTREAM_MTLS_ENFORCEMENT": "policy"}))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MTLS == nil || cfg.MTLS.Enforcement != "policy" {
			t.Fatalf("MTLS %+v", cfg.MTLS)
		}
	})
}

func TestDownstreamMTLSErrors(t *testing.T) {
	ca := clientcerttest.NewCA(t, "clients")
	other := clientcerttest.NewCA(t, "clients")
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile, badCRL := write("ca.pem", ca.PEM()), write("crl.pem", other.CRL(t))
	for _, tc := range []struct{ yaml, want string }{
		{"downstream_mtls:\n  ca: not a pem\n", "line 5: downstream_mtls.ca: no PEM certificate found"},
		{"downstream_mtls:\n  ca_file: /nonexistent/ca.pem\n", "line 5: downstream_mtls.ca_file: cannot read file"},
		{"downstream_mtls:\n  ca_file: " + caFile + "\n  ca: x\n", "downstream_mtls.ca: set only one of ca and ca_file"},
		{"downstream_mtls:\n  ca_file: " + caFile + "\n  crl: garbage\n", "line 6: downstream_mtls.crl: no certificate revocation list found"},
		{"downstream_mtls:\n  ca_file: " + caFile + "\n  crl_file: " + badCRL + "\n", "line 6: downstream_mtls.crl_file: the CRL of \"CN=clients\" is not signed by that CA's key"},
		{"downstream_mtls:\n  ca_file: " + caFile + "\n  enforcement: strict\n", "line 6: downstream_mtls.enforcement: expected policy_with_default_deny, policy or reject_connection"},
		{"downstream_mtls:\n  ca_file: " + caFile + "\n  match_subject_alt_names:\n    - phone: '1'\n", `unknown SAN type "phone"`},
		{"downstream_mtls:\n  ca_file: " + caFile + "\n  max_verify_depth: -1\n", "downstream_mtls.max_verify_depth: expected 0"},
		{"downstream_mtls:\n  enforcement: policy\n", "downstream_mtls.ca: required for downstream mTLS"},
		{"downstream_mtls:\n  ca_fle: x\n", `line 5: downstream_mtls.ca_fle: unknown option (did you mean "ca_file"?)`},
		{mtlsRoute + "    tls_downstream_client_ca: nope\n", "line 8: routes[0].tls_downstream_client_ca: no PEM certificate found"},
	} {
		_, err := Parse([]byte(mtlsBase+tc.yaml), "c.yaml", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s\nerror: %v\nwant: %s", tc.yaml, err, tc.want)
		}
	}
}

func TestAutocert(t *testing.T) {
	const proxyBase = `services: proxy
shared_secret: ` + secret + `
cookie_secret: ` + cookieSecret + `
authenticate_service_url: https://auth.example.com
authorize_service_url: http://authorize:5443
autocert: true
`
	routes := `routes:
  - from: https://a.example.com
    to: http://up
  - from: https://*.b.example.com
    to: http://up
`
	cfg, err := Parse([]byte(proxyBase+"autocert_use_staging: true\nautocert_dir: /var/lib/x\n"+routes), "c.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Autocert
	if a == nil || a.DirectoryURL != LetsEncryptStagingDirectory || a.Dir != "/var/lib/x" || strings.Join(a.Hosts, ",") != "a.example.com" {
		t.Fatalf("autocert %+v", a)
	}
	if cfg.HTTPRedirectAddr != ":80" {
		t.Errorf("http_redirect_addr %q, want :80 for HTTP-01", cfg.HTTPRedirectAddr)
	}
	if w := strings.Join(cfg.Warnings(), "\n"); !strings.Contains(w, "*.b.example.com") {
		t.Errorf("no warning about the wildcard route: %s", w)
	}
	cfg, err = Parse([]byte(proxyBase+"autocert_ca: https://acme.example.com/dir\nautocert_use_staging: true\n"+routes), "c.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Autocert.DirectoryURL != "https://acme.example.com/dir" || !strings.Contains(strings.Join(cfg.Warnings(), "\n"), "autocert_use_staging is ignored") {
		t.Errorf("autocert_ca: %+v %v", cfg.Autocert, cfg.Warnings())
	}
	for _, tc := range []struct{ yaml, want string }{
		{"autocert_ca: http://acme.example.com\n", "line 7: autocert_ca: expected the https:// URL of an ACME directory"},
		{"autocert_email: nobody\n", "line 7: autocert_email: expected an email address"},
		{"autocert_eab_key_id: kid\n", "line 7: autocert_eab_key_id: autocert_eab_key_id and autocert_eab_mac_key go together"},
		{"autocert_eab_key_id: kid\nautocert_eab_mac_key: '!!'\n", "line 8: autocert_eab_mac_key: expected the base64url MAC key"},
		{"autocert_trusted_ca: nope\n", "line 7: autocert_trusted_ca: expected PEM certificates"},
		{"autocert_trusted_ca_file: /nonexistent\n", "line 7: autocert_trusted_ca_file: cannot read file"},
		{"insecure_server: true\n", "autocert: autocert needs gatehouse to terminate TLS"},
	} {
		_, err := Parse([]byte(proxyBase+tc.yaml+routes), "c.yaml", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s\nerror: %v\nwant: %s", tc.yaml, err, tc.want)
		}
	}
}
