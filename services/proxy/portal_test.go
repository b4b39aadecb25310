package proxy

import (
	"encoding/json"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// /robots.txt on a route host disallows every crawler, as Pomerium's
// does, unless a public route serves it; /ping and /healthz answer on
// every host.
func TestRobotsAndPing(t *testing.T) {
	up := newUpstream(t, "app")
	cfg := parseConfig(t, "", routeYAML("id: app", "from: http://app.test", "to: "+up.URL)+
		routeYAML("id: pub", "from: http://public.test", "to: "+up.URL, "allow_public_unauthenticated_access: true"))
	h := newHarness(t, cfg, newFakeAuthz(allowAll()))
	resp, body := h.get(t, "app.test", "/robots.txt")
	if resp.StatusCode != 200 || body != "User-agent: *\nDisallow: /\n" || up.count() != 0 {
		t.Errorf("robots.txt: %d %q", resp.StatusCode, body)
	}
	if resp, body := h.get(t, "public.test", "/robots.txt"); resp.StatusCode != 200 || body != "hello from app" {
		t.Errorf("public route's robots.txt: %d %q", resp.StatusCode, body)
	}
	for _, host := range []string{"app.test", "unknown.test"} {
		for _, p := range []string{"/ping", "/healthz"} {
			if resp, body := h.get(t, host, p); resp.StatusCode != 200 || body != "OK\n" {
				t.Errorf("%s%s: %d %q", host, p, resp.StatusCode, body)
			}
		}
	}
}

// /.pomerium/routes and /.pomerium/api/v1/routes list the routes this user
// may open (authorize decides each), with name, description and logo_url.
func TestRoutesPortal(t *testing.T) {
	up := newUpstream(t, "app")
	cfg := parseConfig(t, "", routeYAML("id: app", "from: http://app.test", "to: "+up.URL, "name: The App",
		"description: 'Where <work> happens'", "logo_url: https://cdn.test/app.svg")+
		routeYAML("id: docs", "from: http://docs.test", "prefix: /guide", "to: "+up.URL)+
		routeYAML("id: secret", "from: http://secret.test", "to: "+up.URL, "name: Secret"))
	jwt := testJWT(map[string]any{"email": "ada@example.com", "sub": "u1"})
	authz := newFakeAuthz(func(req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		if req.GetAttributes().GetRequest().GetHttp().GetHeaders()["cookie"] != "_pomerium=h" {
			return deniedResponse(401, "{}"), nil
		}
		if req.GetAttributes().GetContextExtensions()["route_id"] == "secret" {
			return deniedResponse(403, "no"), nil
		}
		return okResponse(nil, "x-pomerium-jwt-assertion", jwt), nil
	})
	h := newHarness(t, cfg, authz)
	resp, body := h.get(t, "app.test", "/.pomerium/api/v1/routes", "Cookie", "_pomerium=h")
	var got struct {
		Routes []struct{ ID, Name, Description, LogoURL, From string } `json:"routes"`
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &got) != nil {
		t.Fatalf("routes API: %d %s", resp.StatusCode, body)
	}
	if len(got.Routes) != 2 || got.Routes[0].Name != "The App" || got.Routes[0].Description != "Where <work> happens" ||
		got.Routes[1].From != "http://docs.test/guide" || got.Routes[1].Name != "docs.test" {
		t.Errorf("routes %+v", got.Routes)
	}
	if !strings.Contains(body, `"logo_url":"https://cdn.test/app.svg"`) {
		t.Errorf("no logo_url: %s", body)
	}
	resp, body = h.get(t, "app.test", "/.pomerium/routes", "Cookie", "_pomerium=h", "Accept", "text/html")
	if resp.StatusCode != 200 || !strings.Contains(body, "The App") || !strings.Contains(body, "Where &lt;work&gt; happens") ||
		strings.Contains(body, "Secret") || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("routes page: %d %s", resp.StatusCode, body)
	}
	// Not signed in: no list.
	if resp, body := h.get(t, "app.test", "/.pomerium/api/v1/routes"); resp.StatusCode != 401 || strings.Contains(body, "The App") {
		t.Errorf("anonymous: %d %s", resp.StatusCode, body)
	}
	if up.count() != 0 {
		t.Error("the portal reached an upstream")
	}
}
