package opa

import (
	"context"
	"embed"
	"flag"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/gatehouse/gatehouse/pkg/policy"
)

//go:embed rego/*.rego
var regoFiles embed.FS

// policies pairs each PPL policy with its Rego. The PPL is the same as in
// pkg/policy's bench_test.go; TestEquivalence checks that the Rego gives
// the same results and reasons.
var policies = []struct {
	name, ppl, rego string
}{
	{"grafana", `- allow: {or: [{domain: {is: example.com}}]}`, "rego/grafana.rego"},
	{"mixed", `
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
`, "rego/mixed.rego"},
}

var testNow = time.Date(2024, 6, 5, 14, 30, 0, 0, time.UTC)

var (
	alice = &policy.Subject{
		SessionID: "s-alice", UserID: "u-alice", Email: "alice@example.com", Name: "Alice",
		Groups: []string{"admin", "dev"},
		Claims: map[string][]policy.ClaimValue{"family_name": policy.StringClaims("Smith"), "groups": policy.StringClaims("admin", "dev"), "department": policy.StringClaims("eng")},
	}
	bob = &policy.Subject{
		SessionID: "s-bob", UserID: "u-bob", Email: "bob@other.org", Name: "Bob",
		Groups: []string{"dev"},
		Claims: map[string][]policy.ClaimValue{"family_name": policy.StringClaims("Jones"), "groups": policy.StringClaims("dev")},
	}
	users = []struct {
		name string
		s    *policy.Subject
	}{{"allowed", alice}, {"denied", bob}, {"anonymous", nil}}
)

func input(s *policy.Subject) *policy.Input {
	return &policy.Input{
		Method: "GET", Path: "/d/dashboard", Host: "grafana.example.com",
		SourceIP: netip.MustParseAddr("192.0.2.10"),
		Headers:  http.Header{"Accept": {"text/html"}},
		Session:  s, Now: testNow,
	}
}

// compiled is one policy, compiled both ways.
type compiled struct {
	ppl  *policy.Evaluator
	rego rego.PreparedEvalQuery
}

