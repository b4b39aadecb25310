package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/gatehouse/gatehouse/pkg/extauthz"
)

// benchUpstream answers every request with a small body.
func benchUpstream(b *testing.B) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok")
	}))
	b.Cleanup(up.Close)
	return up
}

// browserRequest is a request with the headers a browser sends.
func browserRequest(host, target string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.Host = host
	r.RemoteAddr = "192.0.2.10:54321"
	r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	r.Header.Set("Accept-Encoding", "gzip, deflate, br")
	r.Header.Set("Accept-Language", "en-GB,en;q=0.9")
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36")
	r.Header.Set("Cookie", "_pomerium=eyJhbGciOiJIUzI1NiJ9.eyJqdGkiOiJzZXNzaW9uIn0.c2lnbmF0dXJl; grafana_session=abc123")
	r.Header.Set("Sec-Fetch-Mode", "navigate")
	r.Header.Set("Upgrade-Insecure-Requests", "1")
	return r
}

// serveBench runs requests through h, rebuilding the request each time
// (ReverseProxy and the proxy modify its headers).
func serveBench(b *testing.B, h http.Handler, mk func() *http.Request) {
	b.Helper()
	// Warm the connection pool.
	for range 10 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, mk())
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, mk())
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}

const benchJWT = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImFiYyIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJhcHAudGVzdCIsImF1ZCI6ImFwcC50ZXN0Iiwic3ViIjoidTEiLCJlbWFpbCI6ImFkYUBleGFtcGxlLmNvbSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2lnbmF0dXJlLXNpZ25hdHVyZQ"

// BenchmarkServeHTTP is the full request path: header stripping, route
// match, one Check (answered by an in-memory fake that allows with a JWT
// header) and forwarding to a loopback upstream.
func BenchmarkServeHTTP(b *testing.B) {
	up := benchUpstream(b)
	cfg := parseConfig(b, "", routeYAML("id: app", "from: https://app.test", "to: "+up.URL, "pass_identity_headers: true"))
	authz := newFakeAuthz(allowAll("x-pomerium-jwt-assertion", benchJWT))
	authz.record = false
	h := newHarness(b, cfg, authz).svc.Handler()
	serveBench(b, h, func() *http.Request { return browserRequest("app.test", "/d/abc?orgId=1") })
}

// BenchmarkServeHTTPReused is BenchmarkServeHTTP for a proxy remote from
// authorize that reuses its answer (reuseSet): the request path without
// the Check's gRPC round trip, plus building and looking up the key.
func BenchmarkServeHTTPReused(b *testing.B) {
	up := benchUpstream(b)
	cfg := parseConfig(b, "", routeYAML("id: app", "from: https://app.test", "to: "+up.URL, "pass_identity_headers: true"))
	ok := okResponse(nil, "x-pomerium-jwt-assertion", benchJWT)
	authz := newFakeAuthz(func(*authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return extauthz.WithReuse(ok, extauthz.Reuse{ServerVersion: 1, RecordVersion: 1, SessionID: "s", UserID: "u",
			Until: time.Now().Add(time.Hour)}), nil
	})
	authz.record = false
	svc := newHarness(b, cfg, authz).svc
	// Live as after a Sync stream opened, without a databroker.
	svc.reuse = newReuseSet()
	svc.reuse.versions = func() (uint64, uint64) { return 1, 1 }
	svc.reuse.Reset(nil)
	serveBench(b, svc.Handler(), func() *http.Request { return browserRequest("app.test", "/d/abc?orgId=1") })
	if n := authz.calls.Load(); n != 1 {
		b.Fatalf("%d Checks, want 1 (the rest reused)", n)
	}
}

// BenchmarkBareReverseProxy is the baseline: httputil.ReverseProxy alone,
// to the same upstream, with the same request.
func BenchmarkBareReverseProxy(b *testing.B) {
	up := benchUpstream(b)
	target, _ := url.Parse(up.URL)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport: &http.Transport{MaxIdleConnsPerHost: 256},
	}
	serveBench(b, rp, func() *http.Request { return browserRequest("app.test", "/d/abc?orgId=1") })
}

