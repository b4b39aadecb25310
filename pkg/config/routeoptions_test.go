package config_test

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/pkg/config"
)

// parseRoute parses base() with one route and returns the route or the error.
func parseRoute(t *testing.T, route string) (*config.Route, error) {
	t.Helper()
	cfg, err := config.Parse([]byte(base().Route(route).YAML()), "config.yaml", nil)
	if err != nil {
		return nil, err
	}
	return &cfg.Routes[0], nil
}

func wantRouteError(t *testing.T, route, want string) {
	t.Helper()
	_, err := parseRoute(t, route)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s\ngot %v, want an error with %q", route, err, want)
	}
}

func TestH2CTo(t *testing.T) {
	r, err := parseRoute(t, "from: http://a.localhost\nto: h2c://127.0.0.1:9000\nallow_any_authenticated_user: true")
	if err != nil || !r.H2C() {
		t.Fatalf("h2c route: %v", err)
	}
	wantRouteError(t, "from: http://a.localhost\nto: [h2c://127.0.0.1:9000, http://127.0.0.1:9001]\nallow_any_authenticated_user: true",
		"h2c:// upstreams cannot be mixed")
}

func TestHostPathRegexRewritePatternChecked(t *testing.T) {
	wantRouteError(t, "from: http://a.localhost\nto: http://127.0.0.1:1\nallow_any_authenticated_user: true\nhost_path_regex_rewrite_pattern: '('",
		"host_path_regex_rewrite_pattern: not a valid regular expression")
}

func TestRewriteResponseHeadersChecked(t *testing.T) {
	r, err := parseRoute(t, "from: http://a.localhost\nto: http://127.0.0.1:1\nallow_any_authenticated_user: true\nrewrite_response_headers: [{header: Location, prefix: 'http://a/', value: 'https://b/'}]")
	if err != nil || len(r.RewriteResponseHeaders) != 1 || r.RewriteResponseHeaders[0].Value != "https://b/" {
		t.Fatalf("%v %+v", err, r)
	}
	wantRouteError(t, "from: http://a.localhost\nto: http://127.0.0.1:1\nallow_any_authenticated_user: true\nrewrite_response_headers: [{prefix: x}]", "rewrite_response_headers[0].header: required")
	wantRouteError(t, "from: http://a.localhost\nto: http://127.0.0.1:1\nallow_any_authenticated_user: true\nrewrite_response_headers: [{header: a, prefx: x}]", "prefx: unknown option")
}

// A route has to, redirect or response; redirect and response are
// checked as Pomerium checks them.
func TestRedirectAndResponseRoutes(t *testing.T) {
	r, err := parseRoute(t, "from: http://a.localhost\nallow_any_authenticated_user: true\nredirect: {https_redirect: true, response_code: 308}")
	if err != nil || r.Redirect == nil || *r.Redirect.ResponseCode != 308 {
		t.Fatalf("%v %+v", err, r)
	}
	r, err = parseRoute(t, "from: http://a.localhost\nallow_any_authenticated_user: true\nresponse: {status: 200, body: ok}")
	if err != nil || r.Response == nil || r.Response.Body != "ok" {
		t.Fatalf("%v %+v", err, r)
	}
	const head = "from: http://a.localhost\nallow_any_authenticated_user: true\n"
	wantRouteError(t, head, "to: required: the upstream URL (or a list of them), or a redirect or response")
	wantRouteError(t, head+"redirect: {response_code: 200}", "unsupported redirect response code 200")
	wantRouteError(t, head+"redirect: {port_redirect: 70000}", "redirect.port_redirect")
	wantRouteError(t, head+"redirect: {scheme_redirect: ftp}", "redirect.scheme_redirect")
	wantRouteError(t, head+"redirect: {path_redirect: x}", "redirect.path_redirect: must start with /")
	wantRouteError(t, head+"redirect: {https_redirekt: true}", "https_redirekt: unknown option")
	wantRouteError(t, head+"response: {body: x}", "response.status: expected an HTTP status from 200 to 599")
	cfg, err := config.Parse([]byte(base().Route(head+"to: http://127.0.0.1:1\nresponse: {status: 200}").YAML()), "config.yaml", nil)
	if err != nil || !strings.Contains(strings.Join(cfg.Warnings(), "\n"), "response wins") {
		t.Errorf("to and response: %v", err)
	}
}

func TestHeadersWithUnderscoresActionValues(t *testing.T) {
	for v, want := range map[string]config.UnderscoreAction{"": config.UnderscoresAllow, "allow": config.UnderscoresAllow,
		"DROP_HEADER": config.UnderscoresDropHeader, "reject_request": config.UnderscoresRejectRequest} {
		b := base()
		if v != "" {
			b.Set("headers_with_underscores_action", v)
		}
		if got := b.Config(t).UnderscoreHeaders; got != want {
			t.Errorf("%q: %v, want %v", v, got, want)
		}
	}
	_, err := config.Parse([]byte(base().Set("headers_with_underscores_action", "drop").YAML()), "config.yaml", nil)
	if err == nil || !strings.Contains(err.Error(), "headers_with_underscores_action: expected allow, drop_header or reject_request") {
		t.Errorf("got %v", err)
	}
}

func TestLoadBalancingPolicyValues(t *testing.T) {
	const head = "from: http://a.localhost\nto: http://127.0.0.1:1\nallow_any_authenticated_user: true\n"
	for v, want := range map[string]config.LBPolicy{"": config.LBRoundRobin, "round_robin": config.LBRoundRobin, "RANDOM": config.LBRandom,
		"least_request": config.LBLeastRequest, "ring_hash": config.LBRingHash, "maglev": config.LBMaglev} {
		r, err := parseRoute(t, head+"load_balancing_policy: '"+v+"'")
		if err != nil || r.LB() != want {
			t.Errorf("%q: %v %v", v, err, r)
		}
	}
	wantRouteError(t, head+"load_balancing_policy: cluster_provided", "load_balancing_policy: expected round_robin, random, least_request, ring_hash or maglev")
}

// bearer_token_format: default is Pomerium's meaning (and gatehouse's);
// the IdP-token forms are refused with the reason, globally and per route.
func TestBearerTokenFormat(t *testing.T) {
	for _, v := range []string{"default"} {
		if _, err := config.Parse([]byte(base().Set("bearer_token_format", v).YAML()), "config.yaml", nil); err != nil {
			t.Errorf("%s: %v", v, err)
		}
		if _, err := parseRoute(t, "from: http://a.localhost\nto: http://127.0.0.1:1\nallow_any_authenticated_user: true\nbearer_token_format: "+v); err != nil {
			t.Errorf("route %s: %v", v, err)
		}
	}
	for _, v := range []string{"idp_access_token", "idp_identity_token"} {
		_, err := config.Parse([]byte(base().Set("bearer_token_format", v).YAML()), "config.yaml", nil)
		if err == nil || !strings.Contains(err.Error(), "bearer_token_format: "+v+" is refused: gatehouse accepts only its own session handles") {
			t.Errorf("%s: %v", v, err)
		}
		wantRouteError(t, "from: http://a.localhost\nto: http://127.0.0.1:1\nallow_any_authenticated_user: true\nbearer_token_format: "+v, "is refused")
	}
	_, err := config.Parse([]byte(base().Set("bearer_token_format", "opaque").YAML()), "config.yaml", nil)
	if err == nil || !strings.Contains(err.Error(), `expected default, idp_access_token or idp_identity_token, got "opaque"`) {
		t.Errorf("opaque: %v", err)
	}
}
