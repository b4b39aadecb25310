package policy

import (
	"net/http"
	"net/netip"
	"testing"
)

// benchPolicies are the policies BenchmarkEvaluate measures; pkg/policy/opabench
// evaluates the same ones written in Rego.
var benchPolicies = map[string]string{
	// the Grafana guide's policy
	"grafana": `- allow: {or: [{domain: {is: example.com}}]}`,
	// a bigger mixed policy: several rules, every operator, string and list
	// matchers, a long `in`, source ranges and a time window
	"mixed": `
- allow:
    and:
      - domain: {is: example.com}
      - groups: {has: dev}
      - http_method: {in: [GET, HEAD, POST]}
- allow:
    or:
      - email: {in: [a@x.com, b@x.com, c@x.com, d@x.com, e@x.com, f@x.com, g@x.com, h@x.com, i@x.com, j@x.com]}
      - claim/department: {has: eng, exclude: contractors}
- allow:
    and:
      - http_path: {starts_with: /public/}
      - source_ip: [10.0.0.0/8, 192.0.2.0/24, '2001:db8::/32']
- deny:
    or:
      - groups: {has: suspended}
      - email: {ends_with: '@evil.example'}
- deny:
    not:
      - time_of_day: {timezone: UTC, after: '06:00', before: '22:00'}
  allow:
    nor:
      - http_path: {starts_with: /admin}
      - user: {not_in: [u-alice, u-root]}
`,
}

func benchInput(s *Subject) *Input {
	return &Input{
		Method: "GET", Path: "/d/dashboard", Host: "grafana.example.com",
		SourceIP: netip.MustParseAddr("192.0.2.10"),
		Headers:  http.Header{"Accept": {"text/html"}},
		Session:  s, Now: testNow,
	}
}

func BenchmarkEvaluate(b *testing.B) {
	for _, name := range []string{"grafana", "mixed"} {
		p, err := ParseYAML([]byte(benchPolicies[name]))
		if err != nil {
			b.Fatal(err)
		}
		e, err := Compile(Shorthands{}, p)
		if err != nil {
			b.Fatal(err)
		}
		for _, u := range []struct {
			name string
			s    *Subject
		}{{"allowed", alice}, {"denied", bob}, {"anonymous", nil}} {
			in := benchInput(u.s)
			b.Run(name+"/"+u.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					e.Evaluate(in)
				}
			})
		}
	}
}

// BenchmarkCompile measures the load-time cost, for comparison.
func BenchmarkCompile(b *testing.B) {
	p, err := ParseYAML([]byte(benchPolicies["mixed"]))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(Shorthands{}, p); err != nil {
			b.Fatal(err)
		}
	}
}
