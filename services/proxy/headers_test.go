package proxy

import (
	"net/http"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// forgeryRoutes is a route that passes identity with map-form claim
// headers and set_request_headers, and one that passes none.
func forgeryRoutes(upstream string) string {
	return routeYAML("id: app", "from: http://app.test", "to: "+upstream, "pass_identity_headers: true",
		"set_request_headers: {X-Tenant: acme, X-Pomerium-Route: app}", "remove_request_headers: [X-Secret]") +
		routeYAML("id: noid", "from: http://noid.test", "to: "+upstream, "pass_identity_headers: false")
}

const forgeryClaims = "jwt_claims_headers: {X-Role: role, X-Groups: groups, X-Pomerium-Claim-Email: email}"

// gatehouseOnly lists, for each header name gatehouse may write, the only
// values the upstream may see under any spelling of it (none: absent).
type gatehouseOnly map[string][]string

// check fails for every header of got whose name folds (case, '_' for
// '-') to one of g's and whose values are not exactly g's.
func (g gatehouseOnly) check(t *testing.T, got http.Header) {
	t.Helper()
	for k, vs := range got {
		for name, want := range g {
			if !strings.EqualFold(strings.ReplaceAll(k, "_", "-"), name) {
				continue
			}
			if k != name || strings.Join(vs, "\x00") != strings.Join(want, "\x00") {
				t.Errorf("upstream got %s: %q, want only gatehouse's %s: %q", k, vs, name, want)
			}
		}
	}
	for name, want := range g {
		if len(want) > 0 && len(got[name]) == 0 {
			t.Errorf("upstream lacks %s (gatehouse set %q)", name, want)
		}
	}
}

// A client cannot send a header that gatehouse writes: jwt_claims_headers
// (map form, a claim this user lacks), set_request_headers and every
// X-Pomerium-* name, in any spelling, duplicated or not, whatever
// authorize answers.
func TestClientCannotForgeGatehouseHeaders(t *testing.T) {
	up := newUpstream(t, "app")
	cfg := parseConfig(t, forgeryClaims, forgeryRoutes(up.URL))
	// The user has groups but no role; authorize names no header to remove,
	// so only the proxy's own stripping keeps X-Role out.
	authz := newFakeAuthz(allowAll("x-pomerium-jwt-assertion", "real.jwt", "x-groups", "dev",
		"x-pomerium-claim-email", "ada@example.com"))
	h := newHarness(t, cfg, authz)

	forged := []string{
		"X-Role", "admin", "x-role", "root", "X_Role", "admin", "x_ROLE", "admin",
		"X-Groups", "admins", "X_Groups", "admins",
		"X-Tenant", "evil", "X-Tenant", "evil2", "X_Tenant", "evil",
		"X-Pomerium-Route", "evil", "X-Pomerium-Claim-Email", "mallory@evil.test",
		"X-Pomerium-Claim-Role", "admin", "x_pomerium_jwt_assertion", "forged",
		"X_Forwarded_For", "6.6.6.6", "x_forwarded_proto", "https", "X_Forwarded_Host", "evil.test",
		"Forwarded", "for=6.6.6.6", "X_Request_Id", "forged-id", "X-Request-Id", "req-1",
		"X-Secret", "s", "X_Secret", "s",
		"X-Keep", "kept",
	}
	forwarding := func(host string) gatehouseOnly {
		return gatehouseOnly{"X-Forwarded-For": {"127.0.0.1"}, "X-Forwarded-Proto": {"http"},
			"X-Forwarded-Host": {host}, "Forwarded": nil, "X-Request-Id": {"req-1"}}
	}
	for _, tc := range []struct {
		host string
		want gatehouseOnly
	}{
		{"app.test", gatehouseOnly{
			"X-Role": nil, "X-Groups": {"dev"}, "X-Tenant": {"acme"}, "X-Pomerium-Route": {"app"},
			"X-Pomerium-Claim-Email": {"ada@example.com"}, "X-Pomerium-Claim-Role": nil,
			"X-Pomerium-Jwt-Assertion": {"real.jwt"}, "X-Secret": nil,
		}},
		// pass_identity_headers off: no identity header at all, forged or
		// not. (X-Tenant is app's set_request_headers, not noid's: a
		// client's X-Tenant is the application's business there.)
		{"noid.test", gatehouseOnly{
			"X-Role": nil, "X-Groups": nil, "X-Pomerium-Route": nil,
			"X-Pomerium-Claim-Email": nil, "X-Pomerium-Jwt-Assertion": nil,
		}},
	} {
		t.Run(tc.host, func(t *testing.T) {
			resp, body := h.get(t, tc.host, "/", forged...)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			got := up.last(t).Header
			tc.want.check(t, got)
			forwarding(tc.host).check(t, got)
			if got.Get("X-Keep") != "kept" {
				t.Errorf("a header gatehouse does not write was dropped: %v", got)
			}
		})
	}
}

// Headers a client names in Connection are removed as hop-by-hop before
// gatehouse writes its own: naming one cannot make the upstream lose it.
func TestConnectionCannotDropGatehouseHeaders(t *testing.T) {
	up := newUpstream(t, "app")
	cfg := parseConfig(t, forgeryClaims, forgeryRoutes(up.URL))
	authz := newFakeAuthz(allowAll("x-pomerium-jwt-assertion", "real.jwt", "x-groups", "dev",
		"x-pomerium-claim-email", "ada@example.com"))
	h := newHarness(t, cfg, authz)

	resp, body := h.get(t, "app.test", "/",
		"Connection", "X-Pomerium-Jwt-Assertion, X-Pomerium-Claim-Email",
		"Connection", "x-groups,X-Tenant , X-Pomerium-Route, X-Request-Id, X-Forwarded-For, X-Hop",
		"X-Request-Id", "req-42", "X-Hop", "client hop-by-hop header")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got := up.last(t).Header
	gatehouseOnly{
		"X-Pomerium-Jwt-Assertion": {"real.jwt"}, "X-Pomerium-Claim-Email": {"ada@example.com"},
		"X-Groups": {"dev"}, "X-Tenant": {"acme"}, "X-Pomerium-Route": {"app"}, "X-Request-Id": {"req-42"},
		"X-Forwarded-For": {"127.0.0.1"},
	}.check(t, got)
	if v := got.Get("X-Hop"); v != "" {
		t.Errorf("a header the client named in Connection reached the upstream: X-Hop %q", v)
	}
}

// gatehouse's session credential never reaches an upstream, in any form
// authorize accepts it; other credentials of the application pass.
func TestSessionCredentialsNeverReachUpstream(t *testing.T) {
	up := newUpstream(t, "app")
	cfg := parseConfig(t, "", routeYAML("id: app", "from: http://app.test", "to: "+up.URL))
	h := newHarness(t, cfg, newFakeAuthz(allowAll()))

	for _, tc := range []struct {
		name        string
		path        string
		hdr         []string
		wantAuth    []string
		wantCookies string
		wantQuery   string
	}{
		{name: "cookie", hdr: []string{"Cookie", "theme=dark; _pomerium=h.a.ndle; _pomerium_pref=1"}, wantCookies: "theme=dark; _pomerium_pref=1"},
		{name: "cookie twice, two headers", hdr: []string{"Cookie", "_pomerium=a", "Cookie", "x=1; _pomerium=b"}, wantCookies: "x=1"},
		{name: "cookie with spaces", hdr: []string{"Cookie", "a=1;  _pomerium = x ;b=2"}, wantCookies: "a=1; b=2"},
		{name: "bearer", hdr: []string{"Authorization", "Bearer Pomerium-h.a.ndle"}},
		{name: "bearer, lower case", hdr: []string{"Authorization", "bearer pomerium-h.a.ndle"}},
		{name: "bearer, upper case", hdr: []string{"Authorization", "BEARER POMERIUM-h.a.ndle"}},
		{name: "pomerium scheme", hdr: []string{"Authorization", "Pomerium h.a.ndle"}},
		{name: "pomerium scheme, lower case", hdr: []string{"Authorization", "pomerium h.a.ndle"}},
		{name: "x-pomerium-authorization", hdr: []string{"X-Pomerium-Authorization", "h.a.ndle"}},
		{name: "other bearer stays", hdr: []string{"Authorization", "Bearer app-token"}, wantAuth: []string{"Bearer app-token"}},
		{name: "basic stays", hdr: []string{"Authorization", "Basic YTpi"}, wantAuth: []string{"Basic YTpi"}},
		{name: "two authorizations", hdr: []string{"Authorization", "Bearer Pomerium-h", "Authorization", "Bearer app-token"}, wantAuth: []string{"Bearer app-token"}},
		{name: "pomerium_jwt query", path: "/p?a=1&pomerium_jwt=h.a.ndle&b=%2F", wantQuery: "a=1&b=%2F"},
		{name: "pomerium_jwt query, encoded name", path: "/p?pomerium%5Fjwt=h.a.ndle&pomerium_jwt&b=2", wantQuery: "b=2"},
		{name: "pomerium_jwt query alone", path: "/p?pomerium_jwt=h.a.ndle", wantQuery: ""},
		{name: "other query stays", path: "/p?x=pomerium_jwt&pomerium_jwtx=1&a=%41", wantQuery: "x=pomerium_jwt&a=%41"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.path
			if p == "" {
				p = "/"
			}
			resp, body := h.get(t, "app.test", p, tc.hdr...)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			got := up.last(t)
			if a := got.Header["Authorization"]; strings.Join(a, "|") != strings.Join(tc.wantAuth, "|") {
				t.Errorf("upstream Authorization %q, want %q", a, tc.wantAuth)
			}
			if c := strings.Join(got.Header["Cookie"], "; "); c != tc.wantCookies {
				t.Errorf("upstream Cookie %q, want %q", c, tc.wantCookies)
			}
			if len(pomeriumKeys(got.Header)) > 0 {
				t.Errorf("upstream got %v", pomeriumKeys(got.Header))
			}
			if got.Query != tc.wantQuery {
				t.Errorf("upstream query %q, want %q", got.Query, tc.wantQuery)
			}
			if strings.Contains(strings.Join(flatten(got.Header), " "), "h.a.ndle") {
				t.Errorf("the handle reached the upstream: %v", got.Header)
			}
		})
	}
}

