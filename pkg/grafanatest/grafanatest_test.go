package grafanatest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/pkg/devcerts"
)

const header = "X-Pomerium-Jwt-Assertion"

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// signer is a private key with its kid and algorithm.
type signer struct {
	kid string
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

func (s signer) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: s.key.Public(), KeyID: s.kid, Algorithm: string(s.alg), Use: "sig"}
}

var (
	keysOnce        sync.Once
	ecKey, rsaKey   signer
	otherKey        signer
	testCA          *devcerts.CA
	serverTLSConfig *tls.Config
)

// testKeys makes the keys and the CA once per test binary (RSA is slow).
func testKeys(t *testing.T) {
	t.Helper()
	keysOnce.Do(func() {
		ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		ecKey = signer{kid: "ec-key-1", alg: jose.ES256, key: ec}
		rsaKey = signer{kid: "rsa-key-1", alg: jose.RS256, key: rk}
		otherKey = signer{kid: "not-published", alg: jose.ES256, key: other}
		testCA, err = devcerts.NewCA("grafanatest CA")
		if err != nil {
			panic(err)
		}
		certPEM, keyPEM, err := testCA.Issue("127.0.0.1", "localhost")
		if err != nil {
			panic(err)
		}
		crt, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			panic(err)
		}
		serverTLSConfig = &tls.Config{Certificates: []tls.Certificate{crt}}
	})
}

func caPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(testCA.Cert)
	return p
}

func jwksJSON(t *testing.T, keys ...signer) []byte {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, k.public())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jwksServer serves the JWKS over https with the test CA and counts fetches.
type jwksServer struct {
	url          string
	fetches      atomic.Int32
	cacheControl atomic.Value // string
}

func startJWKS(t *testing.T, body []byte, tlsOn bool) *jwksServer {
	t.Helper()
	js := &jwksServer{}
	js.cacheControl.Store("max-age=60")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		js.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if cc := js.cacheControl.Load().(string); cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		_, _ = w.Write(body)
	})
	srv := httptest.NewUnstartedServer(h)
	if tlsOn {
		srv.TLS = serverTLSConfig.Clone()
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	js.url = srv.URL + "/.well-known/pomerium/jwks.json"
	return js
}

func sign(t *testing.T, s signer, withKID bool, claims map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	opts.WithType("JWT")
	if withKID {
		opts.WithHeader("kid", s.kid)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: s.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := sig.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func signHS256(t *testing.T, kid string, claims map[string]any) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")},
		(&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := sig.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

func unsignedNone(kid string, claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "none", "kid": kid, "typ": "JWT"})
	p, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding.EncodeToString
	return enc(h) + "." + enc(p) + "."
}

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func claimsAt(now time.Time) map[string]any {
	return map[string]any{
		"iss":    "grafana.localhost.pomerium.io",
		"aud":    "grafana.localhost.pomerium.io",
		"sub":    "2bd806c97f0e00af1a1fc3328fa763a9",
		"user":   "2bd806c97f0e00af1a1fc3328fa763a9",
		"email":  "alice@example.com",
		"name":   "Alice Liddell",
		"groups": []string{"admins"},
		"sid":    "session-1",
		"jti":    "jti-1",
		"iat":    now.Unix(),
		"exp":    now.Add(5 * time.Minute).Unix(),
	}
}

// guideConfig is the guide's "Manage Access at Scale" grafana.ini.
func guideConfig(js *jwksServer, c *clock) Config {
	return Config{
		HeaderName: header, EmailClaim: "email", UsernameClaim: "sub",
		JWKSetURL: js.url, CacheTTL: 60 * time.Minute, AutoSignUp: true,
		AutoAssignOrgRole: "Editor", RootCAs: caPool(), Now: c.Now,
	}
}

type response struct {
	status int
	body   string
	user   User
}

func get(t *testing.T, h http.Handler, path string, hdr http.Header) response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := response{status: rec.Code, body: rec.Body.String()}
	if rec.Code == http.StatusOK && strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(rec.Body.Bytes(), &res.user); err != nil {
			t.Fatalf("decode %s: %v", rec.Body.String(), err)
		}
	}
	return res
}

func jwtHeader(tok string) http.Header { return http.Header{header: {tok}} }