// BenchmarkHeaderRewriting is the request path with everything that
// touches headers and the path: forged X-Pomerium-* headers, several
// identity headers from authorize, headers to remove, a route's
// set_request_headers and remove_request_headers, and a regex rewrite.
func BenchmarkHeaderRewriting(b *testing.B) {
	up := benchUpstream(b)
	cfg := parseConfig(b, "jwt_claims_headers: email,name,groups", routeYAML("id: app", "from: https://app.test", "to: "+up.URL,
		"pass_identity_headers: true", "prefix: /api/",
		`regex_rewrite_pattern: "^/api/v1/(.*)$"`, `regex_rewrite_substitution: "/v2/\\1"`,
		"set_request_headers: {X-Tenant: acme, X-Env: prod}", "remove_request_headers: [X-Debug, X-Internal]",
		"set_response_headers: {X-Served-By: gatehouse}"))
	authz := newFakeAuthz(allowAll(
		"x-pomerium-jwt-assertion", benchJWT,
		"x-pomerium-claim-email", "ada@example.com",
		"x-pomerium-claim-name", "Ada Lovelace",
		"x-pomerium-claim-groups", "eng,admins",
		"x-tenant", "acme",
	))
	authz.record = false
	h := newHarness(b, cfg, authz).svc.Handler()
	serveBench(b, h, func() *http.Request {
		r := browserRequest("app.test", "/api/v1/users/42?expand=groups")
		r.Header.Set("X-Pomerium-Jwt-Assertion", "forged")
		r.Header.Set("X-Pomerium-Claim-Email", "forged@evil.test")
		r.Header.Set("X-Debug", "1")
		r.Header.Set("X-Internal", "1")
		r.Header.Set("Authorization", "Bearer Pomerium-abc")
		r.Header.Set("X-Forwarded-For", "198.51.100.1")
		return r
	})
}

// BenchmarkCheckRequest measures building a CheckRequest from a browser
// request (the part of the Check the proxy controls).
func BenchmarkCheckRequest(b *testing.B) {
	r := browserRequest("app.test", "/d/abc?orgId=1")
	r.Header.Set("X-Request-Id", "0123456789abcdef0123456789abcdef")
	in := &checkInput{r: r, requestID: "0123456789abcdef0123456789abcdef", scheme: "https", clientIP: "192.0.2.10", routeID: "route-1"}
	b.ReportAllocs()
	for b.Loop() {
		buf := checkPool.Get().(*checkBuf)
		buf.fill(in)
		buf.release()
	}
}

// BenchmarkServeHTTPParallel is BenchmarkServeHTTP from GOMAXPROCS
// goroutines: lock contention (balancer, pools, transport) shows here.
func BenchmarkServeHTTPParallel(b *testing.B) {
	up := benchUpstream(b)
	cfg := parseConfig(b, "", routeYAML("id: app", "from: https://app.test", "to: "+up.URL, "pass_identity_headers: true"))
	authz := newFakeAuthz(allowAll("x-pomerium-jwt-assertion", benchJWT))
	authz.record = false
	h := newHarness(b, cfg, authz).svc.Handler()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, browserRequest("app.test", "/d/abc?orgId=1"))
			if w.Code != 200 {
				b.Errorf("status %d", w.Code)
				return
			}
		}
	})
}

// BenchmarkUpstreamHeaders measures writing the upstream request's
// headers (the strip of every name gatehouse writes, the credential
// removal, authorize's and the route's headers) on a browser request with
// forged identity headers, as route.rewrite does after ReverseProxy's
// copy. The strip itself allocates nothing.
func BenchmarkUpstreamHeaders(b *testing.B) {
	cfg := parseConfig(b, "jwt_claims_headers: {X-Role: role, X-Groups: groups, X-Email: email}", routeYAML("id: app",
		"from: https://app.test", "to: http://127.0.0.1:1", "pass_identity_headers: true", "set_request_headers: {X-Tenant: acme}"))
	h := newHarness(b, cfg, newFakeAuthz(allowAll()))
	var rt *route
	for _, r := range h.svc.state.Load().routes {
		rt = r
	}
	ok := okResponse(nil, "x-pomerium-jwt-assertion", benchJWT, "x-groups", "eng", "x-email", "ada@example.com").GetOkResponse()
	in := browserRequest("app.test", "/d/abc?orgId=1")
	in.Header.Set("X-Role", "admin")
	in.Header.Set("X-Pomerium-Jwt-Assertion", "forged")
	requestID(in.Header)
	in = withOK(in, ok)
	b.ReportAllocs()
	for b.Loop() {
		out := in.Clone(in.Context())
		rt.setUpstreamHeaders(in, out)
	}
}

// BenchmarkStripGatehouseHeaders is the strip alone, on a request with no
// forged header (the common case: nothing to delete).
func BenchmarkStripGatehouseHeaders(b *testing.B) {
	set := newHeaderSet("X-Role", "X-Groups", "X-Email", "X-Tenant")
	h := browserRequest("app.test", "/").Header
	b.ReportAllocs()
	for b.Loop() {
		stripGatehouseHeaders(h, &set)
	}
}

// BenchmarkServeHTTPTraced is BenchmarkServeHTTP with tracing on, every
// request sampled, its spans handed to a batch processor whose exporter
// discards them: the cost of a traced request.
func BenchmarkServeHTTPTraced(b *testing.B) {
	up := benchUpstream(b)
	cfg := parseConfig(b, "", routeYAML("id: app", "from: https://app.test", "to: "+up.URL, "pass_identity_headers: true"))
	authz := newFakeAuthz(allowAll("x-pomerium-jwt-assertion", benchJWT))
	authz.record = false
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	h := newHarness(b, cfg, authz, func(o *Options) { o.TracerProvider = tp }).svc.Handler()
	serveBench(b, h, func() *http.Request { return browserRequest("app.test", "/d/abc?orgId=1") })
}

type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }
