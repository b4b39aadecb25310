package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse/gatehouse/pkg/cryptutil"
	"github.com/gatehouse/gatehouse/pkg/handoff"
)

func TestForgedPomeriumHeadersNeverReachUpstream(t *testing.T) {
	up := newUpstream(t, "app")
	cfg := parseConfig(t, "", routeYAML("id: app", "from: http://app.test", "to: "+up.URL, "pass_identity_headers: true"))
	authz := newFakeAuthz(allowAll("x-pomerium-jwt-assertion", "real.jwt.value", "x-pomerium-claim-email", "real@example.com"))
	h := newHarness(t, cfg, authz)

	resp, _ := h.get(t, "app.test", "/x",
		"X-Pomerium-Jwt-Assertion", "forged",
		"X-Pomerium-Claim-Email", "forged@evil.test",
		"X-Pomerium-Claim-Groups", "admins",
		"X-Pomerium-Anything", "forged",
		"x_pomerium_jwt_assertion", "forged-underscore",
		"X-POMERIUM-Sub", "forged",
		"X-Pomerium-Authorization", "handle-from-client",
	)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := up.last(t).Header
	for k, vs := range got {
		if isPomeriumHeader(k) {
			switch k {
			case "X-Pomerium-Jwt-Assertion":
				if len(vs) != 1 || vs[0] != "real.jwt.value" {
					t.Errorf("upstream got %s = %q, want only authorize's", k, vs)
				}
			case "X-Pomerium-Claim-Email":
				if len(vs) != 1 || vs[0] != "real@example.com" {
					t.Errorf("upstream got %s = %q, want only authorize's", k, vs)
				}
			default:
				t.Errorf("forged header reached upstream: %s = %q", k, vs)
			}
		}
	}
	// Authorize saw the credential, but none of the forged identity.
	hdrs := authz.last(t).GetAttributes().GetRequest().GetHttp().GetHeaders()
	if hdrs["x-pomerium-authorization"] != "handle-from-client" {
		t.Errorf("Check lacks x-pomerium-authorization: %v", hdrs)
	}
	for k := range hdrs {
		if isPomeriumHeader(k) && k != "x-pomerium-authorization" {
			t.Errorf("Check carried client header %s", k)
		}
	}
}

func TestCheckRequestShape(t *testing.T) {
	up := newUpstream(t, "app")
	cfg := parseConfig(t, "", routeYAML("id: app", "from: http://app.test", "to: "+up.URL))
	authz := newFakeAuthz(allowAll())
	h := newHarness(t, cfg, authz)
	h.get(t, "app.test:8080", "/a%20b/c?q=1&r=2", "Cookie", "a=1", "Cookie", "b=2", "X-Request-Id", "req-123", "Authorization", "Bearer Pomerium-abc")

	req := authz.last(t)
	hr := req.GetAttributes().GetRequest().GetHttp()
	if hr.GetId() != "req-123" || hr.GetMethod() != "GET" || hr.GetHost() != "app.test:8080" ||
		hr.GetPath() != "/a%20b/c?q=1&r=2" || hr.GetScheme() != "http" {
		t.Errorf("http attributes: %+v", hr)
	}
	if hr.GetHeaders()["cookie"] != "a=1; b=2" {
		t.Errorf("cookie header = %q", hr.GetHeaders()["cookie"])
	}
	if hr.GetHeaders()["authorization"] != "Bearer Pomerium-abc" {
		t.Errorf("authorization header = %q", hr.GetHeaders()["authorization"])
	}
	for k := range hr.GetHeaders() {
		if k != strings.ToLower(k) {
			t.Errorf("header key %q is not lower-case", k)
		}
	}
	if got := req.GetAttributes().GetSource().GetAddress().GetSocketAddress().GetAddress(); got != "127.0.0.1" {
		t.Errorf("source address = %q", got)
	}
	ext := req.GetAttributes().GetContextExtensions()
	if ext["route_id"] != "app" || ext["internal"] != "" {
		t.Errorf("context extensions = %v", ext)
	}
	// The upstream gets the request id, and neither the Pomerium bearer
	// credential nor anything forged.
	got := up.last(t)
	if got.Header.Get("X-Request-Id") != "req-123" {
		t.Errorf("upstream X-Request-Id = %q", got.Header.Get("X-Request-Id"))
	}
	if got.Header.Get("Authorization") != "" {
		t.Errorf("upstream got the Pomerium credential: %q", got.Header.Get("Authorization"))
	}
}

