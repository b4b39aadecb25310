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
