package authorize

import (
	"context"
	"testing"

	"github.com/gatehouse/gatehouse/pkg/extauthz"
	sessionv1 "github.com/gatehouse/gatehouse/proto/gatehouse/session/v1"
	userv1 "github.com/gatehouse/gatehouse/proto/gatehouse/user/v1"
)

// set_request_headers' ${pomerium.*} values reach the upstream expanded,
// as in Pomerium: the IdP's tokens of the session, the identity JWT and
// request headers; a dollar sign that starts no such value stays.
func TestSetRequestHeadersTemplates(t *testing.T) {
	for _, pass := range []string{"true", "false"} {
		t.Run("pass_identity_headers="+pass, func(t *testing.T) {
			yaml := `
services: authorize
shared_secret: ` + testSecret + `
authenticate_service_url: https://authenticate.localhost.pomerium.io
databroker_service_url: http://127.0.0.1:5443
routes:
  - from: https://app.localhost.pomerium.io
    to: http://app:80
    allow_any_authenticated_user: true
    pass_identity_headers: ` + pass + `
    set_request_headers:
      X-Id-Token: ${pomerium.id_token}
      X-Access-Token: "Bearer $pomerium.access_token"
      X-Jwt: ${pomerium.jwt}
      X-Tenant-Copy: tenant=${pomerium.request.headers.x-tenant}
      X-Cert: "[${pomerium.client_cert_fingerprint}]"
      X-Static: "pa$word $$HOME"
`
			s := newTestService(t, testConfig(t, yaml))
			s.store.putUser(&userv1.User{Id: "u1", Email: "u@example.com"}, 2)
			s.store.putSession(&sessionv1.Session{Id: "s1", UserId: "u1",
				IdToken:    &sessionv1.IDToken{Raw: "idp.id.token"},
				OauthToken: &sessionv1.OAuthToken{AccessToken: "idp-access", RefreshToken: "never-sent"},
			}, 3)
			tok := handleFor(t, s, "u1", "s1", 1, 3)
			resp, err := s.Check(context.Background(), newReq("GET", "https://app.localhost.pomerium.io/",
				cookie(tok), header("x-tenant", "acme")))
			if err != nil || !extauthz.Allowed(resp) {
				t.Fatalf("Check: %v %v", resp, err)
			}
			h := okHeaders(resp)
			want := map[string]string{
				"x-id-token":     "idp.id.token",
				"x-access-token": "Bearer idp-access",
				"x-tenant-copy":  "tenant=acme",
				"x-cert":         "[]",
				"x-static":       "pa$word $HOME",
			}
			for k, v := range want {
				if h[k] != v {
					t.Errorf("%s = %q, want %q", k, h[k], v)
				}
			}
			claims := verifyJWT(t, s.state.Load().keys.JWKS(), h["x-jwt"])
			if claims["email"] != "u@example.com" {
				t.Errorf("x-jwt claims %v", claims)
			}
			_, hasAssertion := h["x-pomerium-jwt-assertion"]
			if hasAssertion != (pass == "true") {
				t.Errorf("x-pomerium-jwt-assertion present = %v with pass_identity_headers %s", hasAssertion, pass)
			}
			for k, v := range h {
				if v == tok || v == "never-sent" {
					t.Errorf("%s carries a credential that must not reach the upstream", k)
				}
			}
		})
	}
}

// A public route's templates expand to empty values for an anonymous
// request: no session, no tokens.
func TestSetRequestHeadersTemplatesAnonymous(t *testing.T) {
	yaml := `
services: authorize
shared_secret: ` + testSecret + `
authenticate_service_url: https://authenticate.localhost.pomerium.io
databroker_service_url: http://127.0.0.1:5443
routes:
  - from: https://app.localhost.pomerium.io
    to: http://app:80
    allow_public_unauthenticated_access: true
    set_request_headers:
      X-Id-Token: "<${pomerium.id_token}>"
`
	s := newTestService(t, testConfig(t, yaml))
	resp, err := s.Check(context.Background(), newReq("GET", "https://app.localhost.pomerium.io/"))
	if err != nil || !extauthz.Allowed(resp) {
		t.Fatalf("Check: %v %v", resp, err)
	}
	if h := okHeaders(resp); h["x-id-token"] != "<>" {
		t.Errorf("x-id-token = %q", h["x-id-token"])
	}
}