func TestOKHeadersAndIdentity(t *testing.T) {
	up := newUpstream(t, "app")
	routes := routeYAML("id: pass", "from: http://pass.test", "to: "+up.URL, "pass_identity_headers: true",
		"set_request_headers: {X-Route: on}", "remove_request_headers: [X-Secret]") +
		routeYAML("id: nopass", "from: http://nopass.test", "to: "+up.URL, "pass_identity_headers: false")
	cfg := parseConfig(t, "jwt_claims_headers: {X-Email: email}", routes)
	authz := newFakeAuthz(func(*authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return okResponse([]string{"x-remove-me"},
			"x-pomerium-jwt-assertion", "jwt", "x-pomerium-claim-name", "Ada", "x-email", "ada@example.com", "x-extra", "1"), nil
	})
	h := newHarness(t, cfg, authz)

	h.get(t, "pass.test", "/", "X-Remove-Me", "client", "X-Secret", "s", "X-Keep", "k",
		"Cookie", "_pomerium=handle; theme=dark")
	got := up.last(t).Header
	for k, want := range map[string]string{
		"X-Pomerium-Jwt-Assertion": "jwt", "X-Pomerium-Claim-Name": "Ada", "X-Email": "ada@example.com",
		"X-Extra": "1", "X-Route": "on", "X-Keep": "k", "X-Remove-Me": "", "X-Secret": "", "Cookie": "theme=dark",
	} {
		if g := got.Get(k); g != want {
			t.Errorf("pass: upstream %s = %q, want %q", k, g, want)
		}
	}

	h.get(t, "nopass.test", "/")
	got = up.last(t).Header
	for _, k := range []string{"X-Pomerium-Jwt-Assertion", "X-Pomerium-Claim-Name", "X-Email"} {
		if g := got.Get(k); g != "" {
			t.Errorf("nopass: upstream got identity header %s = %q", k, g)
		}
	}
	if got.Get("X-Extra") != "1" {
		t.Errorf("nopass: non-identity header dropped")
	}
}

func TestDeniedPassedThrough(t *testing.T) {
	up := newUpstream(t, "app")
	cfg := parseConfig(t, "", routeYAML("id: app", "from: http://app.test", "to: "+up.URL))
	authz := newFakeAuthz(nil)
	h := newHarness(t, cfg, authz)
	tests := []struct {
		name   string
		resp   *authv3.CheckResponse
		status int
		header map[string]string
		body   string
	}{
		{"redirect", deniedResponse(302, "", "Location", "https://auth.example.test/.pomerium/sign_in?x=1"), 302,
			map[string]string{"Location": "https://auth.example.test/.pomerium/sign_in?x=1"}, ""},
		{"unauthenticated", deniedResponse(401, `{"error":"sign in"}`, "Content-Type", "application/json", "WWW-Authenticate", "Pomerium"), 401,
			map[string]string{"Content-Type": "application/json", "Www-Authenticate": "Pomerium"}, `{"error":"sign in"}`},
		{"forbidden", deniedResponse(403, "<h1>Forbidden</h1>", "Content-Type", "text/html; charset=utf-8"), 403,
			map[string]string{"Content-Type": "text/html; charset=utf-8"}, "<h1>Forbidden</h1>"},
	}
	bare := deniedResponse(403, "")
	bare.HttpResponse = nil
	tests = append(tests, struct {
		name   string
		resp   *authv3.CheckResponse
		status int
		header map[string]string
		body   string
	}{"no denied response", bare, 403, nil, ""})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			authz.set(func(*authv3.CheckRequest) (*authv3.CheckResponse, error) { return tt.resp, nil })
			before := up.count()
			resp, body := h.get(t, "app.test", "/secret")
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			for k, v := range tt.header {
				if resp.Header.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, resp.Header.Get(k), v)
				}
			}
			if tt.name == "no denied response" {
				if !strings.Contains(body, "not allowed") {
					t.Errorf("body %q, want the 403 page", body)
				}
			} else if body != tt.body {
				t.Errorf("body %q, want %q", body, tt.body)
			}
			if up.count() != before {
				t.Error("a denied request reached the upstream")
			}
		})
	}
}

