package config

import (
	"strings"
	"testing"
)

func TestHeaderTemplate(t *testing.T) {
	vals := map[string]string{VarIDToken: "ID", VarAccessToken: "AT", VarJWT: "JWT", VarRequestHeaderPrefix + "X-Tenant": "acme"}
	value := func(n string) string { return vals[n] }
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"${pomerium.id_token}", "ID"},
		{"$pomerium.id_token", "ID"},
		{"Bearer ${pomerium.access_token}!", "Bearer AT!"},
		{"${pomerium.jwt}", "JWT"},
		{"t=${pomerium.request.headers.x-tenant}", "t=acme"},
		{"[${pomerium.client_cert_fingerprint}]", "[]"},
		{"pa$word", "pa$word"},
		{"$$HOME $${pomerium.jwt}", "$HOME ${pomerium.jwt}"},
		{"${HOME}", "${HOME}"},
		{"trailing $", "trailing $"},
		{"${pomerium.id_token", "${pomerium.id_token"},
	} {
		tmpl, err := ParseHeaderTemplate(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := tmpl.Expand(value); got != tc.want {
			t.Errorf("%q expands to %q, want %q", tc.in, got, tc.want)
		}
	}
	// The session credential's headers, in any spelling, never feed an
	// upstream header.
	for _, bad := range []string{"${pomerium.secret}", "${pomerium.request.headers.cookie}", "$pomerium.request.headers.Authorization",
		"${pomerium.request.headers.X-Pomerium-Authorization}", "${pomerium.request.headers.x_pomerium_authorization}"} {
		if _, err := ParseHeaderTemplate(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	_, err := Parse([]byte(base+"routes:\n  - from: https://a.example.com\n    to: http://b\n    set_request_headers: {X-A: '${pomerium.idtoken}'}\n"), "", nil)
	if err == nil || !strings.Contains(err.Error(), "unknown value ${pomerium.idtoken}") {
		t.Errorf("got %v", err)
	}
}
