package config

import (
	"testing"
)

// FuzzParse feeds Parse arbitrary YAML: whatever a file (or a hot reload,
// or an Ingress annotation turned into config) holds, Parse returns a
// config or an error naming the problem, never panics, and never accepts a
// config without the secrets its services need.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		base,
		guide,
		guide + "routes:\n  - from: https://a.example.com\n    to: http://127.0.0.1:1\n    policy: {allow: {or: [{email: {is: a@example.com}}]}}\n",
		guide + "routes:\n  - from: https://a.example.com\n    to: [http://a:1, http://b:2]\n    prefix: /x\n    regex: '^/y'\n",
		guide + "jwt_claims_headers: {X-Role: role}\ncertificates: []\n",
		"services: all\n",
		"services: proxy\nshared_secret: !!binary AAAA\n",
		"routes: {}\n",
		"- a\n- b\n",
		"shared_secret: [1, 2]\n",
		"\xff\xfe",
		"a: &x [*x]\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.yaml", nil)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error with no message")
			}
			return
		}
		if len(cfg.SharedKey) != 32 {
			t.Fatalf("accepted a config without a 32-byte shared key (%d bytes)", len(cfg.SharedKey))
		}
		if (cfg.Runs(ServiceProxy) || cfg.Runs(ServiceAuthenticate)) && len(cfg.CookieKey) != 32 {
			t.Fatalf("accepted a proxy/authenticate config without a cookie key")
		}
	})
}