func TestCheckErrorFailsClosedAndRecovers(t *testing.T) {
	up := newUpstream(t, "app")
	cfg := parseConfig(t, "", routeYAML("id: app", "from: http://app.test", "to: "+up.URL))
	authz := newFakeAuthz(func(*authv3.CheckRequest) (*authv3.CheckResponse, error) { return nil, errUnavailable })
	h := newHarness(t, cfg, authz)

	resp, body := h.get(t, "app.test", "/", "Accept", "application/json")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
	var e errorBody
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Status != 503 || e.RequestID == "" {
		t.Errorf("JSON error body %q (%v)", body, err)
	}
	resp, body = h.get(t, "app.test", "/")
	if resp.StatusCode != 503 || !strings.Contains(body, "<html") || !strings.Contains(body, resp.Header.Get("X-Request-Id")) {
		t.Errorf("HTML 503 page: %d %q", resp.StatusCode, body)
	}
	if up.count() != 0 {
		t.Fatal("request passed while authorize was down")
	}
	// The user pages ask authorize through the same step, and fail closed alike.
	for _, p := range []string{"/.pomerium/user", "/.pomerium/"} {
		if resp, body := h.get(t, "app.test", p); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s: status %d, want 503\n%s", p, resp.StatusCode, body)
		}
	}
	// An authorizer answering nothing is not a yes.
	authz.set(func(*authv3.CheckRequest) (*authv3.CheckResponse, error) { return nil, nil })
	if resp, _ := h.get(t, "app.test", "/"); resp.StatusCode != http.StatusServiceUnavailable || up.count() != 0 {
		t.Fatalf("nil response: status %d", resp.StatusCode)
	}

	authz.set(allowAll())
	resp, body = h.get(t, "app.test", "/")
	if resp.StatusCode != 200 || body != "hello from app" {
		t.Fatalf("after recovery: %d %q", resp.StatusCode, body)
	}
}

func TestCheckTimeoutFailsClosed(t *testing.T) {
	up := newUpstream(t, "app")
	cfg := parseConfig(t, "", routeYAML("id: app", "from: http://app.test", "to: "+up.URL))
	authz := newFakeAuthz(allowAll())
	authz.hang.Store(true)
	h := newHarness(t, cfg, authz, func(o *Options) { o.CheckTimeout = 100 * time.Millisecond })
	start := time.Now()
	resp, _ := h.get(t, "app.test", "/")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	authz.hang.Store(false)
	if resp, _ := h.get(t, "app.test", "/"); resp.StatusCode != 200 {
		t.Fatalf("after recovery: %d", resp.StatusCode)
	}
}

func TestRewrites(t *testing.T) {
	up := newUpstream(t, "app")
	upBase := up.URL + "/base"
	routes := routeYAML("id: prefix", "from: http://app.test", "prefix: /api/", "prefix_rewrite: /v2/", "to: "+up.URL) +
		routeYAML("id: prefix-root", "from: http://app.test", "prefix: /strip", "prefix_rewrite: /", "to: "+up.URL) +
		routeYAML("id: regex", "from: http://app.test", "prefix: /users/", `regex_rewrite_pattern: "^/users/([^/]+)/profile$"`,
			`regex_rewrite_substitution: "/profiles/\\1"`, "to: "+up.URL) +
		routeYAML("id: preserve", "from: http://preserve.test", "preserve_host_header: true", "to: "+up.URL) +
		routeYAML("id: hostrw", "from: http://hostrw.test", "host_rewrite: internal.svc", "to: "+up.URL) +
		routeYAML("id: base", "from: http://base.test", "to: "+upBase) +
		routeYAML("id: path", "from: http://app.test", "path: /exact", "to: "+up.URL) +
		routeYAML("id: catchall", "from: http://app.test", "to: "+up.URL)
	cfg := parseConfig(t, "", routes)
	h := newHarness(t, cfg, newFakeAuthz(allowAll()))
	upHost := strings.TrimPrefix(up.URL, "http://")
	tests := []struct {
		host, path       string
		wantPath, wantQ  string
		wantHost, wantRt string
	}{
		{"app.test", "/api/users?x=1", "/v2/users", "x=1", upHost, "prefix"},
		{"app.test", "/strip/me", "/me", "", upHost, "prefix-root"},
		{"app.test", "/users/ada/profile", "/profiles/ada", "", upHost, "regex"},
		{"app.test", "/users/ada/other", "/users/ada/other", "", upHost, "regex"},
		{"preserve.test", "/p", "/p", "", "preserve.test", "preserve"},
		{"hostrw.test", "/h", "/h", "", "internal.svc", "hostrw"},
		{"base.test", "/x/y", "/base/x/y", "", upHost, "base"},
		{"app.test", "/exact", "/exact", "", upHost, "path"},
		{"app.test", "/public/../exact", "/exact", "", upHost, "path"}, // dot segments are removed first
		{"app.test", "/a%3Bb", "/a;b", "", upHost, "catchall"},
	}
	for _, tt := range tests {
		resp, _ := h.get(t, tt.host, tt.path)
		if resp.StatusCode != 200 {
			t.Errorf("%s%s: status %d", tt.host, tt.path, resp.StatusCode)
			continue
		}
		got := up.last(t)
		if got.Path != tt.wantPath || got.Query != tt.wantQ || got.Host != tt.wantHost {
			t.Errorf("%s%s: upstream got path %q query %q host %q, want %q %q %q", tt.host, tt.path, got.Path, got.Query, got.Host, tt.wantPath, tt.wantQ, tt.wantHost)
		}
		if rid := h.authz.last(t).GetAttributes().GetContextExtensions()["route_id"]; rid != tt.wantRt {
			t.Errorf("%s%s: route %q, want %q", tt.host, tt.path, rid, tt.wantRt)
		}
	}
	// Reserved characters keep their spelling, encoded or not, with and
	// without a rewrite (pathnorm_test.go has %2F, which is refused by
	// default).
	for _, c := range []struct{ in, want string }{
		{"/a%3Bb/c!d", "/a%3Bb/c!d"},
		{"/api/a%3Bb/(c)", "/v2/a%3Bb/(c)"},
	} {
		h.get(t, "app.test", c.in)
		if got := up.last(t); got.URI != c.want {
			t.Errorf("%s: upstream got %q, want %q", c.in, got.URI, c.want)
		}
	}
}

func TestNotFoundAndInternalEndpoints(t *testing.T) {
	up := newUpstream(t, "app")
	cfg := parseConfig(t, "", routeYAML("id: app", "from: http://app.test", "prefix: /app", "to: "+up.URL))
	h := newHarness(t, cfg, newFakeAuthz(allowAll()))

	resp, body := h.get(t, "nowhere.test", "/")
	if resp.StatusCode != 404 || !strings.Contains(body, "No route") || !strings.Contains(body, "Request ID") {
		t.Errorf("404 page: %d %q", resp.StatusCode, body)
	}
	resp, body = h.get(t, "app.test", "/other", "X-Requested-With", "XMLHttpRequest", "X-Request-Id", "abc")
	var e errorBody
	if resp.StatusCode != 404 || json.Unmarshal([]byte(body), &e) != nil || e.RequestID != "abc" {
		t.Errorf("404 JSON: %d %q", resp.StatusCode, body)
	}
	for _, p := range []string{"/ping", "/healthz"} {
		if resp, body := h.get(t, "anything.test", p); resp.StatusCode != 200 || body != "OK\n" {
			t.Errorf("%s: %d %q", p, resp.StatusCode, body)
		}
	}
	resp, body = h.get(t, "app.test", "/.well-known/pomerium/jwks.json")
	if resp.StatusCode != 200 || !strings.Contains(body, `"keys"`) || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("jwks: %d %q", resp.StatusCode, body)
	}
	resp, body = h.get(t, "app.test", "/.well-known/pomerium")
	if resp.StatusCode != 200 || !strings.Contains(body, "http://app.test/.well-known/pomerium/jwks.json") {
		t.Errorf("well-known: %d %q", resp.StatusCode, body)
	}
	if resp, _ := h.get(t, "nowhere.test", "/.well-known/pomerium/jwks.json"); resp.StatusCode != 404 {
		t.Errorf("jwks on a host without routes: %d", resp.StatusCode)
	}
	if h.authz.calls.Load() != 0 {
		t.Errorf("internal endpoints sent %d Checks", h.authz.calls.Load())
	}
}

