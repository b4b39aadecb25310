package authenticate

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/cryptutil"
)

func hostsConfig(t *testing.T, extra string) *state {
	t.Helper()
	shared, cookie := base64.StdEncoding.EncodeToString(cryptutil.RandomBytes(32)), base64.StdEncoding.EncodeToString(cryptutil.RandomBytes(32))
	yaml := fmt.Sprintf(`
services: authenticate
authenticate_service_url: https://auth.example.com
databroker_service_url: http://127.0.0.1:1
shared_secret: %s
cookie_secret: %s
idp_provider_url: https://idp.example.com
idp_client_id: x
idp_client_secret: y
routes:
  - from: https://app.example.com
    to: http://127.0.0.1:9
  - from: https://*.apps.example.com
    to: http://127.0.0.1:9
  - from: http://plain.example.com:8080
    to: http://127.0.0.1:9
  - from: https://pre*fix.example.org
    to: http://127.0.0.1:9
%s`, shared, cookie, extra)
	cfg, err := config.Parse([]byte(yaml), "t.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	st := newState(cfg, nil)
	if st.err != nil {
		t.Fatal(st.err)
	}
	return st
}

func TestCheckRedirect(t *testing.T) {
	st := hostsConfig(t, "")
	withList := hostsConfig(t, "programmatic_redirect_domain_whitelist: [cli.example.net, tools.example.net]")
	tests := []struct {
		name         string
		st           *state
		url          string
		programmatic bool
		ok           bool
	}{
		{"route host", st, "https://app.example.com/dashboard?x=1", false, true},
		{"route host, explicit default port", st, "https://app.example.com:443/", false, true},
		{"route host, upper case", st, "https://APP.example.com/", false, true},
		{"route host, trailing dot", st, "https://app.example.com./", false, true},
		{"route host, other port", st, "https://app.example.com:8443/", false, true},
		{"wildcard route", st, "https://grafana.apps.example.com/", false, true},
		{"wildcard needs a label", st, "https://apps.example.com/", false, false},
		{"wildcard is one label", st, "https://a.b.apps.example.com/", false, false},
		{"wildcard inside a label", st, "https://pre-and-fix.example.org/", false, true},
		{"wildcard inside a label, wrong suffix", st, "https://pre-and-fox.example.org/", false, false},
		{"route with a port", st, "http://plain.example.com:8080/", false, true},
		{"route with a port, other port", st, "http://plain.example.com:9090/", false, false},
		{"route with a port, no port", st, "http://plain.example.com/", false, false},
		{"authenticate host", st, "https://auth.example.com/.pomerium/", false, true},
		{"foreign host", st, "https://evil.example.com/", false, false},
		{"suffix look-alike", st, "https://app.example.com.evil.com/", false, false},
		{"prefix look-alike", st, "https://evilapp.example.com/", false, false},
		{"userinfo trick", st, "https://app.example.com@evil.com/", false, false},
		{"credentials", st, "https://user:pw@app.example.com/", false, false},
		{"javascript", st, "javascript:alert(1)", false, false},
		{"data", st, "data:text/html,hi", false, false},
		{"scheme-relative", st, "//evil.example.com/", false, false},
		{"relative", st, "/dashboard", false, false},
		{"empty", st, "", false, false},
		{"not a URL", st, "https://%zz/", false, false},
		{"programmatic default localhost", st, "http://localhost:8000/cb", true, true},
		{"localhost is not a browser target", st, "http://localhost:8000/cb", false, false},
		{"programmatic to a route host", st, "https://app.example.com/cb", true, false},
		{"programmatic to the authenticate host", st, "https://auth.example.com/cb", true, false},
		{"programmatic to a loopback address", st, "http://127.0.0.1:8000/cb", true, true},
		{"programmatic to IPv6 loopback", st, "http://[::1]:8000/cb", true, true},
		{"programmatic to a localhost subdomain", st, "http://app.localhost:8000/cb", true, false},
		{"programmatic to a foreign host", st, "https://evil.example.com/cb", true, false},
		{"programmatic whitelist", withList, "https://cli.example.net/cb", true, true},
		{"programmatic whitelist is exact", withList, "https://tools.example.net/cb", true, true},
		{"programmatic whitelist has no subdomains", withList, "https://x.tools.example.net/cb", true, false},
		{"whitelist replaces the localhost default", withList, "http://localhost:8000/cb", true, false},
		{"whitelist is for programmatic logins only", withList, "https://cli.example.net/cb", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := tt.st.checkRedirect(tt.url, tt.programmatic)
			if tt.ok && (err != nil || u == nil) {
				t.Fatalf("refused %q: %v", tt.url, err)
			}
			if !tt.ok && !errors.Is(err, ErrRedirectNotAllowed) {
				t.Fatalf("allowed %q (err %v)", tt.url, err)
			}
		})
	}
}

func TestMatchLabel(t *testing.T) {
	tests := []struct {
		pattern, label string
		want           bool
	}{
		{"app", "app", true},
		{"app", "apps", false},
		{"*", "x", true},
		{"*", "", false},
		{"a*", "abc", true},
		{"a*", "ba", false},
		{"*c", "abc", true},
		{"*c", "cb", false},
		{"a*c", "ac", true},
		{"a*c", "abbc", true},
		{"a*b*c", "a1b2c", true},
		{"a*b*c", "acb", false},
		{"ab*ba", "aba", false},
	}
	for _, tt := range tests {
		if got := matchLabel(tt.pattern, tt.label); got != tt.want {
			t.Errorf("matchLabel(%q, %q) = %t, want %t", tt.pattern, tt.label, got, tt.want)
		}
	}
}

// TestNewStateKeepsDiscovery checks that a configuration reload that leaves
// the IdP settings alone keeps the discovered provider, and that one that
// changes them starts afresh.
func TestNewStateKeepsDiscovery(t *testing.T) {
	a := hostsConfig(t, "")
	same := newState(hostsConfig(t, "signout_redirect_url: https://app.example.com/bye").cfg, a)
	if same.idp != a.idp {
		t.Error("an unrelated change dropped the discovered identity provider")
	}
	changed := newState(hostsConfig(t, "idp_scopes: [openid, email]").cfg, a)
	if changed.idp == a.idp {
		t.Error("new idp_scopes kept the old identity provider")
	}
	if !slices.Equal(changed.idp.settings.scopes, []string{"openid", "email"}) {
		t.Errorf("scopes = %v", changed.idp.settings.scopes)
	}
}

func TestIDPSettings(t *testing.T) {
	google := hostsConfig(t, "idp_provider: google").idp.settings
	if slices.Contains(google.scopes, "offline_access") || google.params["access_type"] != "offline" {
		t.Errorf("google: scopes %v, params %v; want access_type=offline instead of offline_access", google.scopes, google.params)
	}
	auth0 := hostsConfig(t, "idp_provider: auth0").idp.settings
	if auth0.issuer != "https://idp.example.com/" {
		t.Errorf("auth0 issuer %q, want a trailing slash", auth0.issuer)
	}
	noOpenID := hostsConfig(t, "idp_scopes: [email]").idp.settings
	if noOpenID.scopes[0] != "openid" {
		t.Errorf("scopes %v: openid must always be asked for", noOpenID.scopes)
	}
	if !azureMultiTenant("https://login.microsoftonline.com/common/v2.0") || azureMultiTenant("https://login.microsoftonline.com/0000-tenant/v2.0") {
		t.Error("azureMultiTenant")
	}
}
