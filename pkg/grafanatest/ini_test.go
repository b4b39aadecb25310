package grafanatest

import (
	"strings"
	"testing"
	"time"
)

func TestParseINIGuideBlocks(t *testing.T) {
	const jwksURL = "https://auth.localhost.pomerium.io/.well-known/pomerium/jwks.json"
	basic, err := ParseINI([]byte(GuideBasicINI))
	if err != nil {
		t.Fatal(err)
	}
	if basic.HeaderName != "X-Pomerium-Jwt-Assertion" || basic.EmailClaim != "email" || basic.UsernameClaim != "" ||
		basic.JWKSetURL != jwksURL || basic.CacheTTL != time.Hour || basic.AutoSignUp || basic.AllowInsecureJWKSURL {
		t.Errorf("basic block = %+v", basic)
	}

	scale, err := ParseINI([]byte(GuideScaleINI))
	if err != nil {
		t.Fatal(err)
	}
	if scale.UsernameClaim != "sub" || !scale.AutoSignUp || scale.AutoAssignOrg == nil || !*scale.AutoAssignOrg ||
		scale.AutoAssignOrgRole != "Editor" || scale.JWKSetURL != jwksURL {
		t.Errorf("auto sign-up block = %+v", scale)
	}

	file, err := ParseINI([]byte(GuideFileINI))
	if err != nil {
		t.Fatal(err)
	}
	if file.JWKSetFile != "/etc/grafana/jwks.json" || file.JWKSetURL != "" || file.CacheTTL != time.Hour {
		t.Errorf("jwk_set_file block = %+v", file)
	}
	// New reads the file at once, so a missing one stops start-up as in Grafana.
	if _, err := New(file); err == nil {
		t.Error("New accepted a jwk_set_file that does not exist")
	}
}

func TestParseINIOtherKeys(t *testing.T) {
	ini := `# a full grafana.ini has many other sections
app_mode = development
instance_name = test

[server]
http_port = 3000

[security]
admin_user = root
admin_password = "pa;ss"

[auth.jwt]
enabled = true
header_name = X-Pomerium-Jwt-Assertion
username_claim = sub
jwk_set_url = http://127.0.0.1:1/jwks.json
cache_ttl = 1d
expect_claims = {"iss": "grafana.localhost.pomerium.io", "aud": ["a", "b"]}
tls_client_ca = /certs/ca.pem

[users]
auto_assign_org = false
`
	cfg, err := ParseINI([]byte(ini))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.AllowInsecureJWKSURL || cfg.AdminUser != "root" || cfg.AdminPassword != "pa;ss" || cfg.CacheTTL != 24*time.Hour ||
		cfg.TLSClientCA != "/certs/ca.pem" || cfg.AutoAssignOrg == nil || *cfg.AutoAssignOrg {
		t.Errorf("config = %+v", cfg)
	}
	if cfg.ExpectClaims["iss"] != "grafana.localhost.pomerium.io" || len(cfg.ExpectClaims["aud"].([]any)) != 2 {
		t.Errorf("expect_claims = %v", cfg.ExpectClaims)
	}
}

func TestParseINIEnvOverrides(t *testing.T) {
	env := map[string]string{
		"GF_AUTH_JWT_TLS_CLIENT_CA":      "/certs/ca.pem",
		"GF_AUTH_JWT_JWK_SET_URL":        "https://authenticate.localhost.pomerium.io/.well-known/pomerium/jwks.json",
		"GF_USERS_AUTO_ASSIGN_ORG_ROLE":  "Admin",
		"GF_SECURITY_ADMIN_PASSWORD":     "changed",
		"GF_DEFAULT_APP_MODE":            "production",
		"GF_AUTH_JWT_SOMETHING_UNKNOWN_": "ignored",
	}
	cfg, err := ParseINIEnv([]byte(GuideScaleINI), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLSClientCA != "/certs/ca.pem" || !strings.HasPrefix(cfg.JWKSetURL, "https://authenticate.") ||
		cfg.AutoAssignOrgRole != "Admin" || cfg.AdminPassword != "changed" {
		t.Errorf("config = %+v", cfg)
	}
}

func TestParseINIErrors(t *testing.T) {
	for name, ini := range map[string]string{
		"not enabled":        "[auth.jwt]\nheader_name = X\nemail_claim = email\njwk_set_file = x\n",
		"disabled":           "[auth.jwt]\nenabled = false\nheader_name = X\nemail_claim = email\njwk_set_file = x\n",
		"http url":           strings.Replace(GuideBasicINI, "https://", "http://", 1),
		"bad cache_ttl":      strings.Replace(GuideBasicINI, "60m", "soon", 1),
		"bad expect_claims":  GuideBasicINI + "expect_claims = iss=x\n",
		"bad auto_sign_up":   GuideBasicINI + "auto_sign_up = maybe\n",
		"unterminated":       "[auth.jwt\nenabled = true\n",
		"line without equal": "[auth.jwt]\nenabled\n",
	} {
		if _, err := ParseINI([]byte(ini)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