func TestSecurityResponseHeaders(t *testing.T) {
	up := newUpstream(t, "app")
	routes := routeYAML("id: app", "from: http://app.test", "to: "+up.URL, "set_response_headers: {X-Route: r, X-Frame-Options: DENY}") +
		routeYAML("id: off", "from: http://off.test", "to: "+up.URL, "set_response_headers: {disable: 'true'}")
	h := newHarness(t, parseConfig(t, "", routes), newFakeAuthz(allowAll()))
	resp, _ := h.get(t, "app.test", "/")
	if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Xss-Protection") != "1; mode=block" || resp.Header.Get("X-Route") != "r" {
		t.Errorf("headers: %v", resp.Header)
	}
	if resp.Header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS sent over plain HTTP")
	}
	resp, _ = h.get(t, "off.test", "/")
	if resp.Header.Get("X-Frame-Options") != "" || resp.Header.Get("X-Xss-Protection") != "" {
		t.Errorf("disable: %v", resp.Header)
	}
	if resp.Header.Get("X-Upstream") != "app" {
		t.Error("upstream headers lost")
	}
}

func TestForwardedHeaders(t *testing.T) {
	up := newUpstream(t, "app")
	route := routeYAML("id: app", "from: http://app.test", "to: "+up.URL)
	t.Run("no trusted hops", func(t *testing.T) {
		authz := newFakeAuthz(allowAll())
		h := newHarness(t, parseConfig(t, "", route), authz)
		h.get(t, "app.test", "/", "X-Forwarded-For", "6.6.6.6", "X-Forwarded-Proto", "https")
		got := up.last(t).Header
		if got.Get("X-Forwarded-For") != "127.0.0.1" || got.Get("X-Forwarded-Proto") != "http" || got.Get("X-Forwarded-Host") != "app.test" {
			t.Errorf("forwarded: %v", got)
		}
		if ip := authz.last(t).GetAttributes().GetSource().GetAddress().GetSocketAddress().GetAddress(); ip != "127.0.0.1" {
			t.Errorf("client ip %q", ip)
		}
	})
	t.Run("one trusted hop", func(t *testing.T) {
		authz := newFakeAuthz(allowAll())
		h := newHarness(t, parseConfig(t, "xff_num_trusted_hops: 1", route), authz)
		h.get(t, "app.test", "/", "X-Forwarded-For", "6.6.6.6, 203.0.113.7", "X-Forwarded-Proto", "https")
		got := up.last(t).Header
		if got.Get("X-Forwarded-For") != "203.0.113.7, 127.0.0.1" || got.Get("X-Forwarded-Proto") != "https" {
			t.Errorf("forwarded: %v", got)
		}
		req := authz.last(t)
		if ip := req.GetAttributes().GetSource().GetAddress().GetSocketAddress().GetAddress(); ip != "203.0.113.7" {
			t.Errorf("client ip %q", ip)
		}
		if req.GetAttributes().GetRequest().GetHttp().GetScheme() != "https" {
			t.Error("scheme from trusted X-Forwarded-Proto not used")
		}
	})
}

