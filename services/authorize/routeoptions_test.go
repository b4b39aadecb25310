package authorize

import (
	"context"
	"strings"
	"testing"
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