func pomeriumKeys(h http.Header) []string {
	var out []string
	for k := range h {
		if isPomeriumHeader(k) {
			out = append(out, k)
		}
	}
	return out
}

func flatten(h http.Header) []string {
	var out []string
	for k, vs := range h {
		out = append(out, k+": "+strings.Join(vs, ", "))
	}
	return out
}

// headers_to_remove from authorize is applied after gatehouse's headers,
// and never needs the client's help to take effect.
func TestHeadersToRemoveFromAuthorize(t *testing.T) {
	up := newUpstream(t, "app")
	cfg := parseConfig(t, forgeryClaims, forgeryRoutes(up.URL))
	authz := newFakeAuthz(func(*authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return okResponse([]string{"x-role", "x-app-internal"}, "x-pomerium-jwt-assertion", "jwt"), nil
	})
	h := newHarness(t, cfg, authz)
	h.get(t, "app.test", "/", "X-App-Internal", "client", "X-Role", "admin")
	got := up.last(t).Header
	if got.Get("X-App-Internal") != "" || got.Get("X-Role") != "" || got.Get("X-Pomerium-Jwt-Assertion") != "jwt" {
		t.Errorf("upstream headers %v", got)
	}
}

// A set_request_headers value with ${pomerium.*} values is authorize's to
// write (expanded): the proxy never sends the template text upstream,
// and the request headers a template reads travel in the Check.
func TestSetRequestHeadersTemplatesFromAuthorize(t *testing.T) {
	up := newUpstream(t, "app")
	cfg := parseConfig(t, "", routeYAML("id: app", "from: http://app.test", "to: "+up.URL,
		"set_request_headers: {X-Id-Token: '${pomerium.id_token}', X-Copy: '${pomerium.request.headers.X-Tenant}', X-Static: 'a$$b'}"))
	authz := newFakeAuthz(allowAll("x-id-token", "idp.id.token", "x-copy", "acme"))
	h := newHarness(t, cfg, authz)
	resp, body := h.get(t, "app.test", "/", "X-Tenant", "acme", "X-Id-Token", "forged")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got := up.last(t).Header
	if got.Get("X-Id-Token") != "idp.id.token" || got.Get("X-Copy") != "acme" || got.Get("X-Static") != "a$b" {
		t.Errorf("upstream headers %v", got)
	}
	if v := authz.last(t).GetAttributes().GetRequest().GetHttp().GetHeaders()["x-tenant"]; v != "acme" {
		t.Errorf("the Check lacks x-tenant: %q", v)
	}
}