func TestVerify(t *testing.T) {
	testKeys(t)
	js := startJWKS(t, jwksJSON(t, ecKey, rsaKey), true)
	with := func(mut func(map[string]any)) map[string]any {
		c := claimsAt(epoch)
		mut(c)
		return c
	}
	for _, tc := range []struct {
		name   string
		cfg    func(*Config)
		token  func(t *testing.T) string
		status int
		login  string
	}{
		{name: "ES256 valid", token: func(t *testing.T) string { return sign(t, ecKey, true, claimsAt(epoch)) },
			status: 200, login: "2bd806c97f0e00af1a1fc3328fa763a9"},
		{name: "RS256 valid", token: func(t *testing.T) string { return sign(t, rsaKey, true, claimsAt(epoch)) },
			status: 200, login: "2bd806c97f0e00af1a1fc3328fa763a9"},
		{name: "Bearer prefix stripped", token: func(t *testing.T) string { return "Bearer " + sign(t, ecKey, true, claimsAt(epoch)) },
			status: 200, login: "2bd806c97f0e00af1a1fc3328fa763a9"},
		{name: "no kid", token: func(t *testing.T) string { return sign(t, ecKey, false, claimsAt(epoch)) }, status: 401},
		{name: "unknown kid", token: func(t *testing.T) string { return sign(t, otherKey, true, claimsAt(epoch)) }, status: 401},
		{name: "kid of another key", token: func(t *testing.T) string {
			s := otherKey
			s.kid = ecKey.kid
			return sign(t, s, true, claimsAt(epoch))
		}, status: 401},
		{name: "kid matched only case-insensitively", token: func(t *testing.T) string {
			s := ecKey
			s.kid = strings.ToUpper(s.kid)
			return sign(t, s, true, claimsAt(epoch))
		}, status: 401},
		{name: "HS256 refused", token: func(t *testing.T) string { return signHS256(t, ecKey.kid, claimsAt(epoch)) }, status: 401},
		{name: "alg none refused", token: func(t *testing.T) string { return unsignedNone(ecKey.kid, claimsAt(epoch)) }, status: 401},
		{name: "tampered payload", token: func(t *testing.T) string {
			parts := strings.Split(sign(t, ecKey, true, claimsAt(epoch)), ".")
			p, _ := json.Marshal(with(func(c map[string]any) { c["email"] = "mallory@example.com" }))
			parts[1] = base64.RawURLEncoding.EncodeToString(p)
			return strings.Join(parts, ".")
		}, status: 401},
		{name: "not compact", token: func(t *testing.T) string { return `{"payload":"e30","signatures":[]}` }, status: 401},
		{name: "expired beyond leeway", token: func(t *testing.T) string {
			return sign(t, ecKey, true, with(func(c map[string]any) { c["exp"] = epoch.Add(-61 * time.Second).Unix() }))
		}, status: 401},
		{name: "expired within leeway", token: func(t *testing.T) string {
			return sign(t, ecKey, true, with(func(c map[string]any) { c["exp"] = epoch.Add(-59 * time.Second).Unix() }))
		}, status: 200, login: "2bd806c97f0e00af1a1fc3328fa763a9"},
		{name: "nbf in the future beyond leeway", token: func(t *testing.T) string {
			return sign(t, ecKey, true, with(func(c map[string]any) { c["nbf"] = epoch.Add(2 * time.Minute).Unix() }))
		}, status: 401},
		{name: "nbf within leeway", token: func(t *testing.T) string {
			return sign(t, ecKey, true, with(func(c map[string]any) { c["nbf"] = epoch.Add(30 * time.Second).Unix() }))
		}, status: 200, login: "2bd806c97f0e00af1a1fc3328fa763a9"},
		{name: "iat in the future beyond leeway", token: func(t *testing.T) string {
			return sign(t, ecKey, true, with(func(c map[string]any) { c["iat"] = epoch.Add(2 * time.Minute).Unix() }))
		}, status: 401},
		{name: "sub empty", token: func(t *testing.T) string {
			return sign(t, ecKey, true, with(func(c map[string]any) { c["sub"] = "" }))
		}, status: 401},
		{name: "sub missing", token: func(t *testing.T) string {
			return sign(t, ecKey, true, with(func(c map[string]any) { delete(c, "sub") }))
		}, status: 401},
		{name: "sub not a string", token: func(t *testing.T) string {
			return sign(t, ecKey, true, with(func(c map[string]any) { c["sub"] = 42 }))
		}, status: 401},
		{name: "iss and aud unchecked without expect_claims", token: func(t *testing.T) string {
			return sign(t, ecKey, true, with(func(c map[string]any) { c["iss"], c["aud"] = "elsewhere", "elsewhere" }))
		}, status: 200, login: "2bd806c97f0e00af1a1fc3328fa763a9"},
		{name: "expect_claims iss exact", cfg: func(c *Config) {
			c.ExpectClaims = map[string]any{"iss": "grafana.localhost.pomerium.io"}
		}, token: func(t *testing.T) string { return sign(t, ecKey, true, claimsAt(epoch)) },
			status: 200, login: "2bd806c97f0e00af1a1fc3328fa763a9"},
		{name: "expect_claims iss mismatch", cfg: func(c *Config) {
			c.ExpectClaims = map[string]any{"iss": "https://grafana.localhost.pomerium.io"}
		}, token: func(t *testing.T) string { return sign(t, ecKey, true, claimsAt(epoch)) }, status: 401},
		{name: "expect_claims aud in token's aud list", cfg: func(c *Config) {
			c.ExpectClaims = map[string]any{"aud": "grafana.localhost.pomerium.io"}
		}, token: func(t *testing.T) string {
			return sign(t, ecKey, true, with(func(c map[string]any) { c["aud"] = []string{"other", "grafana.localhost.pomerium.io"} }))
		}, status: 200, login: "2bd806c97f0e00af1a1fc3328fa763a9"},
		{name: "expect_claims aud list all present", cfg: func(c *Config) {
			c.ExpectClaims = map[string]any{"aud": []any{"a", "b"}}
		}, token: func(t *testing.T) string {
			return sign(t, ecKey, true, with(func(c map[string]any) { c["aud"] = []string{"b", "a", "c"} }))
		}, status: 200, login: "2bd806c97f0e00af1a1fc3328fa763a9"},
		{name: "expect_claims aud list one missing", cfg: func(c *Config) {
			c.ExpectClaims = map[string]any{"aud": []any{"a", "b"}}
		}, token: func(t *testing.T) string {
			return sign(t, ecKey, true, with(func(c map[string]any) { c["aud"] = "a" }))
		}, status: 401},
		{name: "expect_claims aud not exact", cfg: func(c *Config) {
			c.ExpectClaims = map[string]any{"aud": "grafana.localhost"}
		}, token: func(t *testing.T) string { return sign(t, ecKey, true, claimsAt(epoch)) }, status: 401},
		{name: "login defaults to email without username_claim", cfg: func(c *Config) { c.UsernameClaim = "" },
			token:  func(t *testing.T) string { return sign(t, ecKey, true, claimsAt(epoch)) },
			status: 200, login: "alice@example.com"},
		{name: "unknown user without auto_sign_up", cfg: func(c *Config) { c.AutoSignUp = false },
			token: func(t *testing.T) string { return sign(t, ecKey, true, claimsAt(epoch)) }, status: 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{t: epoch}
			cfg := guideConfig(js, clk)
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			res := get(t, s.Handler(), "/api/user", jwtHeader(tc.token(t)))
			if res.status != tc.status {
				t.Fatalf("status %d, want %d (%s); reason: %v", res.status, tc.status, res.body, s.LastAuthError())
			}
			if tc.status == 401 {
				if strings.TrimSpace(res.body) != `{"message":"Invalid JWT"}` {
					t.Errorf("body %q, want Invalid JWT", res.body)
				}
				if s.LastAuthError() == nil {
					t.Error("LastAuthError is nil after a refusal")
				}
				return
			}
			if res.user.Login != tc.login || res.user.Email != "alice@example.com" {
				t.Errorf("login %q email %q, want %q alice@example.com", res.user.Login, res.user.Email, tc.login)
			}
		})
	}
}

