package authorize

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse/gatehouse/pkg/extauthz"
)

// largeCurves turns on the 1,000,000-session point of BenchmarkSessionCurve
// (about 2 GB of heap and a minute to fill): GATEHOUSE_BENCH_LARGE=1.
func largeCurves() bool { return os.Getenv("GATEHOUSE_BENCH_LARGE") != "" }

// curveConfigYAML is a configuration with n routes mixing host wildcards
// and path rules (per group of four: *.wI.example.com, and appI.example.com
// with a prefix, a path and a catch-all), each with the Grafana guide's
// domain policy.
func curveConfigYAML(n int) string {
	var sb strings.Builder
	sb.WriteString(strings.SplitAfter(testConfigYAML, "routes:\n")[0])
	policy := "    pass_identity_headers: true\n    policy:\n      - allow:\n          or:\n            - domain:\n                is: example.com\n"
	for i := 0; i < n; i++ {
		g := i / 4
		switch i % 4 {
		case 0:
			fmt.Fprintf(&sb, "  - from: \"https://*.w%d.example.com\"\n    to: http://a\n", g)
		case 1:
			fmt.Fprintf(&sb, "  - from: https://app%d.example.com\n    to: http://a\n    prefix: /api/\n", g)
		case 2:
			fmt.Fprintf(&sb, "  - from: https://app%d.example.com\n    to: http://a\n    path: /login\n", g)
		case 3:
			fmt.Fprintf(&sb, "  - from: https://app%d.example.com\n    to: http://a\n", g)
		}
		sb.WriteString(policy)
	}
	return sb.String()
}

// BenchmarkCheckRoutes is a whole allowed Check (route match, policy, the
// identity JWT from its cache, the answer's headers) with 1, 100 and
// 10,000 routes, for a request to the last route of the table: authorize's
// CPU per request as routes grow, and the Checks per second one core can
// answer. The curve must stay flat.
func BenchmarkCheckRoutes(b *testing.B) {
	for _, n := range []int{1, 100, 10_000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			s := newTestService(b, testConfig(b, curveConfigYAML(n)))
			tok := signIn(b, s, alice, "sess-alice", 2)
			host := fmt.Sprintf("x.w%d.example.com", (n-1)/4)
			if n%4 == 0 {
				host = fmt.Sprintf("app%d.example.com", (n-1)/4)
			}
			req := newReq("GET", "https://"+host+"/d/abc?orgId=1", cookie(tok), fromBrowser())
			ctx := context.Background()
			if resp, err := s.Check(ctx, req); err != nil || !extauthz.Allowed(resp) {
				b.Fatalf("not allowed: %v", err)
			}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := s.Check(ctx, req)
				if err != nil || !extauthz.Allowed(resp) {
					b.Fatal("not allowed")
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
		})
	}
}

// BenchmarkSessionCurve fills authorize's synced copy with 10,000 and
// 100,000 signed-in sessions (and 1,000,000 with GATEHOUSE_BENCH_LARGE=1),
// each with its user as authenticate writes them, and reports the heap
// each session costs and a whole Check's time for sessions spread over
// the store. Both must stay flat as sessions grow.
func BenchmarkSessionCurve(b *testing.B) {
	sizes := []int{10_000, 100_000}
	if largeCurves() {
		sizes = append(sizes, 1_000_000)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			s := newTestService(b, testConfig(b, testConfigYAML))
			runtime.GC()
			before := heapInUse()
			for i := 0; i < n; i++ {
				u, sess := realisticRecords(i)
				u.Version, sess.Version = uint64(2*i+2), uint64(2*i+3)
				s.store.apply(u)
				s.store.apply(sess)
			}
			after := heapInUse()
			perSession := float64(after-before) / float64(n)

			// Checks for 1,024 sessions spread over the store.
			const spread = 1024
			reqs := make([]*authv3.CheckRequest, spread)
			for j := range reqs {
				i := j * (n / spread)
				u, sess := realisticRecords(i)
				tok := handleFor(b, s, u.Id, sess.Id, 1, uint64(2*i+3))
				reqs[j] = newReq("GET", "https://grafana.localhost.pomerium.io/d/abc", cookie(tok), fromBrowser())
			}
			ctx := context.Background()
			for _, req := range reqs { // warm the identity JWT cache
				if resp, err := s.Check(ctx, req); err != nil || !extauthz.Allowed(resp) {
					b.Fatalf("not allowed: %v", err)
				}
			}
			// Start timing with no collection of the setup's garbage under
			// way: in steady state the heap is the store, not its making.
			runtime.GC()
			b.ReportAllocs()
			j := 0
			for b.Loop() {
				resp, err := s.Check(ctx, reqs[j%spread])
				if err != nil || !extauthz.Allowed(resp) {
					b.Fatal("not allowed")
				}
				j++
			}
			b.ReportMetric(perSession, "heap-bytes/session")
			b.ReportMetric(float64(after-before)/(1<<20), "heap-MB")
			runtime.KeepAlive(s)
		})
	}
}
