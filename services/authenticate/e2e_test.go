package authenticate

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/cryptutil"
	"github.com/gatehouse/gatehouse/pkg/devidp"
	"github.com/gatehouse/gatehouse/pkg/grpcutil"
	"github.com/gatehouse/gatehouse/pkg/handoff"
	"github.com/gatehouse/gatehouse/pkg/sessionhandle"
	"github.com/gatehouse/gatehouse/pkg/signingkey"
	"github.com/gatehouse/gatehouse/pkg/testutil"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
)

// TestEndToEnd runs the real binaries: `gatehouse dev-idp` and `gatehouse`
// with the authenticate and databroker services, each on its own loopback
// port, and drives them with an HTTP client as a browser would.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: builds and runs the gatehouse binary")
	}
	bin := testutil.Gatehouse(t)
	idpPort, httpPort, appPort := testutil.FreePort(t), testutil.FreePort(t), testutil.FreePort(t)
	grpcAddr, healthAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	idpURL := fmt.Sprintf("http://127.0.0.1:%d", idpPort)
	authOrigin := fmt.Sprintf("http://authenticate.localhost:%d", httpPort)
	appOrigin := fmt.Sprintf("http://app.localhost:%d", appPort)

	idp := testutil.StartProcess(t, "dev-idp", bin, []string{"dev-idp",
		"--address", fmt.Sprintf("127.0.0.1:%d", idpPort),
		"--client-id", testClientID, "--client-secret", testClientSecret,
		"--redirect-uri", authOrigin + "/oauth2/callback",
		"--redirect-uri", appOrigin + "/", // lets the route be a post-logout target
		"--access-token-ttl", "4s",
	})

	yaml := fmt.Sprintf(`services: authenticate,databroker
insecure_server: true
address: 127.0.0.1:%d
grpc_address: %s
grpc_insecure: true
health_check_addr: %s
log_level: debug
authenticate_service_url: %s
shared_secret: %s
cookie_secret: %s
idp_provider: oidc
idp_provider_url: %s
idp_client_id: %s
idp_client_secret: %s
routes:
  - from: %s
    to: http://127.0.0.1:9
    allow_any_authenticated_user: true
`, httpPort, grpcAddr, healthAddr, authOrigin, testSharedSecret, testCookieSecret, idpURL, testClientID, testClientSecret, appOrigin)
	path := testutil.WriteFile(t, "config.yaml", yaml)
	gh := testutil.StartProcess(t, "gatehouse", bin, []string{"--config", path})

	testutil.WaitHTTP(t, idpURL+"/.well-known/openid-configuration", 30*time.Second, idp)
	testutil.WaitHTTP(t, "http://"+healthAddr+"/readyz", 30*time.Second, gh)

	cfg, err := config.Parse([]byte(yaml), path, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	grpcURL, _ := url.Parse("http://" + grpcAddr)
	cc, err := grpcutil.Dial(grpcutil.ClientOptions{Targets: []*url.URL{grpcURL}, SharedKey: cfg.SharedKey, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	e := &env{t: t, cfg: cfg, db: databrokerv1.NewDataBrokerServiceClient(cc), idpURL: idpURL, authURL: cfg.AuthenticateURLParsed, appOrigin: appOrigin}
	cipher, _ := cryptutil.NewCipher(cfg.CookieSealKey)
	var lastRaw string // the handle openHandle opened last
	openHandle := func(back *url.URL) *sessionhandle.Handle {
		t.Helper()
		if back.Host != fmt.Sprintf("app.localhost:%d", appPort) || back.Path != handoff.CallbackPath {
			t.Fatalf("sign-in came back to %s, want the route host's %s", back, handoff.CallbackPath)
		}
		cb, err := handoff.OpenCallback(back, back.Host, cfg.URLKey, cipher, time.Now())
		if err != nil {
			t.Fatalf("OpenCallback: %v", err)
		}
		lastRaw = cb.Handle
		h, err := sessionhandle.Decode(cfg.HandleKey, cb.Handle, time.Now())
		if err != nil {
			t.Fatalf("handle: %v", err)
		}
		return h
	}

	var alice *sessionhandle.Handle
	t.Run("sign in", func(t *testing.T) {
		e.t = t
		c := e.client()
		back := e.signIn(c, appOrigin+"/dashboard", "alice@example.com", "Alice", "admins,dev")
		alice = openHandle(back)
		sub := devidp.Subject("alice@example.com")
		if alice.UserID != sub {
			t.Errorf("handle names user %q, want %q", alice.UserID, sub)
		}
		sess := e.session(alice.ID)
		if sess == nil {
			t.Fatal("no session record in the databroker")
		}
		if g := listStrings(sess.Claims["groups"]); !slices.Equal(g, []string{"admins", "dev"}) {
			t.Errorf("session groups %v", g)
		}
		u := e.user(sub)
		if u.Email != "alice@example.com" || u.Name != "Alice" || !slices.Equal(listStrings(u.Claims["groups"]), []string{"admins", "dev"}) {
			t.Errorf("user record: email %q, name %q, groups %v", u.Email, u.Name, listStrings(u.Claims["groups"]))
		}
		// The authenticate host's own page knows alice.
		resp, body := get(t, c, authOrigin+"/.pomerium/")
		if resp.StatusCode != 200 || !strings.Contains(body, "alice@example.com") {
			t.Errorf("/.pomerium/: %d %s", resp.StatusCode, body)
		}
	})

	if alice == nil {
		t.Fatal("sign-in failed; the rest depends on it")
	}
	t.Run("JWKS verifies the service's signature", func(t *testing.T) {
		e.t = t
		resp, body := get(t, e.client(), authOrigin+signingkey.JWKSPath)
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("jwks: %d %v", resp.StatusCode, resp.Header)
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal([]byte(body), &set); err != nil {
			t.Fatal(err)
		}
		ks, err := cfg.KeySet()
		if err != nil {
			t.Fatal(err)
		}
		claims := signingkey.IdentityClaims{Issuer: "app.localhost", Audience: "app.localhost", Subject: alice.UserID, Email: "alice@example.com"}
		claims.SetTimes(time.Now())
		tok, err := ks.Sign(claims)
		if err != nil {
			t.Fatal(err)
		}
		jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{ks.Algorithm()})
		if err != nil {
			t.Fatal(err)
		}
		keys := set.Key(jws.Signatures[0].Header.KeyID)
		if len(keys) == 0 {
			t.Fatalf("JWKS has no key %q", jws.Signatures[0].Header.KeyID)
		}
		if _, err := jws.Verify(keys[0]); err != nil {
			t.Fatalf("JWKS key does not verify the token: %v", err)
		}
		resp, body = get(t, e.client(), authOrigin+signingkey.WellKnownPath)
		if resp.StatusCode != 200 || !strings.Contains(body, "jwks.json") {
			t.Errorf("well-known: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		e.t = t
		fresh := func() (*http.Client, *url.URL) {
			c := e.client()
			id, _ := e.toIdP(c, e.signInURL(appOrigin+"/", false))
			return c, e.loginAt(c, id, "mallory@example.com", "Mallory", "")
		}
		tests := []struct {
			name   string
			do     func(t *testing.T) (*http.Response, string)
			status int
			code   string
		}{
			{"tampered state", func(t *testing.T) (*http.Response, string) {
				c, cb := fresh()
				q := cb.Query()
				s := q.Get("state")
				q.Set("state", s[:10]+strings.Map(func(r rune) rune {
					if r == 'A' {
						return 'B'
					}
					return 'A'
				}, s[10:12])+s[12:])
				cb.RawQuery = q.Encode()
				return get(t, c, cb.String())
			}, 400, "state_invalid"},
			{"replayed state", func(t *testing.T) (*http.Response, string) {
				c, cb := fresh()
				csrf := c.Jar.Cookies(e.authURL)
				if resp, body := get(t, c, cb.String()); resp.StatusCode != http.StatusFound {
					t.Fatalf("first use: %d %s", resp.StatusCode, body)
				}
				// The replay, from the same browser with the same cookies.
				c.Jar.SetCookies(e.authURL, csrf)
				return get(t, c, cb.String())
			}, 400, "state_replayed"},
			{"expired signed URL", func(t *testing.T) (*http.Response, string) {
				u := handoff.SignInURL(e.authURL, appOrigin+"/", false, cfg.URLKey, time.Now().Add(-10*time.Minute))
				return get(t, e.client(), u.String())
			}, 400, "signed_url_expired"},
			{"wrong CSRF cookie", func(t *testing.T) (*http.Response, string) {
				c, cb := fresh()
				c.Jar.SetCookies(e.authURL, []*http.Cookie{{Name: CSRFCookieName, Value: "wrong", Path: "/"}})
				return get(t, c, cb.String())
			}, 400, "csrf_mismatch"},
			{"foreign return URL", func(t *testing.T) (*http.Response, string) {
				return get(t, e.client(), e.signInURL("https://evil.example.com/steal", false))
			}, 400, "redirect_not_allowed"},
			{"IdP error", func(t *testing.T) (*http.Response, string) {
				return get(t, e.client(), authOrigin+"/oauth2/callback?error=access_denied&error_description=denied&state=x")
			}, 403, "idp_access_denied"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e.t = t
				before := len(e.sessions())
				if tt.name == "replayed state" {
					before++ // its first, legitimate use creates one session
				}
				resp, body := tt.do(t)
				if resp.StatusCode != tt.status || !strings.Contains(body, tt.code) {
					t.Errorf("status %d (want %d), page: %s", resp.StatusCode, tt.status, body)
				}
				if after := len(e.sessions()); after != before {
					t.Errorf("sessions: %d before, %d after", before, after)
				}
			})
		}
	})

	t.Run("sign out removes the session", func(t *testing.T) {
		e.t = t
		c := e.client()
		h := openHandle(e.signIn(c, appOrigin+"/", "erin@example.com", "Erin", ""))
		if e.session(h.ID) == nil {
			t.Fatal("no session")
		}
		resp, body := get(t, c, handoff.SignOutURL(e.authURL, appOrigin+"/", lastRaw, cfg.URLKey, cipher, time.Now()).String())
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("sign-out: %d %s", resp.StatusCode, body)
		}
		if end := location(t, resp); !strings.HasPrefix(end.String(), idpURL+"/end_session") {
			t.Errorf("sign-out went to %s, want the IdP's end_session", end)
		}
		if e.session(h.ID) != nil {
			t.Fatal("session record still there after sign-out")
		}
		resp, _ = get(t, c, authOrigin+handoff.UserJSONPath)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("after sign-out /.pomerium/user: %d, want 401", resp.StatusCode)
		}
	})

	t.Run("refresher renews, then deletes a rejected session", func(t *testing.T) {
		e.t = t
		h := openHandle(e.signIn(e.client(), appOrigin+"/", "frank@example.com", "Frank", "ops"))
		first := e.session(h.ID)
		testutil.WaitFor(t, 30*time.Second, "the refresher to renew the session", func() bool {
			s := e.session(h.ID)
			return s != nil && s.RefreshedAt != nil && s.OauthToken.GetAccessToken() != first.OauthToken.GetAccessToken()
		})
		resp, err := http.PostForm(idpURL+"/dev/reject-refreshes", url.Values{"reject": {"true"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("reject-refreshes: %d", resp.StatusCode)
		}
		testutil.WaitFor(t, 30*time.Second, "the refresher to delete the rejected session", func() bool { return e.session(h.ID) == nil })
	})

	if t.Failed() && os.Getenv("AUTHN_E2E_LOGS") != "" {
		t.Logf("gatehouse output:\n%s", gh.Output())
	}
	gh.Stop()
	idp.Stop()
}
