package routematch

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/pkg/config"
)

// load parses a configuration holding the given routes YAML.
func load(t testing.TB, routes string) *config.Config {
	t.Helper()
	y := `
services: proxy
authorize_service_url: http://127.0.0.1:5443
insecure_server: true
shared_secret: 93pDpOHbb0pg+nEAHTZS1COZMt/53VNFXDp/hkyGHCg=
cookie_secret: HmVs8hCfDZ2PW46zvbj4j7k2jZhVb3Tuq0Rxsvtxl8I=
authenticate_service_url: https://auth.example.com
routes:
` + routes
	cfg, err := config.Parse([]byte(y), "test.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("parse config: %v", err)
	}
	return cfg
}

func TestMatch(t *testing.T) {
	cfg := load(t, `
  - {id: exact-prefix, from: https://app.example.com, to: http://a, prefix: /api/}
  - {id: exact-path, from: https://app.example.com, to: http://a, path: /login}
  - {id: exact-regex, from: https://app.example.com, to: http://a, regex: "/v[0-9]+/.*"}
  - {id: wild-before-catchall, from: "https://*.example.com", to: http://a, prefix: /wild}
  - {id: exact-all, from: https://app.example.com, to: http://a}
  - {id: wild, from: "https://*.example.com", to: http://a}
  - {id: ported, from: "https://port.test:8443", to: http://a}
  - {id: default-port, from: "https://dp.test:443", to: http://a}
  - {id: middle, from: "https://api-*.svc.test", to: http://a}
  - {id: v6, from: "http://[::1]", to: http://a}
  - {id: star, from: "https://*", to: http://a, prefix: /everything}
`)
	tbl := New(cfg.Routes)
	tests := []struct {
		host, path, want string
	}{
		{"app.example.com", "/api/users", "exact-prefix"},
		{"APP.Example.COM", "/api/users", "exact-prefix"},
		{"app.example.com:443", "/api/users", "exact-prefix"},
		{"app.example.com:8080", "/api/users", "exact-prefix"}, // port-agnostic
		{"app.example.com", "/api", "exact-all"},               // prefix /api/ does not match /api
		{"app.example.com", "/login", "exact-path"},
		{"app.example.com", "/login/x", "exact-all"},
		{"app.example.com", "/v2/x", "exact-regex"},
		{"app.example.com", "/xv2/x", "exact-all"}, // regex is anchored
		{"app.example.com", "/wild/x", "wild-before-catchall"},
		{"other.example.com", "/x", "wild"},
		{"a.b.example.com", "/x", "wild"},
		{"example.com", "/everything", "star"}, // *.example.com needs a label
		{"example.com", "/x", ""},
		{"port.test:8443", "/", "ported"},
		{"port.test", "/", ""},
		{"port.test:443", "/", ""},
		{"dp.test", "/", "default-port"},
		{"dp.test:443", "/", "default-port"},
		{"dp.test:8443", "/", ""},
		{"api-1.svc.test", "/", "middle"},
		{"api-.svc.test", "/", ""},
		{"[::1]:8080", "/", "v6"},
		{"nothing.test", "/", ""},
		{"nothing.test", "/everything/x", "star"},
	}
	for _, tt := range tests {
		got := ""
		if r := tbl.Match(tt.host, tt.path); r != nil {
			got = r.ID
		}
		if got != tt.want {
			t.Errorf("Match(%q, %q) = %q, want %q", tt.host, tt.path, got, tt.want)
		}
	}
	if r := tbl.MatchHost("port.test:8443"); r == nil || r.ID != "ported" {
		t.Errorf("MatchHost(port.test:8443) = %v", r)
	}
	if r := tbl.MatchHost("example.com"); r == nil || r.ID != "star" {
		t.Errorf("MatchHost(example.com) = %v", r)
	}
	if r := tbl.ByID("wild"); r == nil || r.From != "https://*.example.com" {
		t.Errorf("ByID(wild) = %v", r)
	}
	if r := tbl.ByID("missing"); r != nil {
		t.Errorf("ByID(missing) = %v", r)
	}
}

func TestFirstMatchWins(t *testing.T) {
	cfg := load(t, `
  - {id: first, from: "https://*.example.com", to: http://a}
  - {id: second, from: https://app.example.com, to: http://a}
`)
	if r := New(cfg.Routes).Match("app.example.com", "/"); r == nil || r.ID != "first" {
		t.Fatalf("got %v, want first", r)
	}
}

func TestNilAndEmpty(t *testing.T) {
	var tbl *Table
	if tbl.Match("a", "/") != nil || tbl.ByID("x") != nil {
		t.Fatal("nil table matched")
	}
	if New(nil).Match("a", "/") != nil {
		t.Fatal("empty table matched")
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*.a.b", "x.a.b", true},
		{"*.a.b", ".a.b", false},
		{"x.*", "x.y", true},
		{"x.*", "x.", false},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "abc", false},
		{"a*b*c", "aXbc", false},
		{"*", "anything", true},
		{"*-*", "a-b", true},
		{"*-*", "-b", false},
	}
	for _, tt := range tests {
		if got := globMatch(strings.Split(tt.pattern, "*"), tt.name); got != tt.want {
			t.Errorf("glob %q %q = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	var sb strings.Builder
	for i := 0; i < 200; i++ {
		sb.WriteString("  - {from: https://app")
		sb.WriteString(strings.Repeat("x", i%7))
		sb.WriteString(".example.com, to: http://a, prefix: /p")
		sb.WriteString(strings.Repeat("y", i))
		sb.WriteString("}\n")
	}
	sb.WriteString("  - {id: target, from: \"https://*.example.com\", to: http://a}\n")
	tbl := New(load(b, sb.String()).Routes)
	b.ReportAllocs()
	for b.Loop() {
		if tbl.Match("grafana.example.com", "/d/abc") == nil {
			b.Fatal("no match")
		}
	}
}