func TestCallbackSetsCookieAndRedirects(t *testing.T) {
	up := newUpstream(t, "app")
	cfg := parseConfig(t, "cookie_domain: example.test\ncookie_expire: 2h",
		routeYAML("id: app", "from: http://app.example.test", "to: "+up.URL)+
			routeYAML("id: other", "from: http://other.test", "to: "+up.URL))
	h := newHarness(t, cfg, newFakeAuthz(allowAll()))
	cipher, err := cryptutil.NewCipher(cfg.CookieSealKey)
	if err != nil {
		t.Fatal(err)
	}
	// Each callback comes with its browser's binding cookie.
	var binding handoff.Binding
	callback := func(target string, now time.Time) string {
		u, _ := url.Parse(target)
		binding = handoff.NewBinding()
		cb := handoff.CallbackURL(u, "the-handle", binding.Param(), cfg.URLKey, cipher, now)
		return cb.RequestURI()
	}
	bindingCookie := func() string { c := binding.Cookie(false); return c.Name + "=" + c.Value }

	resp, _ := h.get(t, "app.example.test", callback("http://app.example.test/dash?x=1", time.Now()), "Cookie", bindingCookie())
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "http://app.example.test/dash?x=1" {
		t.Fatalf("callback: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var cookies []*http.Cookie
	for _, c := range resp.Cookies() {
		if !strings.HasPrefix(c.Name, handoff.BindingCookiePrefix) {
			cookies = append(cookies, c)
		}
	}
	if len(cookies) != 1 {
		t.Fatalf("cookies: %v", cookies)
	}
	c := cookies[0]
	if c.Name != "_pomerium" || c.Value != "the-handle" || !c.HttpOnly || c.Secure || c.SameSite != http.SameSiteLaxMode ||
		c.MaxAge != 7200 || c.Domain != "example.test" || c.Path != "/" {
		t.Errorf("cookie: %+v", c)
	}

	// A host outside cookie_domain gets a host-only cookie.
	resp, _ = h.get(t, "other.test", callback("http://other.test/", time.Now()), "Cookie", bindingCookie())
	if c := sessionSetCookie(resp); resp.StatusCode != 302 || c == nil || c.Domain != "" {
		t.Errorf("other host: %d %v", resp.StatusCode, resp.Cookies())
	}

	bad := []struct{ name, host, uri string }{
		{"expired", "app.example.test", callback("http://app.example.test/", time.Now().Add(-time.Hour))},
		{"other host", "other.test", callback("http://app.example.test/", time.Now())},
		{"tampered", "app.example.test", strings.Replace(callback("http://app.example.test/", time.Now()), "pomerium_redirect_uri=", "pomerium_redirect_uri=x", 1)},
		{"unsigned", "app.example.test", "/.pomerium/callback/?pomerium_redirect_uri=http%3A%2F%2Fapp.example.test%2F"},
		{"garbage", "app.example.test", "/.pomerium/callback/?%zz"},
	}
	for _, tt := range bad {
		resp, body := h.get(t, tt.host, tt.uri, "Cookie", bindingCookie())
		if resp.StatusCode != 400 || sessionSetCookie(resp) != nil || !strings.Contains(body, "sign-in link") {
			t.Errorf("%s: %d cookies %v", tt.name, resp.StatusCode, resp.Cookies())
		}
	}
}

func TestProgrammaticLogin(t *testing.T) {
	up := newUpstream(t, "app")
	cfg := parseConfig(t, "", routeYAML("id: app", "from: http://app.test", "to: "+up.URL))
	h := newHarness(t, cfg, newFakeAuthz(allowAll()))

	redirect := "http://localhost:8000/cb"
	resp, body := h.get(t, "app.test", "/.pomerium/api/v1/login?pomerium_redirect_uri="+url.QueryEscape(redirect))
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("login: %d %q", resp.StatusCode, body)
	}
	u, err := url.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	if err := cryptutil.VerifySignedURL(cfg.URLKey, u, time.Now()); err != nil {
		t.Errorf("sign-in URL does not verify: %v", err)
	}
	q := u.Query()
	if u.Scheme+"://"+u.Host != testAuthURL || u.Path != handoff.SignInPath ||
		q.Get(handoff.QueryRedirectURI) != redirect || q.Get(handoff.QueryIsProgrammatic) != "true" {
		t.Errorf("sign-in URL %s", u)
	}
	// Every loopback address, as authenticate agrees (same check).
	for _, ok := range []string{"http://127.0.0.1:9/cb", "http://[::1]:9/cb"} {
		if resp, _ := h.get(t, "app.test", "/.pomerium/api/v1/login?pomerium_redirect_uri="+url.QueryEscape(ok)); resp.StatusCode != 200 {
			t.Errorf("redirect %q: %d, want 200", ok, resp.StatusCode)
		}
	}
	// A route host is refused, this one included: its upstream would get
	// pomerium_jwt in its request line and logs.
	for _, bad := range []string{"http://app.test/x", "http://sub.localhost/cb", "", "https://evil.test/steal", "javascript:alert(1)", "/relative", "http://user@localhost/"} {
		if resp, _ := h.get(t, "app.test", "/.pomerium/api/v1/login?pomerium_redirect_uri="+url.QueryEscape(bad)); resp.StatusCode != 400 {
			t.Errorf("redirect %q: %d, want 400", bad, resp.StatusCode)
		}
	}
	if h.authz.calls.Load() != 0 {
		t.Error("programmatic login sent a Check")
	}
}

func TestUserPages(t *testing.T) {
	up := newUpstream(t, "app")
	cfg := parseConfig(t, "", routeYAML("id: app", "from: http://app.test", "prefix: /app", "to: "+up.URL))
	jwt := testJWT(map[string]any{"email": "ada@example.com", "name": "Ada <Lovelace>", "groups": []string{"eng", "admins"}, "sub": "u1", "iss": "app.test"})
	authz := newFakeAuthz(func(req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		if req.GetAttributes().GetContextExtensions()["internal"] != "true" {
			return deniedResponse(403, "not internal"), nil
		}
		if req.GetAttributes().GetRequest().GetHttp().GetHeaders()["cookie"] != "_pomerium=h" {
			return deniedResponse(302, "", "Location", testAuthURL+"/.pomerium/sign_in"), nil
		}
		return okResponse(nil, "x-pomerium-jwt-assertion", jwt), nil
	})
	h := newHarness(t, cfg, authz)

	resp, body := h.get(t, "app.test", "/.pomerium/", "Cookie", "_pomerium=h")
	if resp.StatusCode != 200 || !strings.Contains(body, "ada@example.com") || !strings.Contains(body, "Ada &lt;Lovelace&gt;") ||
		!strings.Contains(body, "eng, admins") || !strings.Contains(body, "/.pomerium/sign_out") {
		t.Errorf("user page: %d %s", resp.StatusCode, body)
	}
	if rid := authz.last(t).GetAttributes().GetContextExtensions()["route_id"]; rid != "app" {
		t.Errorf("route id %q", rid)
	}
	resp, body = h.get(t, "app.test", "/.pomerium/user", "Cookie", "_pomerium=h")
	var claims map[string]any
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &claims) != nil || claims["email"] != "ada@example.com" {
		t.Errorf("user JSON: %d %s", resp.StatusCode, body)
	}
	// /.pomerium/jwt is off unless runtime_flags turns it on, as in Pomerium.
	resp, body = h.get(t, "app.test", "/.pomerium/jwt", "Cookie", "_pomerium=h")
	if resp.StatusCode != 404 || strings.Contains(body, jwt) {
		t.Errorf("jwt without the runtime flag: %d %q", resp.StatusCode, body)
	}
	if _, body := h.get(t, "app.test", "/.pomerium/", "Cookie", "_pomerium=h"); strings.Contains(body, `href="/.pomerium/jwt"`) {
		t.Error("the user page links to a disabled /.pomerium/jwt")
	}
	hj := newHarness(t, parseConfig(t, "runtime_flags: {pomerium_jwt_endpoint: true}",
		routeYAML("id: app", "from: http://app.test", "prefix: /app", "to: "+up.URL)), authz)
	resp, body = hj.get(t, "app.test", "/.pomerium/jwt", "Cookie", "_pomerium=h")
	if resp.StatusCode != 200 || body != jwt || resp.Header.Get("Content-Type") != "application/jwt" {
		t.Errorf("jwt: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, _ = h.get(t, "app.test", "/.pomerium/")
	if resp.StatusCode != 302 || resp.Header.Get("Location") != testAuthURL+"/.pomerium/sign_in" {
		t.Errorf("not signed in: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := h.get(t, "app.test", "/.pomerium"); resp.StatusCode != 302 || resp.Header.Get("Location") != "/.pomerium/" {
		t.Errorf("/.pomerium: %d", resp.StatusCode)
	}
	if resp, _ := h.get(t, "app.test", "/.pomerium/nope"); resp.StatusCode != 404 {
		t.Errorf("/.pomerium/nope: %d", resp.StatusCode)
	}
	if up.count() != 0 {
		t.Error("a /.pomerium/ page reached the upstream")
	}
}

func TestSignOut(t *testing.T) {
	up := newUpstream(t, "app")
	cfg := parseConfig(t, "", routeYAML("id: app", "from: http://app.test", "to: "+up.URL))
	h := newHarness(t, cfg, newFakeAuthz(allowAll()))
	form := "csrf_token=" + url.QueryEscape(handoff.SignOutToken(cfg.CookieKey, "h"))
	resp := h.do(t, http.MethodPost, "app.test", "/.pomerium/sign_out", strings.NewReader(form),
		"Cookie", "_pomerium=h", "Content-Type", "application/x-www-form-urlencoded")
	resp.Body.Close()
	if resp.StatusCode != 302 {
		t.Fatalf("sign out: %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Scheme+"://"+loc.Host != testAuthURL || loc.Path != handoff.SignOutPath ||
		loc.Query().Get(handoff.QueryRedirectURI) != "http://app.test"+handoff.SignedOutPath {
		t.Errorf("Location %q, want the sign-out to end on this host's signed-out page", resp.Header.Get("Location"))
	}
	if err := cryptutil.VerifySignedURL(cfg.URLKey, loc, time.Now()); err != nil {
		t.Errorf("sign-out URL does not verify: %v", err)
	}
	cs := resp.Cookies()
	if len(cs) != 1 || cs[0].Name != "_pomerium" || cs[0].MaxAge >= 0 {
		t.Errorf("cookie not cleared: %v", cs)
	}

	// Where the sign-out ends: a page that says so and offers to sign in
	// again, without asking authorize (there is no session to ask about).
	resp, body := h.get(t, "app.test", handoff.SignedOutPath, "Accept", "text/html")
	if resp.StatusCode != 200 || !strings.Contains(body, "You are signed out") || !strings.Contains(body, `href="/">Sign in again`) ||
		resp.Header.Get("X-Request-Id") == "" || !strings.Contains(body, resp.Header.Get("X-Request-Id")) {
		t.Errorf("signed-out page: %d\n%s", resp.StatusCode, body)
	}
	if up.count() != 0 {
		t.Error("the signed-out page reached the upstream")
	}
}

func TestHelpers(t *testing.T) {
	for in, want := range map[string]bool{
		"X-Pomerium-Jwt-Assertion": true, "x_pomerium_claim_email": true, "X-POMERIUM-X": true,
		"X-Pomerium": false, "X-Pomeriumx-a": false, "Authorization": false,
	} {
		if isPomeriumHeader(in) != want {
			t.Errorf("isPomeriumHeader(%q) != %v", in, want)
		}
	}
	if got := envoySubstitution(`/a/\1/b/\12$x`); got != "/a/${1}/b/${12}$$x" {
		t.Errorf("envoySubstitution = %q", got)
	}
	for _, tt := range []struct {
		domain, host, want string
	}{
		{"example.test", "app.example.test:8443", "example.test"},
		{".example.test", "example.test", "example.test"},
		{"example.test", "badexample.test", ""},
		{"", "app.test", ""},
	} {
		if got := cookieDomainFor(tt.domain, tt.host); got != tt.want {
			t.Errorf("cookieDomainFor(%q, %q) = %q", tt.domain, tt.host, got)
		}
	}
	r, _ := http.NewRequest("GET", "http://x/", nil)
	r.RemoteAddr = "10.0.0.1:1234"
	r.Header.Set("X-Forwarded-For", "1.1.1.1, 2.2.2.2, 3.3.3.3")
	for hops, want := range map[int]string{0: "10.0.0.1", 1: "3.3.3.3", 2: "2.2.2.2", 3: "1.1.1.1", 4: "10.0.0.1"} {
		if got, _ := clientIP(r, hops); got != want {
			t.Errorf("clientIP hops=%d = %q, want %q", hops, got, want)
		}
	}
	r.Header.Set("X-Forwarded-For", "not-an-ip")
	if got, _ := clientIP(r, 1); got != "10.0.0.1" {
		t.Errorf("clientIP with a bad entry = %q", got)
	}
}

// A down authorize refuses every request, but writes one error line per
// kind of failure per interval, not one per request (issue 13: 6,718 lines
// in 11 s under load).
func TestCheckErrorsAreLoggedOncePerInterval(t *testing.T) {
	up := newUpstream(t, "app")
	cfg := parseConfig(t, "", routeYAML("id: app", "from: http://app.test", "to: "+up.URL))
	authz := newFakeAuthz(func(*authv3.CheckRequest) (*authv3.CheckResponse, error) { return nil, errUnavailable })
	var logs bytes.Buffer
	var mu sync.Mutex
	h := newHarness(t, cfg, authz, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
	})
	for range 50 {
		if resp, _ := h.get(t, "app.test", "/", "Accept", "application/json"); resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503", resp.StatusCode)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logs.String(), "authorize check failed"); n != 1 {
		t.Fatalf("%d error lines for 50 identical failures, want 1:\n%s", n, logs.String())
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
