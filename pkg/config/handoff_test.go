package config

import (
	"net/url"
	"strings"
	"testing"
)

func TestProgrammaticWhitelistEntries(t *testing.T) {
	const key = "programmatic_redirect_domain_whitelist"
	for _, ok := range []string{"localhost", "cli.example.com", "127.0.0.1", "::1", "[localhost, tools.example.net]"} {
		if _, err := Parse([]byte(base+key+": "+ok+"\n"), "config.yaml", env(nil)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, tt := range []struct{ value, want string }{
		{"https://cli.example.com/cb", `expected a host name, not a URL: write "cli.example.com"`},
		{"localhost:8000", `without a port (any port is allowed): write "localhost"`},
		{"'*.example.com'", "wildcards are not supported"},
		{"'cli example.com'", "not a valid host name"},
		{"'a..b'", "not a valid host name"},
	} {
		_, err := Parse([]byte(base+key+": "+tt.value+"\n"), "config.yaml", env(nil))
		if err == nil || !strings.Contains(err.Error(), "line 4: "+key) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want line 4: %s … %s", tt.value, err, key, tt.want)
		}
	}
}

func TestCookieSecureFor(t *testing.T) {
	yes, no := true, false
	for _, tt := range []struct {
		url    string
		secure *bool
		want   bool
	}{
		{"https://app.example.com", nil, true},
		{"http://app.localhost:8080", nil, false},
		{"https://app.example.com", &no, true}, // never taken away from https
		{"http://app.localhost", &yes, true},
		{"", nil, false},
	} {
		c := &Config{Options: Options{InsecureServer: true, CookieSecure: tt.secure}}
		var u *url.URL
		if tt.url != "" {
			u, _ = url.Parse(tt.url)
		}
		if got := c.CookieSecureFor(u); got != tt.want {
			t.Errorf("CookieSecureFor(%q) with cookie_secure %v = %v, want %v", tt.url, tt.secure, got, tt.want)
		}
	}
}
