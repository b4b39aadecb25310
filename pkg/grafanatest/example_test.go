package grafanatest_test

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/gatehouse/gatehouse/pkg/grafanatest"
)

// A test upstream configured by the guide's troubleshooting grafana.ini,
// with the JWKS in a local file.
func Example() {
	dir, _ := os.MkdirTemp("", "grafanatest")
	defer os.RemoveAll(dir)
	jwks := filepath.Join(dir, "jwks.json")
	_ = os.WriteFile(jwks, []byte(`{"keys":[]}`), 0o644)

	cfg, err := grafanatest.ParseINI([]byte(`[auth.jwt]
enabled = true
header_name = X-Pomerium-Jwt-Assertion
email_claim = email
jwk_set_file = ` + jwks + `
cache_ttl = 60m
`))
	if err != nil {
		panic(err)
	}
	grafana, err := grafanatest.New(cfg)
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(grafana.Handler())
	defer srv.Close()
	// The proxy would send X-Pomerium-Jwt-Assertion; without it /api/user
	// answers 401 as Grafana does.
	resp, err := srv.Client().Get(srv.URL + "/api/user")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output: 401
}
