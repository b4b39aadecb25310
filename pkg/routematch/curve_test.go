package routematch

import (
	"fmt"
	"strings"
	"testing"
)

// curveRoutes returns n routes mixing host wildcards and path rules, as a
// large deployment has them: per group of four, a wildcard host
// (*.wI.example.com), and an exact host (appI.example.com) with a prefix
// rule, a path rule and a catch-all. It also returns requests that hit
// routes spread over the whole table (the last one included) and a miss.
func curveRoutes(n int) (yaml string, reqs [][2]string) {
	var sb strings.Builder
	for i := 0; i < n; i++ {
		g := i / 4
		switch i % 4 {
		case 0:
			fmt.Fprintf(&sb, "  - {from: \"https://*.w%d.example.com\", to: http://a, prefix: /}\n", g)
		case 1:
			fmt.Fprintf(&sb, "  - {from: https://app%d.example.com, to: http://a, prefix: /api/}\n", g)
		case 2:
			fmt.Fprintf(&sb, "  - {from: https://app%d.example.com, to: http://a, path: /login}\n", g)
		case 3:
			fmt.Fprintf(&sb, "  - {from: https://app%d.example.com, to: http://a}\n", g)
		}
	}
	groups := (n + 3) / 4
	for _, g := range []int{0, groups / 2, groups - 1} {
		reqs = append(reqs, [2]string{fmt.Sprintf("x.w%d.example.com", g), "/d/abc"})
		if 4*g+1 < n {
			reqs = append(reqs, [2]string{fmt.Sprintf("app%d.example.com", g), "/api/v1"})
		}
		if 4*g+3 < n {
			reqs = append(reqs, [2]string{fmt.Sprintf("app%d.example.com", g), "/d/abc"})
		}
	}
	reqs = append(reqs, [2]string{"nope.example.org", "/"})
	return sb.String(), reqs
}

// BenchmarkMatchCurve is the cost of matching one request against 1, 100
// and 10,000 routes (issue 21): ns per match, averaged over requests that
// hit the first, middle and last routes of the table and one that misses.
// Matching must stay flat as routes grow: a curve that rises with the
// route count means a linear scan.
func BenchmarkMatchCurve(b *testing.B) {
	for _, n := range []int{1, 100, 10_000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			yaml, reqs := curveRoutes(n)
			tbl := New(load(b, yaml).Routes)
			if tbl.Len() != n {
				b.Fatalf("table has %d routes, want %d", tbl.Len(), n)
			}
			for _, r := range reqs[:len(reqs)-1] {
				if tbl.Match(r[0], r[1]) == nil {
					b.Fatalf("no route for %s%s", r[0], r[1])
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r := reqs[i%len(reqs)]
				tbl.Match(r[0], r[1])
				i++
			}
		})
	}
}

// Wildcard routes indexed under different suffixes, and the ones scanned
// for every host, still match in config order.
func TestMatchWildcardOrderAcrossSuffixes(t *testing.T) {
	tbl := New(load(t, `
  - {id: deep-api, from: "https://*.a.example.com", to: http://a, prefix: /api}
  - {id: broad, from: "https://*.example.com", to: http://a}
  - {id: deep, from: "https://*.a.example.com", to: http://a}
  - {id: any-internal, from: "https://*-internal", to: http://a}
  - {id: exact-late, from: "https://x.a.example.com", to: http://a}
  - {id: anything, from: "https://*", to: http://a}
`).Routes)
	for _, tt := range []struct{ host, path, want string }{
		{"x.a.example.com", "/api/v1", "deep-api"},
		{"x.a.example.com", "/", "broad"},
		{"y.example.com", "/", "broad"},
		{"svc-internal", "/", "any-internal"},
		{"example.org", "/", "anything"},
		{"X.A.Example.COM:443", "/api", "deep-api"},
	} {
		r := tbl.Match(tt.host, tt.path)
		if r == nil || r.ID != tt.want {
			got := "<nil>"
			if r != nil {
				got = r.ID
			}
			t.Errorf("Match(%q, %q) = %s, want %s", tt.host, tt.path, got, tt.want)
		}
	}
}
