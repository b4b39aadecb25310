// Package deployments holds gatehouse's deployment files (Dockerfile,
// docker-compose support files, Grafana configuration, Kubernetes
// manifests). Its tests check them offline, without a Docker engine or a
// cluster: the compose file against the compose specification, the
// manifests against the Kubernetes API types, and every gatehouse
// configuration against gatehouse's own validation, with the environment
// each container or pod gets.
package deployments

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/devcerts"
	"github.com/gatehouse/gatehouse/pkg/grafanatest"
	"github.com/gatehouse/gatehouse/pkg/secretgen"
)

// The Grafana guide's text, which the deployment files must follow.
const (
	guideRoute = `
from: https://grafana.localhost.pomerium.io
to: http://grafana:3000
pass_identity_headers: true
policy:
  - allow:
      or:
        - domain:
            is: example.com
`
	// The guide says: replace auth.localhost.pomerium.io with the value of
	// authenticate_service_url.
	authenticateURL = "https://authenticate.localhost.pomerium.io"
	jwksPath        = "/.well-known/pomerium/jwks.json"
)

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mapEnv turns a map into a config.Environ.
func mapEnv(m map[string]string) config.Environ {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// devCerts writes a development CA and certificate for the guide's domain
// into a temp dir, as `gatehouse dev-certs` does.
// genSecrets makes shared_secret and cookie_secret files in a temp dir, as
// `gatehouse gen-secrets --dir` does, and returns the dir.
func genSecrets(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "secrets")
	if _, err := secretgen.EnsureFiles(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func devCerts(t *testing.T) devcerts.Files {
	t.Helper()
	f, err := devcerts.Write(filepath.Join(t.TempDir(), "certs"), "localhost.pomerium.io")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// routesOf reads the routes of a gatehouse config file as plain YAML.
func routesOf(t *testing.T, data []byte) []any {
	t.Helper()
	var doc struct {
		Routes []any `yaml:"routes"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Routes
}

// checkGuideRoute fails unless routes hold the guide's route, unchanged.
func checkGuideRoute(t *testing.T, where string, routes []any) {
	t.Helper()
	var want any
	if err := yaml.Unmarshal([]byte(guideRoute), &want); err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if reflect.DeepEqual(r, want) {
			return
		}
	}
	t.Errorf("%s: no route is the guide's route exactly; routes = %v", where, routes)
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		t.Fatalf("%q is not an absolute URL", s)
	}
	return u
}

func port(t *testing.T, hostport string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	return p
}

func TestGuideConfig(t *testing.T) {
	data := readFile(t, "guide/config.yaml")
	checkGuideRoute(t, "guide/config.yaml", routesOf(t, data))

	// Validate it as gatehouse would load it, run from a directory holding
	// the dev-certs output in certs/.
	f := devCerts(t)
	if _, err := secretgen.EnsureFiles(filepath.Dir(f.Cert)); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Dir(filepath.Dir(f.Cert)))
	cfg, err := config.Parse(data, "guide/config.yaml", nil)
	if err != nil {
		t.Fatalf("guide/config.yaml does not validate:\n%v", err)
	}
	if cfg.AuthenticateURL != authenticateURL {
		t.Errorf("authenticate_service_url = %q, want %q", cfg.AuthenticateURL, authenticateURL)
	}
	if want := (config.ClaimsHeaders{"X-Pomerium-Claim-Email": "email", "X-Pomerium-Claim-Name": "name"}); !reflect.DeepEqual(cfg.JWTClaimsHeaders, want) {
		t.Errorf("jwt_claims_headers = %v, want email,name", cfg.JWTClaimsHeaders)
	}
	if len(cfg.Routes) != 1 || !cfg.PassIdentityHeadersFor(&cfg.Routes[0]) {
		t.Errorf("want the one guide route with identity headers, got %d routes", len(cfg.Routes))
	}
	if cfg.SharedSecretFile == "" {
		t.Error("shared_secret_file is unset: a generated secret, and so the signing key, would change at every start and Grafana's cached JWKS would go stale")
	}
	for _, s := range config.AllServices {
		if !cfg.Runs(s) {
			t.Errorf("the guide config does not run %s (want all-in-one)", s)
		}
	}
}

// iniLines returns the non-comment, non-blank lines of an ini file.
func iniLines(data string) []string {
	var out []string
	for _, l := range strings.Split(data, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' || l[0] == ';' {
			continue
		}
		out = append(out, l)
	}
	return out
}

func TestGrafanaINIFilesAreTheGuides(t *testing.T) {
	fix := strings.NewReplacer("https://auth.localhost.pomerium.io", authenticateURL)
	for file, guide := range map[string]string{
		"grafana/grafana.ini":              grafanatest.GuideScaleINI,
		"grafana/grafana-basic.ini":        grafanatest.GuideBasicINI,
		"grafana/grafana-jwk-set-file.ini": grafanatest.GuideFileINI,
	} {
		data := readFile(t, file)
		if got, want := iniLines(string(data)), iniLines(fix.Replace(guide)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s is not the guide's block:\n got %q\nwant %q", file, got, want)
		}
		cfg, err := grafanatest.ParseINI(data)
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if cfg.JWKSetURL != "" && cfg.JWKSetURL != authenticateURL+jwksPath {
			t.Errorf("%s: jwk_set_url %q, want %q", file, cfg.JWKSetURL, authenticateURL+jwksPath)
		}
	}
}

// TestDevConfig loads the `make run` configuration as run.sh starts it:
// from the repository root, after gen-secrets made bin/dev.
func TestDevConfig(t *testing.T) {
	data := readFile(t, "dev/config.yaml")
	if !strings.Contains(string(readFile(t, "dev/run.sh")), "gen-secrets --dir bin/dev") {
		t.Error("run.sh does not make bin/dev's secrets")
	}
	t.Chdir(t.TempDir())
	if _, err := secretgen.EnsureFiles("bin/dev"); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(data, "deployments/dev/config.yaml", nil)
	if err != nil {
		t.Fatalf("dev/config.yaml does not validate:\n%v", err)
	}
	if len(cfg.Warnings()) != 0 {
		t.Errorf("dev/config.yaml has warnings: %q", cfg.Warnings())
	}
}