func TestAutoSignUpCreatesUserWithRoleAndName(t *testing.T) {
	testKeys(t)
	js := startJWKS(t, jwksJSON(t, ecKey), true)
	clk := &clock{t: epoch}
	s, err := New(guideConfig(js, clk))
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	res := get(t, h, "/api/user", jwtHeader(sign(t, ecKey, true, claimsAt(epoch))))
	if res.status != 200 {
		t.Fatalf("status %d: %s (%v)", res.status, res.body, s.LastAuthError())
	}
	u := res.user
	if u.ID != 2 || u.Login != "2bd806c97f0e00af1a1fc3328fa763a9" || u.Email != "alice@example.com" ||
		u.Name != "Alice Liddell" || u.OrgID != 1 || u.OrgRole != "Editor" || u.IsGrafanaAdmin || !u.IsExternal {
		t.Errorf("signed-up user = %+v", u)
	}
	// The same JWT again finds the same user rather than creating another.
	res = get(t, h, "/api/user", jwtHeader(sign(t, ecKey, true, claimsAt(epoch))))
	if res.user.ID != 2 || len(s.Users()) != 2 {
		t.Errorf("second sign-in: id %d, %d users", res.user.ID, len(s.Users()))
	}
	// The HTML page names the user.
	page := get(t, h, "/", jwtHeader(sign(t, ecKey, true, claimsAt(epoch))))
	if page.status != 200 || !strings.Contains(page.body, "Grafana (test)") || !strings.Contains(page.body, "Alice Liddell") {
		t.Errorf("home page %d: %s", page.status, page.body)
	}
	if got := s.LastHeaders().Get(header); got == "" {
		t.Error("LastHeaders lacks the JWT header")
	}
}

