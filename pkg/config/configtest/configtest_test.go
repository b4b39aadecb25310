package configtest_test

import (
	"os"
	"testing"

	"github.com/gatehouse/gatehouse/pkg/config/configtest"
)

func TestYAML(t *testing.T) {
	got := configtest.New().
		Set("address", "127.0.0.1:8080").
		Set("log_level", "debug"). // keeps its place in the base
		Delete("cookie_secret").
		IdP("http://idp.localhost", "s3cret").
		Set("jwt_claims_headers", "{X-Email: email}").
		Set("certificates", `
			- cert_file: a.pem
			  key_file: a-key.pem`).
		Route(`
			from: http://app.localhost
			to: http://127.0.0.1:1
			policy:
			  - allow:
			      or:
			        - email:
			            is: a@example.com`).
		Route("from: http://two.localhost\nto: http://127.0.0.1:2").
		YAML()
	want := `insecure_server: true
shared_secret: ` + configtest.Secret + `
log_level: debug
shutdown_grace_period: 0s
address: 127.0.0.1:8080
idp_provider: oidc
idp_provider_url: http://idp.localhost
idp_client_id: gatehouse
idp_client_secret: s3cret
jwt_claims_headers: {X-Email: email}
certificates:
  - cert_file: a.pem
    key_file: a-key.pem
routes:
  - from: http://app.localhost
    to: http://127.0.0.1:1
    policy:
      - allow:
          or:
            - email:
                is: a@example.com
  - from: http://two.localhost
    to: http://127.0.0.1:2
`
	if got != want {
		t.Fatalf("YAML:\n%s\nwant:\n%s", got, want)
	}
}

// The builder's output is a config gatehouse accepts, as written to disk.
func TestConfigAndWrite(t *testing.T) {
	b := configtest.New().
		Set("authenticate_service_url", "https://authenticate.localhost").
		IdP("https://idp.localhost", "x").
		Route(`
			from: https://app.localhost
			to: http://127.0.0.1:1
			allow_any_authenticated_user: true`)
	cfg := b.Config(t)
	if cfg.LogLevel != "warn" || len(cfg.Routes) != 1 {
		t.Fatalf("parsed: log level %q, %d routes", cfg.LogLevel, len(cfg.Routes))
	}
	data, err := os.ReadFile(b.Write(t))
	if err != nil || string(data) != b.YAML() {
		t.Fatalf("written file: %v\n%s", err, data)
	}
}
