package config_test

import (
	"bufio"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/config/configtest"
	"github.com/gatehouse/gatehouse/pkg/devcerts"
)

var updateCompat = flag.Bool("update-compat", false, "rewrite docs/pomerium-compatibility.md from the compatibility table")

const (
	optionsListPath = "../../docs/pomerium-options.txt"
	compatDocPath   = "../../docs/pomerium-compatibility.md"
)

// pomeriumOptionList reads docs/pomerium-options.txt: "global NAME" or
// "route NAME" per line.
func pomeriumOptionList(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open(optionsListPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		scope, name, ok := strings.Cut(line, " ")
		if !ok || (scope != "global" && scope != "route") {
			t.Fatalf("%s: bad line %q", optionsListPath, line)
		}
		key := scope + " " + name
		if out[key] {
			t.Errorf("%s: %q listed twice", optionsListPath, key)
		}
		out[key] = true
	}
	return out
}

// yamlKeys returns the yaml names of a struct type's fields.
func yamlKeys(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			out[name] = true
		}
	}
	return out
}

// base is a complete all-in-one config for these tests to add to.
func base() *configtest.Builder {
	return configtest.New().Set("authenticate_service_url", "http://authenticate.localhost").IdP("http://127.0.0.1:1", "secret")
}

func scopeKey(o config.PomeriumOption) string {
	if o.Route {
		return "route " + o.Name
	}
	return "global " + o.Name
}