func TestAutoAssignOrgOff(t *testing.T) {
	testKeys(t)
	js := startJWKS(t, jwksJSON(t, ecKey), true)
	cfg := guideConfig(js, &clock{t: epoch})
	off := false
	cfg.AutoAssignOrg = &off
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res := get(t, s.Handler(), "/api/user", jwtHeader(sign(t, ecKey, true, claimsAt(epoch))))
	if res.status != 200 || res.user.OrgID == 1 || res.user.OrgRole != "Admin" {
		t.Errorf("status %d user %+v: want an org of their own as Admin", res.status, res.user)
	}
}

func TestAddUsersThenJWTMatchesExistingUser(t *testing.T) {
	testKeys(t)
	js := startJWKS(t, jwksJSON(t, ecKey), true)
	// The guide's first grafana.ini: no username_claim, no auto_sign_up.
	clk := &clock{t: epoch}
	cfg := Config{HeaderName: header, EmailClaim: "email", JWKSetURL: js.url, CacheTTL: time.Hour, RootCAs: caPool(), Now: clk.Now}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	tok := sign(t, ecKey, true, claimsAt(epoch))

	// Before the admin adds Alice: the guide's error.
	if res := get(t, h, "/api/user", jwtHeader(tok)); res.status != 401 || strings.TrimSpace(res.body) != `{"message":"Invalid JWT"}` {
		t.Fatalf("unknown user: %d %s", res.status, res.body)
	}

	post := func(user, pass, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/api/admin/users", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	newUser := `{"name":"Alice","email":"alice@example.com","login":"alice","password":"s3cret-pass"}`
	if rec := post("", "", newUser); rec.Code != 401 {
		t.Errorf("without basic auth: %d", rec.Code)
	}
	if rec := post("admin", "wrong", newUser); rec.Code != 401 {
		t.Errorf("wrong admin password: %d", rec.Code)
	}
	rec := post("admin", "admin", newUser)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"message":"User created"`) {
		t.Fatalf("create user: %d %s", rec.Code, rec.Body)
	}
	if rec := post("admin", "admin", newUser); rec.Code != http.StatusPreconditionFailed {
		t.Errorf("duplicate user: %d %s", rec.Code, rec.Body)
	}

	res := get(t, h, "/api/user", jwtHeader(tok))
	if res.status != 200 {
		t.Fatalf("existing user: %d %s (%v)", res.status, res.body, s.LastAuthError())
	}
	if res.user.ID != 2 || res.user.Login != "alice" || res.user.Email != "alice@example.com" ||
		res.user.Name != "Alice Liddell" || res.user.OrgRole != "Viewer" {
		t.Errorf("matched user = %+v", res.user)
	}
	if len(s.Users()) != 2 {
		t.Errorf("%d users, want admin and alice", len(s.Users()))
	}
	// Bob was never added.
	other := claimsAt(epoch)
	other["sub"], other["email"] = "b0b", "bob@example.com"
	if res := get(t, h, "/api/user", jwtHeader(sign(t, ecKey, true, other))); res.status != 401 {
		t.Errorf("bob: %d", res.status)
	}
}

func TestNoCredentials(t *testing.T) {
	testKeys(t)
	js := startJWKS(t, jwksJSON(t, ecKey), true)
	s, err := New(guideConfig(js, &clock{t: epoch}))
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	if res := get(t, h, "/api/user", nil); res.status != 401 || !strings.Contains(res.body, "Unauthorized") {
		t.Errorf("/api/user without JWT: %d %s", res.status, res.body)
	}
	if res := get(t, h, "/", nil); res.status != http.StatusFound {
		t.Errorf("/ without JWT: %d, want a redirect to /login", res.status)
	}
	if res := get(t, h, "/api/health", nil); res.status != 200 || !strings.Contains(res.body, `"database":"ok"`) {
		t.Errorf("/api/health: %d %s", res.status, res.body)
	}
	if js.fetches.Load() != 0 {
		t.Errorf("JWKS fetched %d times without any JWT: want lazy", js.fetches.Load())
	}
	basic := http.Header{}
	req := httptest.NewRequest(http.MethodGet, "/api/user", nil)
	req.SetBasicAuth("admin", "admin")
	basic.Set("Authorization", req.Header.Get("Authorization"))
	if res := get(t, h, "/api/user", basic); res.status != 200 || res.user.Login != "admin" || !res.user.IsGrafanaAdmin {
		t.Errorf("admin basic auth: %d %+v", res.status, res.user)
	}
}

func TestUnknownKIDNeverRefetches(t *testing.T) {
	testKeys(t)
	js := startJWKS(t, jwksJSON(t, ecKey), true)
	s, err := New(guideConfig(js, &clock{t: epoch}))
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	for i := 0; i < 3; i++ {
		if res := get(t, h, "/api/user", jwtHeader(sign(t, otherKey, true, claimsAt(epoch)))); res.status != 401 {
			t.Fatalf("unknown kid: %d", res.status)
		}
	}
	if res := get(t, h, "/api/user", jwtHeader(sign(t, ecKey, true, claimsAt(epoch)))); res.status != 200 {
		t.Fatalf("known kid: %d (%v)", res.status, s.LastAuthError())
	}
	if n := js.fetches.Load(); n != 1 || s.JWKSFetches() != 1 {
		t.Errorf("JWKS fetched %d times (server) / %d (client), want 1", n, s.JWKSFetches())
	}
}

func TestJWKSURLScheme(t *testing.T) {
	testKeys(t)
	js := startJWKS(t, jwksJSON(t, ecKey), false) // plain http
	cfg := guideConfig(js, &clock{t: epoch})
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "https") {
		t.Fatalf("http jwk_set_url accepted outside dev mode: %v", err)
	}
	cfg.AllowInsecureJWKSURL = true
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res := get(t, s.Handler(), "/api/user", jwtHeader(sign(t, ecKey, true, claimsAt(epoch)))); res.status != 200 {
		t.Errorf("dev mode over http: %d (%v)", res.status, s.LastAuthError())
	}
}

func TestJWKSTrust(t *testing.T) {
	testKeys(t)
	js := startJWKS(t, jwksJSON(t, ecKey), true)
	tok := sign(t, ecKey, true, claimsAt(epoch))

	// System roots do not know the test CA: every JWT is refused.
	cfg := guideConfig(js, &clock{t: epoch})
	cfg.RootCAs = nil
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res := get(t, s.Handler(), "/api/user", jwtHeader(tok)); res.status != 401 {
		t.Errorf("untrusted CA: %d", res.status)
	}
	if err := s.LastAuthError(); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("reason %v, want a certificate error", err)
	}

	// tls_client_ca as a file, as grafana.ini names it.
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, testCA.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.TLSClientCA = caFile
	s, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res := get(t, s.Handler(), "/api/user", jwtHeader(tok)); res.status != 200 {
		t.Errorf("tls_client_ca: %d (%v)", res.status, s.LastAuthError())
	}
}

func TestJWKSCaching(t *testing.T) {
	testKeys(t)
	for _, tc := range []struct {
		name         string
		ttl          time.Duration
		cacheControl string
		// cached is a wait after which the set is still cached; expired one
		// after which it is refetched.
		cached, expired time.Duration
	}{
		{"shorter max-age wins", 60 * time.Minute, "max-age=60", 50 * time.Second, 61 * time.Second},
		{"shorter cache_ttl wins", 10 * time.Minute, "max-age=3600", 9 * time.Minute, 10*time.Minute + time.Second},
		{"no Cache-Control", 5 * time.Minute, "", 4 * time.Minute, 5*time.Minute + time.Second},
		{"no-store", 5 * time.Minute, "no-store", -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js := startJWKS(t, jwksJSON(t, ecKey), true)
			js.cacheControl.Store(tc.cacheControl)
			clk := &clock{t: epoch}
			cfg := guideConfig(js, clk)
			cfg.CacheTTL = tc.ttl
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			h := s.Handler()
			try := func() {
				t.Helper()
				if res := get(t, h, "/api/user", jwtHeader(sign(t, ecKey, true, claimsAt(clk.Now())))); res.status != 200 {
					t.Fatalf("status %d (%v)", res.status, s.LastAuthError())
				}
			}
			try()
			if tc.cached >= 0 {
				clk.Advance(tc.cached)
				try()
				if n := js.fetches.Load(); n != 1 {
					t.Fatalf("after %v: %d fetches, want 1 (cached)", tc.cached, n)
				}
				clk.Advance(tc.expired - tc.cached)
			}
			try()
			if n := js.fetches.Load(); n != 2 {
				t.Fatalf("after %v: %d fetches, want 2 (refetched)", tc.expired, n)
			}
		})
	}
}

func TestJWKSetFile(t *testing.T) {
	testKeys(t)
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwksJSON(t, ecKey, rsaKey), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := Config{HeaderName: header, EmailClaim: "email", JWKSetFile: path, AutoSignUp: true, Now: (&clock{t: epoch}).Now}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []signer{ecKey, rsaKey} {
		if res := get(t, s.Handler(), "/api/user", jwtHeader(sign(t, k, true, claimsAt(epoch)))); res.status != 200 || res.user.Login != "alice@example.com" {
			t.Errorf("%s: %d %+v (%v)", k.alg, res.status, res.user, s.LastAuthError())
		}
	}
	if res := get(t, s.Handler(), "/api/user", jwtHeader(sign(t, otherKey, true, claimsAt(epoch)))); res.status != 401 {
		t.Errorf("unknown kid: %d", res.status)
	}
	if s.JWKSFetches() != 0 {
		t.Error("jwk_set_file fetched something")
	}
	cfg.JWKSetFile = filepath.Join(t.TempDir(), "missing.json")
	if _, err := New(cfg); err == nil {
		t.Error("missing jwk_set_file accepted")
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no header", Config{EmailClaim: "email", JWKSetFile: "x"}},
		{"no claims", Config{HeaderName: header, JWKSetFile: "x"}},
		{"no key set", Config{HeaderName: header, EmailClaim: "email"}},
		{"both key sets", Config{HeaderName: header, EmailClaim: "email", JWKSetFile: "x", JWKSetURL: "https://a/b"}},
		{"ftp url", Config{HeaderName: header, EmailClaim: "email", JWKSetURL: "ftp://a/b"}},
		{"bad role", Config{HeaderName: header, EmailClaim: "email", JWKSetURL: "https://a/b", AutoAssignOrgRole: "Owner"}},
	} {
		if err := tc.cfg.Validate(); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

func TestLastHeadersCopy(t *testing.T) {
	testKeys(t)
	js := startJWKS(t, jwksJSON(t, ecKey), true)
	s, err := New(guideConfig(js, &clock{t: epoch}))
	if err != nil {
		t.Fatal(err)
	}
	if s.LastHeaders() != nil {
		t.Error("LastHeaders before any request is not nil")
	}
	hdr := jwtHeader(sign(t, ecKey, true, claimsAt(epoch)))
	hdr.Set("X-Pomerium-Claim-Email", "alice@example.com")
	hdr.Set("X-Pomerium-Claim-Name", "Alice Liddell")
	get(t, s.Handler(), "/api/user", hdr)
	got := s.LastHeaders()
	if got.Get("X-Pomerium-Claim-Email") != "alice@example.com" || got.Get("X-Pomerium-Claim-Name") != "Alice Liddell" {
		t.Errorf("LastHeaders = %v", got)
	}
	got.Del("X-Pomerium-Claim-Email")
	if s.LastHeaders().Get("X-Pomerium-Claim-Email") == "" {
		t.Error("LastHeaders returned the server's own map")
	}
}
