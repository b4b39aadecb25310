package authorize

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// jwt_issuer_format: hostOnly (the default) puts the route's host name in
// iss, uri puts https://<host>/; a route's own setting wins.
func TestJWTIssuerFormat(t *testing.T) {
	cfg := testConfig(t, strings.Replace(testConfigYAML, "jwt_claims_headers: email,groups",
		"jwt_claims_headers: email,groups,iss\njwt_issuer_format: uri", 1)+`
  - id: hostonly
    from: https://hostonly.localhost.pomerium.io
    to: http://h:80
    jwt_issuer_format: hostOnly
    pass_identity_headers: true
    allow_any_authenticated_user: true
`)
	s := newTestService(t, cfg)
	tok := signIn(t, s, alice, "s1", 1)
	keys, _ := cfg.KeySet()
	for host, want := range map[string]string{
		"app.localhost.pomerium.io":      "https://app.localhost.pomerium.io/",
		"hostonly.localhost.pomerium.io": "hostonly.localhost.pomerium.io",
	} {
		resp, err := s.Check(context.Background(), newReq("GET", "https://"+host+"/", cookie(tok)))
		if err != nil {
			t.Fatal(err)
		}
		h := okHeaders(resp)
		claims := verifyJWT(t, keys.JWKS(), h[headerJWTAssertion])
		if claims["iss"] != want || claims["aud"] != host {
			t.Errorf("%s: iss %v aud %v, want iss %q", host, claims["iss"], claims["aud"], want)
		}
		if got := h["x-pomerium-claim-iss"]; got != want {
			t.Errorf("%s: X-Pomerium-Claim-Iss %q, want %q", host, got, want)
		}
	}
	for _, bad := range []string{"jwt_issuer_format: URI", "jwt_issuer_format: host"} {
		if _, err := parseErr(strings.Replace(testConfigYAML, "jwt_claims_headers: email,groups", bad, 1)); err == nil || !strings.Contains(err.Error(), "expected hostOnly or uri") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// A Kubernetes API route: the upstream gets the service account's token
// and the user to impersonate, whatever Authorization the handle came in;
// a token file is read again as it rotates.
func TestKubernetesServiceAccountToken(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("file-token-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, testConfigYAML+`
  - id: k8s
    from: https://k8s.localhost.pomerium.io
    to: https://kubernetes.default.svc
    kubernetes_service_account_token: sa-token
    allow_any_authenticated_user: true
  - id: k8sfile
    from: https://k8sfile.localhost.pomerium.io
    to: https://kubernetes.default.svc
    kubernetes_service_account_token_file: `+file+`
    allow_any_authenticated_user: true
`)
	s := newTestService(t, cfg)
	tok := signIn(t, s, alice, "s1", 1)
	check := func(host string, opt reqOpt) *authv3.OkHttpResponse {
		t.Helper()
		resp, err := s.Check(context.Background(), newReq("GET", "https://"+host+"/api", opt))
		if err != nil || resp.GetOkResponse() == nil {
			t.Fatalf("%s: %v %v", host, err, resp)
		}
		return resp.GetOkResponse()
	}
	for _, opt := range []reqOpt{cookie(tok), header("authorization", "Bearer Pomerium-"+tok)} {
		ok := check("k8s.localhost.pomerium.io", opt)
		h := map[string]string{}
		for _, o := range ok.GetHeaders() {
			h[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
		}
		if h["authorization"] != "Bearer sa-token" || h["impersonate-user"] != "alice@example.com" || h["impersonate-group"] != "admins,staff" {
			t.Errorf("headers %v", h)
		}
		for _, k := range ok.GetHeadersToRemove() {
			if k == "authorization" {
				t.Error("authorization removed after it was set")
			}
		}
	}
	tokenOf := func() string {
		for _, o := range check("k8sfile.localhost.pomerium.io", cookie(tok)).GetHeaders() {
			if o.GetHeader().GetKey() == "authorization" {
				return o.GetHeader().GetValue()
			}
		}
		return ""
	}
	if got := tokenOf(); got != "Bearer file-token-1" {
		t.Errorf("file token %q", got)
	}
	if err := os.WriteFile(file, []byte("file-token-2"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := s.state.Load().byID["k8sfile"]
	r.k8s.mu.Lock()
	r.k8s.readAt = r.k8s.readAt.Add(-tokenFileTTL) // as if 30s went by
	r.k8s.mu.Unlock()
	if got := tokenOf(); got != "Bearer file-token-2" {
		t.Errorf("rotated file token %q", got)
	}
	if _, err := parseErr(testConfigYAML + "    kubernetes_service_account_token: a\n    kubernetes_service_account_token_file: " + file + "\n"); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("both set: %v", err)
	}
}