func compile(tb testing.TB, ppl, regoFile string) compiled {
	tb.Helper()
	p, err := policy.ParseYAML([]byte(ppl))
	if err != nil {
		tb.Fatal(err)
	}
	e, err := policy.Compile(policy.Shorthands{}, p)
	if err != nil {
		tb.Fatal(err)
	}
	opts := []func(*rego.Rego){rego.Query("allow := data.pomerium.policy.allow; deny := data.pomerium.policy.deny")}
	for _, f := range []string{"rego/common.rego", regoFile} {
		src, err := regoFiles.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		opts = append(opts, rego.Module(f, string(src)))
	}
	q, err := rego.New(opts...).PrepareForEval(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return compiled{ppl: e, rego: q}
}

// regoInput builds the input document for one request, as Pomerium's
// authorize service builds one per Check. Pomerium's Rego fetches the
// session and user from the databroker through a custom built-in; here
// they ride in the input, which spares OPA that cost.
func regoInput(in *policy.Input) map[string]any {
	headers := make(map[string]any, len(in.Headers))
	for k, vs := range in.Headers {
		headers[k] = strings.Join(vs, ",")
	}
	doc := map[string]any{
		"http": map[string]any{
			"method": in.Method, "path": in.Path, "hostname": in.Host,
			"ip": in.SourceIP.String(), "headers": headers,
		},
		"now_ns": in.Now.UnixNano(),
	}
	if s := in.Session; s != nil {
		groups := make([]any, len(s.Groups))
		for i, g := range s.Groups {
			groups[i] = g
		}
		claims := make(map[string]any, len(s.Claims))
		for k, vs := range s.Claims {
			l := make([]any, len(vs))
			for i, v := range vs {
				l[i] = v.Text // every claim of these fixtures is a string
			}
			claims[k] = l
		}
		doc["session"] = map[string]any{
			"id": s.SessionID, "user_id": s.UserID, "email": s.Email,
			"groups": groups, "claims": claims,
		}
	}
	return doc
}

// evalRego evaluates one request and returns the allow and deny results.
func evalRego(tb testing.TB, q rego.PreparedEvalQuery, opt rego.EvalOption) (allow, deny policy.Result) {
	rs, err := q.Eval(context.Background(), opt)
	if err != nil || len(rs) != 1 {
		tb.Fatalf("rego eval: %v (%d results)", err, len(rs))
	}
	return regoResult(tb, rs[0].Bindings["allow"]), regoResult(tb, rs[0].Bindings["deny"])
}

func regoResult(tb testing.TB, v any) policy.Result {
	arr, ok := v.([]any)
	if !ok || len(arr) < 2 {
		tb.Fatalf("rego result %#v", v)
	}
	var r policy.Result
	r.Value, _ = arr[0].(bool)
	reasons, _ := arr[1].([]any)
	for _, x := range reasons {
		name, _ := x.(string)
		bit, ok := policy.ReasonByName(name)
		if !ok {
			tb.Fatalf("unknown reason %q", name)
		}
		r.Reasons |= bit
	}
	return r
}

func TestEquivalence(t *testing.T) {
	evil := &policy.Subject{UserID: "u-evil", Email: "mallory@EVIL.example", Groups: []string{"dev"}}
	suspended := &policy.Subject{UserID: "u-root", Email: "root@example.com", Groups: []string{"dev", "suspended"}}
	contractor := &policy.Subject{UserID: "u-c", Email: "c@else.com", Claims: map[string][]policy.ClaimValue{"department": policy.StringClaims("eng", "contractors")}}
	listed := &policy.Subject{UserID: "u-root", Email: "J@X.COM"}
	noEmail := &policy.Subject{UserID: "u-n"}
	var inputs []*policy.Input
	for _, s := range []*policy.Subject{alice, bob, nil, evil, suspended, contractor, listed, noEmail} {
		for _, mod := range []func(*policy.Input){
			func(*policy.Input) {},
			func(in *policy.Input) { in.Method = "delete" },
			func(in *policy.Input) { in.Path = "/public/logo.png" },
			func(in *policy.Input) { in.Path = "/public/logo.png"; in.SourceIP = netip.MustParseAddr("203.0.113.1") },
			func(in *policy.Input) { in.Path = "/public/x"; in.SourceIP = netip.MustParseAddr("2001:db8::7") },
			func(in *policy.Input) { in.Path = "/admin/users" },
			func(in *policy.Input) { in.Now = time.Date(2024, 6, 5, 23, 0, 0, 0, time.UTC) },
		} {
			in := input(s)
			mod(in)
			inputs = append(inputs, in)
		}
	}
	for _, p := range policies {
		c := compile(t, p.ppl, p.rego)
		for i, in := range inputs {
			d := c.ppl.Evaluate(in)
			allow, deny := evalRego(t, c.rego, rego.EvalInput(regoInput(in)))
			if allow != d.AllowResult || deny != d.DenyResult {
				t.Errorf("%s input %d (%+v, session %+v):\n  ppl  allow=%v %q deny=%v %q\n  rego allow=%v %q deny=%v %q",
					p.name, i, *in, in.Session,
					d.AllowResult.Value, d.AllowResult.Reasons, d.DenyResult.Value, d.DenyResult.Reasons,
					allow.Value, allow.Reasons, deny.Value, deny.Reasons)
			}
		}
	}
}

func BenchmarkEvaluate(b *testing.B) {
	for _, p := range policies {
		c := compile(b, p.ppl, p.rego)
		for _, u := range users {
			in := input(u.s)
			b.Run(p.name+"/"+u.name+"/gatehouse", func(b *testing.B) { benchPPL(b, c, in) })
			b.Run(p.name+"/"+u.name+"/opa", func(b *testing.B) { benchOPA(b, c, in) })
			b.Run(p.name+"/"+u.name+"/opa-prebuilt-input", func(b *testing.B) { benchOPAPrebuilt(b, c, in) })
		}
	}
}

func benchPPL(b *testing.B, c compiled, in *policy.Input) {
	b.ReportAllocs()
	for b.Loop() {
		c.ppl.Evaluate(in)
	}
}

// benchOPA builds the input document per request and evaluates the
// prepared query, as Pomerium does per Check.
func benchOPA(b *testing.B, c compiled, in *policy.Input) {
	b.ReportAllocs()
	for b.Loop() {
		evalRego(b, c.rego, rego.EvalInput(regoInput(in)))
	}
}

// benchOPAPrebuilt converts the input to an AST value once, outside the
// loop: OPA's best case, the cost of evaluation alone.
func benchOPAPrebuilt(b *testing.B, c compiled, in *policy.Input) {
	v, err := ast.InterfaceToValue(regoInput(in))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		evalRego(b, c.rego, rego.EvalParsedInput(v))
	}
}

var ratio = flag.Bool("ratio", false, "run TestRatio: benchmark both evaluators and print the ratio")

// TestRatio prints ns/op and allocs/op of both evaluators and their
// ratio. Run it with: go test -run TestRatio -ratio -v
func TestRatio(t *testing.T) {
	if !*ratio {
		t.Skip("pass -ratio to run")
	}
	var lines []string
	lines = append(lines, fmt.Sprintf("%-26s %12s %8s %12s %8s %10s %12s %10s",
		"case", "gatehouse", "allocs", "opa", "allocs", "ratio", "opa-prebuilt", "ratio"))
	for _, p := range policies {
		c := compile(t, p.ppl, p.rego)
		for _, u := range users {
			in := input(u.s)
			g := testing.Benchmark(func(b *testing.B) { benchPPL(b, c, in) })
			o := testing.Benchmark(func(b *testing.B) { benchOPA(b, c, in) })
			op := testing.Benchmark(func(b *testing.B) { benchOPAPrebuilt(b, c, in) })
			gns := float64(g.T.Nanoseconds()) / float64(g.N)
			ons := float64(o.T.Nanoseconds()) / float64(o.N)
			opns := float64(op.T.Nanoseconds()) / float64(op.N)
			lines = append(lines, fmt.Sprintf("%-26s %9.1f ns %8d %9.0f ns %8d %9.0fx %9.0f ns %9.0fx",
				p.name+"/"+u.name, gns, g.AllocsPerOp(), ons, o.AllocsPerOp(), ons/gns, opns, opns/gns))
		}
	}
	t.Log("\n" + strings.Join(lines, "\n"))
}
