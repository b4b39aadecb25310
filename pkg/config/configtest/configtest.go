// Package configtest builds gatehouse config.yaml files for tests, so that
// each test states only what it is about (its routes, its addresses, the
// option under test) on top of one base that every test shares, instead
// of a hand-copied YAML document that drifts from the others.
package configtest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/pkg/config"
)

// Secret and CookieSecret are the shared_secret and cookie_secret of the
// base config: base64 of 32 fixed random bytes (pkg/config refuses text,
// patterns and equal secrets), so that a test can sign service tokens or
// handles with them.
const (
	Secret       = "93pDpOHbb0pg+nEAHTZS1COZMt/53VNFXDp/hkyGHCg="
	CookieSecret = "HmVs8hCfDZ2PW46zvbj4j7k2jZhVb3Tuq0Rxsvtxl8I="
)

// Builder builds a config.yaml. Its methods return the Builder so calls
// chain; it is not safe for concurrent use.
type Builder struct {
	keys   []string          // top-level keys, in the order first set
	values map[string]string // key -> YAML value
	routes []string          // each route's fields, as YAML
}

// New returns a Builder holding the base config: insecure_server (TLS is
// a test's own subject, or a load balancer's), shared_secret Secret,
// cookie_secret CookieSecret, log_level warn and shutdown_grace_period 0s
// (a test's processes drain at once on SIGTERM, unless the grace period
// is what the test is about).
func New() *Builder {
	b := &Builder{values: map[string]string{}}
	return b.Set("insecure_server", "true").Set("shared_secret", Secret).Set("cookie_secret", CookieSecret).Set("log_level", "warn").
		Set("shutdown_grace_period", "0s")
}

// Set sets a top-level option to value, written as YAML: a scalar or flow
// value ("true", "{X-Role: role}") or, when it spans lines, a block that
// is indented under the key. A key set again keeps its place.
func (b *Builder) Set(key, value string) *Builder {
	if _, ok := b.values[key]; !ok {
		b.keys = append(b.keys, key)
	}
	b.values[key] = value
	return b
}

// Delete removes a top-level option (one of the base's, say).
func (b *Builder) Delete(key string) *Builder {
	delete(b.values, key)
	b.keys = slices.DeleteFunc(b.keys, func(k string) bool { return k == key })
	return b
}

// IdP sets the options of an OIDC identity provider at url (the dev IdP
// of `gatehouse dev-idp` in most tests) with client id "gatehouse".
func (b *Builder) IdP(url, clientSecret string) *Builder {
	return b.Set("idp_provider", "oidc").Set("idp_provider_url", url).
		Set("idp_client_id", "gatehouse").Set("idp_client_secret", clientSecret)
}

// Route appends a route, given as the YAML of its fields; the text may be
// indented as it sits in the test's source (common indentation is
// removed).
func (b *Builder) Route(fields string) *Builder {
	b.routes = append(b.routes, dedent(fields))
	return b
}

// YAML returns the config file's text.
func (b *Builder) YAML() string {
	var s strings.Builder
	for _, k := range b.keys {
		v := b.values[k]
		if strings.Contains(v, "\n") {
			s.WriteString(k + ":\n" + indent(dedent(v), "  ", "  "))
			continue
		}
		s.WriteString(k + ": " + v + "\n")
	}
	if len(b.routes) > 0 {
		s.WriteString("routes:\n")
		for _, r := range b.routes {
			s.WriteString(indent(r, "  - ", "    "))
		}
	}
	return s.String()
}

// Write writes the config to config.yaml in a new t.TempDir() and returns
// its path.
func (b *Builder) Write(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(b.YAML()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Config parses the config as gatehouse does at start-up (environment
// variables ignored) and fails the test when it is invalid.
func (b *Builder) Config(t testing.TB) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(b.YAML()), "config.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("configtest: %v\n%s", err, b.YAML())
	}
	return cfg
}

// dedent drops leading and trailing blank lines and the indentation that
// all other lines share.
func dedent(s string) string {
	lines := strings.Split(s, "\n")
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	common := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " \t"))
		if common < 0 || n < common {
			common = n
		}
	}
	for i, l := range lines {
		if len(l) >= common && common > 0 {
			lines[i] = l[common:]
		}
	}
	return strings.Join(lines, "\n")
}

// indent prefixes the first line of s with first and the others with rest,
// and ends every line with a newline.
func indent(s, first, rest string) string {
	var out strings.Builder
	for i, l := range strings.Split(s, "\n") {
		p := rest
		if i == 0 {
			p = first
		}
		if l == "" {
			out.WriteString("\n")
			continue
		}
		out.WriteString(p + l + "\n")
	}
	return out.String()
}
