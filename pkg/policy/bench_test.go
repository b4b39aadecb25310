package policy

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
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

// rulesPolicy returns a policy of n allow rules, one per user (email is),
// the last one alice's: how a large allow-list is often written.
func rulesPolicy(n int) string {
	var sb strings.Builder
	for i := 0; i < n-1; i++ {
		fmt.Fprintf(&sb, "- allow: {or: [{email: {is: user%d@example.com}}]}\n", i)
	}
	sb.WriteString("- allow: {or: [{email: {is: " + alice.Email + "}}]}\n")
	return sb.String()
}

// inPolicy is rulesPolicy(n) written as one rule: email in a list of n.
func inPolicy(n int) string {
	emails := make([]string, 0, n)
	for i := 0; i < n-1; i++ {
		emails = append(emails, fmt.Sprintf("user%d@example.com", i))
	}
	emails = append(emails, alice.Email)
	return "- allow: {or: [{email: {in: [" + strings.Join(emails, ", ") + "]}}]}\n"
}

// BenchmarkEvaluateRules is policy evaluation with a 1-rule and a
// 1,000-rule policy (issue 21): the user allowed by the last rule, and one
// no rule allows (every rule evaluated). Rules are evaluated in order, so
// time grows with their count (about 6-10 ns a rule); the same allow-list
// as one `in` matcher (rules=1000-as-in) is a set lookup and stays flat.
func BenchmarkEvaluateRules(b *testing.B) {
	for _, c := range []struct {
		name   string
		policy string
	}{{"rules=1", rulesPolicy(1)}, {"rules=1000", rulesPolicy(1000)}, {"rules=1000-as-in", inPolicy(1000)}} {
		p, err := ParseYAML([]byte(c.policy))
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
		}{{"allowed", alice}, {"denied", bob}} {
			in := benchInput(u.s)
			b.Run(c.name+"/"+u.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					e.Evaluate(in)
				}
			})
		}
	}
}
