package config

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/testutil"
)

const (
	secret       = "93pDpOHbb0pg+nEAHTZS1COZMt/53VNFXDp/hkyGHCg=" // base64 of 32 random bytes
	cookieSecret = "HmVs8hCfDZ2PW46zvbj4j7k2jZhVb3Tuq0Rxsvtxl8I=" // another: cookie_secret must differ
)

// base is a valid split-proxy-free config: databroker only.
const base = `
services: databroker
shared_secret: ` + secret + `
`

const guide = `
authenticate_service_url: https://authenticate.localhost.pomerium.io
shared_secret: ` + secret + `
cookie_secret: ` + cookieSecret + `
insecure_server: true
idp_provider: oidc
idp_provider_url: https://idp.example.com
idp_client_id: gatehouse
idp_client_secret: s3cret
jwt_claims_headers: email,name
routes:
  - from: https://grafana.localhost.pomerium.io
    to: http://grafana:3000
    pass_identity_headers: true
    policy:
      - allow:
          or:
            - domain:
                is: example.com
`

func env(m map[string]string) Environ {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseGuideConfig(t *testing.T) {
	cfg, err := Parse([]byte(guide), "config.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Runs(ServiceProxy) || !cfg.Runs(ServiceDataBroker) {
		t.Fatalf("services all: %v", cfg.ServiceSet)
	}
	r := cfg.Routes[0]
	if r.FromURL.Host != "grafana.localhost.pomerium.io" || r.ToURLs[0].URL.Host != "grafana:3000" || !cfg.PassIdentityHeadersFor(&r) {
		t.Fatalf("route: %+v", r)
	}
	want := ClaimsHeaders{"X-Pomerium-Claim-Email": "email", "X-Pomerium-Claim-Name": "name"}
	if len(cfg.JWTClaimsHeaders) != 2 || cfg.JWTClaimsHeaders["X-Pomerium-Claim-Email"] != want["X-Pomerium-Claim-Email"] {
		t.Fatalf("jwt_claims_headers = %v", cfg.JWTClaimsHeaders)
	}
	if cfg.CookieName != "_pomerium" || cfg.CookieExpire.Std() != 14*time.Hour || cfg.DefaultUpstreamTimeout.Std() != 30*time.Second {
		t.Fatalf("defaults: %q %v", cfg.CookieName, cfg.CookieExpire)
	}
	if strings.Join(cfg.IDPScopes, " ") != "openid profile email offline_access" {
		t.Fatalf("scopes %v", cfg.IDPScopes)
	}
}

func TestEnvironmentOverridesFile(t *testing.T) {
	cfg, err := Parse([]byte(guide), "", env(map[string]string{
		"JWT_CLAIMS_HEADERS":      "email,groups",
		"COOKIE_NAME":             "_gh",
		"PASS_IDENTITY_HEADERS":   "true",
		"IDP_SCOPES":              "openid,email",
		"COOKIE_EXPIRE":           "1h",
		"SET_RESPONSE_HEADERS":    "X-Frame-Options=DENY",
		"DATABROKER_SERVICE_URLS": "http://a:5443,http://b:5443",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.JWTClaimsHeaders["X-Pomerium-Claim-Groups"] != "groups" || cfg.JWTClaimsHeaders["X-Pomerium-Claim-Name"] != "" {
		t.Errorf("jwt_claims_headers = %v", cfg.JWTClaimsHeaders)
	}
	if cfg.CookieName != "_gh" || cfg.CookieExpire.Std() != time.Hour || *cfg.PassIdentityHeaders != true {
		t.Errorf("env: %q %v", cfg.CookieName, cfg.CookieExpire)
	}
	if len(cfg.IDPScopes) != 2 || cfg.SetResponseHeaders["X-Frame-Options"] != "DENY" || len(cfg.DataBrokerURLs) != 2 {
		t.Errorf("lists/maps: %v %v %v", cfg.IDPScopes, cfg.SetResponseHeaders, cfg.DataBrokerURLs)
	}
}

func TestEnvironmentOnly(t *testing.T) {
	cfg, err := Parse(nil, "", env(map[string]string{"SERVICES": "databroker", "SHARED_SECRET": secret}))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Runs(ServiceDataBroker) || cfg.Runs(ServiceProxy) || len(cfg.SharedKey) != 32 {
		t.Fatalf("got %v", cfg.ServiceSet)
	}
}

func TestClaimsHeadersMapForm(t *testing.T) {
	cfg, err := Parse([]byte(base+"jwt_claims_headers:\n  X-Email: email\n  X-Groups: groups\n"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.JWTClaimsHeaders["X-Email"] != "email" || cfg.JWTClaimsHeaders["X-Groups"] != "groups" {
		t.Fatalf("got %v", cfg.JWTClaimsHeaders)
	}
	// The list form names the header x-pomerium-claim-<claim> verbatim,
	// as Pomerium does: the underscore stays.
	cfg, err = Parse([]byte(base+"jwt_claims_headers: [email, given_name, email_verified, a.b]\n"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := ClaimsHeaders{"X-Pomerium-Claim-Email": "email", "X-Pomerium-Claim-Given_name": "given_name",
		"X-Pomerium-Claim-Email_verified": "email_verified", "X-Pomerium-Claim-A.b": "a.b"}
	if !reflect.DeepEqual(cfg.JWTClaimsHeaders, want) {
		t.Fatalf("got %v, want %v", cfg.JWTClaimsHeaders, want)
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ss := write("shared", secret+"\n")
	cs := write("cookie", cookieSecret)
	idp := write("idp", "client-secret\n")
	conn := write("redis", "redis://127.0.0.1:6379/0\n")
	cfg, err := Parse([]byte(`
shared_secret_file: `+ss+`
cookie_secret_file: `+cs+`
idp_client_secret_file: `+idp+`
databroker_storage_type: redis
databroker_storage_connection_string_file: `+conn+`
authenticate_service_url: https://auth.example.com
idp_provider_url: https://idp.example.com
idp_client_id: x
insecure_server: true
`), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.SharedKey) != 32 || len(cfg.CookieKey) != 32 || cfg.IDPClientSecret != "client-secret" || cfg.DataBrokerStorageConnectionString != "redis://127.0.0.1:6379/0" {
		t.Fatalf("got %q %q", cfg.IDPClientSecret, cfg.DataBrokerStorageConnectionString)
	}
	_, err = Parse([]byte("services: databroker\nshared_secret_file: /nonexistent/x\n"), "", nil)
	if err == nil || !strings.Contains(err.Error(), "shared_secret_file") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestValidationErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"unknown key with line", base + "shraed_secret: x\n", nil, []string{"line 4: shraed_secret: unknown option", `did you mean "shared_secret"`}},
		{"removed pomerium key", base + "cache_service_url: http://x\n", nil, []string{"line 4: cache_service_url: was removed from Pomerium"}},
		{"unsupported key", base + "databroker_cluster_node_id: a\n", nil, []string{"databroker_cluster_node_id: is a Pomerium option that gatehouse refuses: gatehouse's databroker replicas share Redis"}},
		{"short shared secret", "services: databroker\nshared_secret: MDEyMzQ1Njc4OQ==\n", nil, []string{"line 2: shared_secret: expected base64 of 32 random bytes, got 10 bytes"}},
		{"secret not base64", "services: databroker\nshared_secret: '!!!'\n", nil, []string{"shared_secret: expected base64 of 32 random bytes, got text that is not base64"}},
		{"missing shared secret", "services: databroker\n", nil, []string{"shared_secret: required"}},
		{"unknown service", "services: databroker,cache\nshared_secret: " + secret + "\n", nil, []string{`line 1: services: unknown service "cache"`}},
		{"unknown service from env", "", map[string]string{"SERVICES": "proxie", "SHARED_SECRET": secret}, []string{`services (environment variable SERVICES): unknown service "proxie"`}},
		{"bad duration", base + "cookie_expire: forever\n", nil, []string{"line 4: cookie_expire:", "expected a duration such as 30s or 14h"}},
		{"bad bool", base + "insecure_server: maybe\n", nil, []string{"line 4: insecure_server: expected true or false"}},
		{"bad url", "services: proxy\nshared_secret: " + secret + "\ncookie_secret: " + cookieSecret + "\ninsecure_server: true\nauthorize_service_url: http://a:5443\nauthenticate_service_url: auth.example.com\n", nil, []string{"line 6: authenticate_service_url: expected an absolute http:// or https:// URL"}},
		{"storage type", base + "databroker_storage_type: mongodb\n", nil, []string{`line 4: databroker_storage_type: expected memory, redis or postgres, got "mongodb"`}},
		{"postgres needs connection string", base + "databroker_storage_type: postgres\n", nil, []string{"databroker_storage_connection_string: required when databroker_storage_type is postgres"}},
		{"redis needs connection string", base + "databroker_storage_type: redis\n", nil, []string{"databroker_storage_connection_string: required"}},
		{"bad address", base + "grpc_address: 5443\n", nil, []string{"line 4: grpc_address: expected host:port"}},
		{"same site", base + "cookie_same_site: sometimes\n", nil, []string{"cookie_same_site: expected lax, strict or none"}},
		{"log level", base + "log_level: loud\n", nil, []string{"log_level: expected trace, debug, info, warn, error, fatal or off"}},
		{"not yaml", "services: [\n", nil, []string{"not valid YAML"}},
		{"top level list", "- a\n", nil, []string{"expected a map of options"}},
		{"key set twice", base + "services: proxy\n", nil, []string{"services: set twice"}},
		{"proxy needs authorize url", "services: proxy\nshared_secret: " + secret + "\ncookie_secret: " + cookieSecret + "\ninsecure_server: true\nauthenticate_service_url: https://a.example.com\n", nil, []string{"authorize_service_url: required"}},
		{"proxy needs certificate", "services: proxy\nshared_secret: " + secret + "\ncookie_secret: " + cookieSecret + "\nauthorize_service_url: http://a:5443\nauthenticate_service_url: https://a.example.com\n", nil, []string{"certificate: required unless insecure_server"}},
		{"authenticate needs idp", "services: authenticate\nshared_secret: " + secret + "\ncookie_secret: " + cookieSecret + "\ndatabroker_service_url: http://d:5443\nauthenticate_service_url: https://a.example.com\n", nil, []string{"idp_provider_url: required", "idp_client_id: required", "idp_client_secret: required"}},
		{"github provider not yet", "services: authenticate\nidp_provider: github\nshared_secret: " + secret + "\ncookie_secret: " + cookieSecret + "\ndatabroker_service_url: http://d:5443\nauthenticate_service_url: https://a.example.com\n", nil, []string{"line 2: idp_provider:", "not supported yet"}},
		{"route unknown key", base + "routes:\n  - from: https://a.example.com\n    to: http://a\n    pass_identity_header: true\n", nil, []string{"line 7: routes[0].pass_identity_header: unknown option", `did you mean "pass_identity_headers"`}},
		{"route missing from", base + "routes:\n  - to: http://a\n", nil, []string{"line 5: routes[0].from: required"}},
		{"route bad from", base + "routes:\n  - from: a.example.com\n    to: http://a\n", nil, []string{"line 5: routes[0].from: expected an http:// or https:// URL"}},
		{"route missing to", base + "routes:\n  - from: https://a.example.com\n", nil, []string{"routes[0].to: required"}},
		{"route bad weight", base + "routes:\n  - from: https://a.example.com\n    to: [\"http://a,x\"]\n", nil, []string{"routes[0].to: expected url,weight"}},
		{"route bad regex", base + "routes:\n  - from: https://a.example.com\n    to: http://a\n    regex: '('\n", nil, []string{"line 7: routes[0].regex: not a valid regular expression"}},
		{"route prefix and path", base + "routes:\n  - from: https://a.example.com\n    to: http://a\n    prefix: /a\n    path: /b\n", nil, []string{"set only one of prefix, path and regex"}},
		{"route prefix slash", base + "routes:\n  - from: https://a.example.com\n    to: http://a\n    prefix: a\n", nil, []string{"routes[0].prefix: must start with /"}},
		{"route policy scalar", base + "routes:\n  - from: https://a.example.com\n    to: http://a\n    policy: allow everyone\n", nil, []string{"line 7: routes[0].policy: expected a rule"}},
		{"route bad ppl criterion", base + "routes:\n  - from: https://a.example.com\n    to: http://a\n    policy:\n      - allow:\n          or:\n            - emial:\n                is: a@example.com\n", nil, []string{"line 10: routes[0].policy:", "emial"}},
		{"route bad ppl matcher", base + "routes:\n  - from: https://a.example.com\n    to: http://a\n    policy:\n      allow:\n        and:\n          - email:\n              iz: a@example.com\n", nil, []string{"routes[0].policy:", "iz"}},
		{"route bad timeout", base + "routes:\n  - from: https://a.example.com\n    to: http://a\n    timeout: soon\n", nil, []string{"line 7: routes[0].timeout:"}},
		{"several problems listed", "services: nope\nshared_secret: abc\nbogus: 1\n", nil, []string{"services: unknown service", "shared_secret: expected base64", "bogus: unknown option"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "config.yaml", env(tt.env))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestHotReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	write := func(s string) {
		// Write a new file and rename it, as editors and ConfigMaps do.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(base + "cookie_name: one\n")
	src, err := NewSource(path, nil, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	changes := make(chan *Config, 4)
	src.OnChange("test", Notify(func(_ context.Context, c *Config) { changes <- c }))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Watch(ctx)
	// fsnotify needs the watch in place before the first edit; Reload via
	// SIGHUP has no such race, so test both paths.
	write(base + "cookie_name: two\n")
	testutil.WaitFor(t, 10*time.Second, "a reload after a valid edit", func() bool {
		select {
		case c := <-changes:
			return c.CookieName == "two"
		case <-time.After(200 * time.Millisecond):
			write(base + "cookie_name: two\n") // the watch may not have been ready
			return false
		}
	})
	if src.Current().CookieName != "two" {
		t.Fatalf("current = %q", src.Current().CookieName)
	}

	// An invalid edit is refused and the running config stays.
	write(base + "cookie_name: three\nbogus_key: 1\n")
	if err := src.Reload(ctx); err == nil || !strings.Contains(err.Error(), "bogus_key") {
		t.Fatalf("invalid reload: %v", err)
	}
	if src.Current().CookieName != "two" {
		t.Fatalf("invalid edit applied: %q", src.Current().CookieName)
	}
	// A valid one via Reload (SIGHUP) applies.
	write(base + "cookie_name: four\n")
	if err := src.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if src.Current().CookieName != "four" {
		t.Fatalf("current = %q", src.Current().CookieName)
	}
}

// Each credential kind has its own key: none equals another or the raw
// secrets, and the same secrets always give the same keys (every replica
// of a deployment must agree).
func TestPurposeKeysAreDistinct(t *testing.T) {
	shared, cookie := make([]byte, 32), make([]byte, 32)
	rand.Read(shared)
	rand.Read(cookie)
	yaml := "shared_secret: " + base64.StdEncoding.EncodeToString(shared) + "\ncookie_secret: " + base64.StdEncoding.EncodeToString(cookie) +
		"\nservices: authenticate\ndatabroker_service_url: http://127.0.0.1:5443\nauthenticate_service_url: https://authenticate.example.com\nidp_provider_url: https://idp.example.com\nidp_client_id: x\nidp_client_secret: y\n"
	a, err := Parse([]byte(yaml), "config.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse([]byte(yaml), "config.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]byte{"shared": a.SharedKey, "cookie": a.CookieKey, "handle": a.HandleKey, "url": a.URLKey, "seal": a.CookieSealKey}
	seen := map[string]string{}
	for name, k := range keys {
		if len(k) != 32 {
			t.Fatalf("%s key: %d bytes", name, len(k))
		}
		if other, dup := seen[string(k)]; dup {
			t.Fatalf("%s key equals %s key", name, other)
		}
		seen[string(k)] = name
	}
	if !bytes.Equal(a.HandleKey, b.HandleKey) || !bytes.Equal(a.URLKey, b.URLKey) || !bytes.Equal(a.CookieSealKey, b.CookieSealKey) {
		t.Fatal("derived keys differ between two loads of one config")
	}
}

// Messages show values as written, without YAML's internals, and a value
// from an environment variable is reported as that variable, never as a
// line of the file.
func TestErrorMessagesNameTheSource(t *testing.T) {
	data := []byte("insecure_server: maybe\ncookie_expire: 5m\n")
	_, err := Parse(data, "c.yaml", func(k string) (string, bool) {
		v, ok := map[string]string{"COOKIE_EXPIRE": "abc", "XFF_NUM_TRUSTED_HOPS": "many"}[k]
		return v, ok
	})
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	for _, want := range []string{
		`line 1: insecure_server: expected true or false, got "maybe"`,
		`cookie_expire (environment variable COOKIE_EXPIRE): expected a duration such as 30s or 14h, got "abc"`,
		`xff_num_trusted_hops (environment variable XFF_NUM_TRUSTED_HOPS): expected a whole number, got "many"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("errors lack %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "!!") || strings.Contains(msg, "line 2") {
		t.Errorf("errors show YAML internals or the file line of an overridden option:\n%s", msg)
	}
}
