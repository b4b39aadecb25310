package config

import (
	"bytes"
	"strings"
	"testing"
)

// Published, weak and reused secrets are refused at load, naming the
// option; they used to be accepted silently (issue 11, item 6).
func TestSecretsRefused(t *testing.T) {
	t.Parallel()
	const (
		publishedShared = "ZGV2LW9ubHktc2hhcmVkLXNlY3JldC0zMi1ieXRlcyE="
		publishedCookie = "ZGV2LW9ubHktY29va2llLXNlY3JldC0zMi1ieXRlcyE="
		zero            = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
		text            = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // "0123456789abcdef0123456789abcdef"
	)
	proxy := func(shared, cookie string) string {
		return "services: proxy\nshared_secret: " + shared + "\ncookie_secret: " + cookie +
			"\ninsecure_server: true\nauthorize_service_url: http://a:5443\nauthenticate_service_url: https://a.example.com\n"
	}
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"published shared_secret", proxy(publishedShared, cookieSecret), "line 2: shared_secret: not a random secret: it is the development shared_secret published"},
		{"published cookie_secret", proxy(secret, publishedCookie), "line 3: cookie_secret: not a random secret: it is the development cookie_secret published"},
		{"all-zero shared_secret", proxy(zero, cookieSecret), "line 2: shared_secret: not a random secret: it has only 1 distinct byte values"},
		{"text as shared_secret", proxy(text, cookieSecret), "line 2: shared_secret: not a random secret: it decodes to printable text"},
		{"cookie_secret equal to shared_secret", proxy(secret, secret), "line 3: cookie_secret: must differ from shared_secret"},
		{"published, databroker only", "services: databroker\nshared_secret: " + publishedShared + "\n", "shared_secret: not a random secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.yaml), "test.yaml", nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v\nwant containing %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "head -c32 /dev/urandom | base64") {
				t.Errorf("error does not say how to make a secret: %v", err)
			}
		})
	}
}

// With every service in one process and no secrets, gatehouse makes its own
// for the life of the process, as Pomerium's all-in-one does, and says so;
// a reload keeps them (a new key would end every session). A process that
// other processes call still must be given shared_secret.
func TestAllInOneGeneratesSecrets(t *testing.T) {
	t.Parallel()
	const allInOne = `
authenticate_service_url: https://authenticate.example.com
insecure_server: true
idp_provider_url: https://idp.example.com
idp_client_id: x
idp_client_secret: y
`
	first, err := Parse([]byte(allInOne), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.SharedKey) != 32 || len(first.CookieKey) != 32 || bytes.Equal(first.SharedKey, first.CookieKey) {
		t.Fatalf("generated keys: shared %d bytes, cookie %d bytes, equal %v", len(first.SharedKey), len(first.CookieKey), bytes.Equal(first.SharedKey, first.CookieKey))
	}
	warnings := strings.Join(first.Warnings(), "\n")
	for _, key := range []string{"shared_secret is not set", "cookie_secret is not set", "sessions end at every restart"} {
		if !strings.Contains(warnings, key) {
			t.Errorf("warnings %q do not say %q", warnings, key)
		}
	}
	again, err := Parse([]byte(allInOne), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.SharedKey, again.SharedKey) || !bytes.Equal(first.CookieKey, again.CookieKey) {
		t.Fatal("a second load in the same process made other secrets")
	}
	if _, err := Parse([]byte("services: authorize\ndatabroker_service_url: http://d:5443\nauthenticate_service_url: https://a.example.com\n"), "", nil); err == nil ||
		!strings.Contains(err.Error(), "shared_secret: required") {
		t.Fatalf("split authorize without shared_secret: err = %v", err)
	}
}

// grpc_address is loopback by default in an all-in-one process, and a
// plaintext listener off loopback is a warning (issue 11, item 5).
func TestGRPCAddressDefaultAndWarning(t *testing.T) {
	t.Parallel()
	allInOne := "shared_secret: " + secret + "\ncookie_secret: " + cookieSecret + `
authenticate_service_url: https://authenticate.example.com
insecure_server: true
idp_provider_url: https://idp.example.com
idp_client_id: x
idp_client_secret: y
`
	tests := []struct {
		name     string
		yaml     string
		wantAddr string
		warn     bool
	}{
		{"all-in-one", allInOne, "127.0.0.1:5443", false},
		{"all-in-one on every interface", allInOne + "grpc_address: 0.0.0.0:5443\n", "0.0.0.0:5443", true},
		{"all-in-one on ipv6 loopback", allInOne + "grpc_address: '[::1]:5443'\n", "[::1]:5443", false},
		{"all-in-one on localhost", allInOne + "grpc_address: localhost:5443\n", "localhost:5443", false},
		{"databroker", base, ":5443", true},
		{"databroker on loopback", base + "grpc_address: 127.0.0.1:7000\n", "127.0.0.1:7000", false},
		{"proxy serves no gRPC", "services: proxy\nshared_secret: " + secret + "\ncookie_secret: " + cookieSecret +
			"\ninsecure_server: true\nauthorize_service_url: http://a:5443\nauthenticate_service_url: https://a.example.com\n", ":5443", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Parse([]byte(tt.yaml), "test.yaml", nil)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.GRPCAddress != tt.wantAddr {
				t.Errorf("grpc_address = %q, want %q", cfg.GRPCAddress, tt.wantAddr)
			}
			warned := strings.Contains(strings.Join(cfg.Warnings(), "\n"), "serves plaintext gRPC beyond loopback")
			if warned != tt.warn {
				t.Errorf("plaintext warning = %v, want %v (warnings %q)", warned, tt.warn, cfg.Warnings())
			}
		})
	}
}

// `accept: false` accepts, as in Pomerium; gatehouse loads it but says so.
func TestPolicyValueWarnings(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(guide+`
  - from: https://a.example.com
    to: http://127.0.0.1:1
    policy:
      - allow:
          or:
            - accept: false
`), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(cfg.Warnings(), "\n")
	if !strings.Contains(w, "routes[1].policy: accept: false has the effect of accept: true") {
		t.Fatalf("warnings %q do not explain accept: false", w)
	}
}