// TestPomeriumCompatibility keeps the compatibility table, Pomerium's
// option list, the options gatehouse reads and the generated document in
// step, and checks that each row does what it says at load time.
func TestPomeriumCompatibility(t *testing.T) {
	list := pomeriumOptionList(t)
	table := config.PomeriumOptions()
	globalKeys := yamlKeys(reflect.TypeOf(config.Options{}))
	routeKeys := yamlKeys(reflect.TypeOf(config.Route{}))

	seen := map[string]bool{}
	for _, o := range table {
		k := scopeKey(o)
		if seen[k] {
			t.Errorf("table: %q has two rows", k)
		}
		seen[k] = true
		if !list[k] {
			t.Errorf("table: %q is not in %s", k, optionsListPath)
		}
		keys := globalKeys
		if o.Route {
			keys = routeKeys
		}
		switch o.Support {
		case config.Implemented:
			if !keys[o.Name] {
				t.Errorf("table: %q is implemented but gatehouse reads no such option", k)
			}
		case config.Ignored, config.Refused:
			if keys[o.Name] {
				t.Errorf("table: %q is %s but gatehouse reads it: mark it implemented", k, o.Support)
			}
			if o.Note == "" {
				t.Errorf("table: %q is %s without a reason", k, o.Support)
			}
		default:
			t.Errorf("table: %q has no support value", k)
		}
	}
	for k := range list {
		if !seen[k] {
			t.Errorf("table: no row for %q", k)
		}
	}
	// Every option gatehouse reads is Pomerium's or listed as gatehouse's own.
	only := map[string]bool{"log_format": true, "cookie_secure": true,
		"shutdown_grace_period": true, "authenticate_databroker_timeout": true, "signout_queue_dir": true}
	for name := range globalKeys {
		if !list["global "+name] && !only[name] {
			t.Errorf("gatehouse reads global option %q that is not Pomerium's: add it to gatehouseOnlyOptions and this test", name)
		}
	}
	for name := range routeKeys {
		if !list["route "+name] && name != "id" {
			t.Errorf("gatehouse reads route option %q that is not Pomerium's", name)
		}
	}

	// What each ignored or refused row does when a config sets it.
	for _, o := range table {
		if o.Support == config.Implemented {
			continue
		}
		b := base()
		if o.Route {
			b.Route("from: http://a.localhost\nto: http://127.0.0.1:1\nallow_any_authenticated_user: true\n" + o.Name + ": x")
		} else {
			b.Set(o.Name, "x")
		}
		cfg, err := config.Parse([]byte(b.YAML()), "config.yaml", nil)
		switch o.Support {
		case config.Ignored:
			if err != nil {
				t.Errorf("%s: ignored option refused: %v", scopeKey(o), err)
				continue
			}
			var warned int
			for _, w := range cfg.Warnings() {
				if strings.Contains(w, o.Name) {
					warned++
				}
			}
			if warned != 1 {
				t.Errorf("%s: %d warnings name it, want 1: %q", scopeKey(o), warned, cfg.Warnings())
			}
		case config.Refused:
			var errs config.Errors
			if !errors.As(err, &errs) || !strings.Contains(err.Error(), o.Name) || !strings.Contains(err.Error(), o.Note) {
				t.Errorf("%s: want an error naming it with its reason %q, got %v", scopeKey(o), o.Note, err)
			}
		}
	}

	want := config.CompatibilityMarkdown()
	if *updateCompat {
		if err := os.WriteFile(compatDocPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(compatDocPath)
	if err != nil || string(got) != want {
		t.Errorf("%s is not generated from the table: run go test ./pkg/config -run TestPomeriumCompatibility -update-compat", compatDocPath)
	}
}

// TestIgnoredOptionsOneWarning: a Pomerium config with several Envoy-only
// options starts, with one warning line naming each of them.
func TestIgnoredOptionsOneWarning(t *testing.T) {
	b := base().Set("codec_type", "auto").Set("dns_lookup_family", "V4_ONLY").
		Set("envoy_admin_address", "127.0.0.1:9901").Set("installation_id", "abc").
		Route(`
			from: http://a.localhost
			to: http://127.0.0.1:1
			allow_any_authenticated_user: true
			outlier_detection: {consecutive_5xx: 3}
		`)
	cfg := b.Config(t)
	var lines []string
	for _, w := range cfg.Warnings() {
		if strings.Contains(w, "ignored") {
			lines = append(lines, w)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("want one warning about ignored options, got %q", cfg.Warnings())
	}
	for _, name := range []string{"codec_type (line", "dns_lookup_family", "envoy_admin_address", "installation_id", "routes[0].outlier_detection"} {
		if !strings.Contains(lines[0], name) {
			t.Errorf("warning does not name %s: %s", name, lines[0])
		}
	}
}

// TestUnknownKeyStillAnError: strictness beats Pomerium's warn-and-run for
// typos: a key that is neither Pomerium's nor gatehouse's stops the config.
func TestUnknownKeyStillAnError(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"codec_typ: auto\n", `codec_typ: unknown option (did you mean "codec_type"?)`},
		{"databroker_cluster_node_id: a\n", "databroker_cluster_node_id: is a Pomerium option that gatehouse refuses"},
		{"routes:\n  - from: http://a.localhost\n    to: http://127.0.0.1:1\n    set_authorization_header: id_token\n", "set_authorization_header: was removed from Pomerium"},
	} {
		b := base().YAML() + tc.yaml
		_, err := config.Parse([]byte(b), "config.yaml", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// TestCompatibilityFigures keeps the README-style figures honest: they
// come from the table only.
func TestCompatibilityFigures(t *testing.T) {
	counts := map[config.Support]int{}
	for _, o := range config.PomeriumOptions() {
		counts[o.Support]++
	}
	var ks []string
	for s, n := range counts {
		ks = append(ks, s.String()+"="+strconv.Itoa(n))
	}
	sort.Strings(ks)
	t.Logf("Pomerium options: %s", strings.Join(ks, " "))
}

// authenticate_service_url stays required, with a message that says why
// (Pomerium would use its hosted authenticate service).
func TestAuthenticateServiceURLRequiredSaysWhy(t *testing.T) {
	_, err := config.Parse([]byte(base().Delete("authenticate_service_url").YAML()), "config.yaml", nil)
	if err == nil || !strings.Contains(err.Error(), "authenticate_service_url: required: gatehouse has no hosted authenticate service") {
		t.Fatalf("got %v", err)
	}
}

func TestIsAuthenticateHost(t *testing.T) {
	cfg := base().Set("authenticate_internal_service_url", "http://authn.internal:8080").Config(t)
	for host, want := range map[string]bool{"authenticate.localhost": true, "authenticate.localhost:443": true,
		"authn.internal": true, "AUTHN.internal:1": true, "app.localhost": false, "": false} {
		if got := cfg.IsAuthenticateHost(host); got != want {
			t.Errorf("%q: %v", host, got)
		}
	}
}

// The top-level policy list (routes' old name) is read and merged with
// routes as Pomerium does: policy's routes first. Errors name where the
// route was written.
func TestTopLevelPolicyMergedWithRoutes(t *testing.T) {
	y := base().YAML() + `policy:
  - from: http://old.localhost
    to: http://127.0.0.1:1
    allow_any_authenticated_user: true
routes:
  - from: http://new.localhost
    to: http://127.0.0.1:2
    allow_any_authenticated_user: true
`
	cfg, err := config.Parse([]byte(y), "config.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Routes) != 2 || cfg.Routes[0].From != "http://old.localhost" || cfg.Routes[1].From != "http://new.localhost" {
		t.Fatalf("routes %+v", cfg.Routes)
	}
	if cfg.Routes[0].Where() != "policy[0]" || cfg.Routes[1].Where() != "routes[0]" || len(cfg.Policy) != 0 {
		t.Errorf("where %q %q, policy %d", cfg.Routes[0].Where(), cfg.Routes[1].Where(), len(cfg.Policy))
	}
	_, err = config.Parse([]byte(base().YAML()+"policy:\n  - from: http://old.localhost\n"), "config.yaml", nil)
	if err == nil || !strings.Contains(err.Error(), "policy[0].to: required") {
		t.Errorf("got %v", err)
	}
}

// certificates: [{cert: <path>, key: <path>}] are file paths, as Pomerium
// reads them; inline PEM and base64 PEM work too.
func TestCertificatesAsPomeriumReadsThem(t *testing.T) {
	dir := t.TempDir()
	files, err := devcerts.Write(dir, "localhost.pomerium.io")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _ := os.ReadFile(files.Cert)
	keyPEM, _ := os.ReadFile(files.Key)
	for name, entry := range map[string]string{
		"paths":  fmt.Sprintf("{cert: %q, key: %q}", files.Cert, files.Key),
		"base64": fmt.Sprintf("{cert: %q, key: %q}", base64.StdEncoding.EncodeToString(certPEM), base64.StdEncoding.EncodeToString(keyPEM)),
		"files":  fmt.Sprintf("{cert_file: %q, key_file: %q}", files.Cert, files.Key),
	} {
		b := base().Delete("insecure_server").Set("certificates", "["+entry+"]")
		cfg, err := config.Parse([]byte(b.YAML()), "config.yaml", nil)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(cfg.TLSCertificates) != 1 {
			t.Errorf("%s: %d certificates", name, len(cfg.TLSCertificates))
		}
	}
	b := base().Delete("insecure_server").Set("certificates", `[{cert: /nonexistent/cert.pem, key: /nonexistent/key.pem}]`)
	_, err = config.Parse([]byte(b.YAML()), "config.yaml", nil)
	if err == nil || !strings.Contains(err.Error(), "certificates[0].cert: neither PEM, base64 of PEM nor a readable file") {
		t.Errorf("got %v", err)
	}
}

// runtime_flags: pomerium_jwt_endpoint is read; Pomerium's other flags are
// named in the one warning about ignored options.
func TestRuntimeFlags(t *testing.T) {
	cfg := base().Config(t)
	if cfg.JWTEndpointEnabled() {
		t.Error("/.pomerium/jwt on by default")
	}
	cfg = base().Set("runtime_flags", "{pomerium_jwt_endpoint: true, legacy_identity_manager: false}").Config(t)
	if !cfg.JWTEndpointEnabled() {
		t.Error("pomerium_jwt_endpoint not read")
	}
	w := strings.Join(cfg.Warnings(), "\n")
	if !strings.Contains(w, "runtime_flags.legacy_identity_manager") || strings.Contains(w, "runtime_flags.pomerium_jwt_endpoint") {
		t.Errorf("warnings %q", w)
	}
}
