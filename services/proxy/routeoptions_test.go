package proxy

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse/gatehouse/pkg/devcerts"
	"github.com/gatehouse/gatehouse/pkg/signingkey"
)

// tls_upstream_server_name is the name sent and verified for an https
// upstream, and wins over tls_server_name, as in Pomerium;
// tls_upstream_allow_renegotiation lets the upstream renegotiate.
func TestTLSUpstreamServerName(t *testing.T) {
	ca, err := devcerts.NewCA("gatehouse test CA")
	if err != nil {
		t.Fatal(err)
	}
	srvCert, srvKey, err := ca.Issue("upstream.internal")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "sni=%s", r.TLS.ServerName)
	}))
	up.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	up.StartTLS()
	t.Cleanup(up.Close)
	caOpt := "tls_custom_ca: " + b64(ca.CertPEM)
	routes := routeYAML("id: up", "from: http://up.test", "to: "+up.URL, caOpt, "tls_upstream_server_name: upstream.internal") +
		routeYAML("id: both", "from: http://both.test", "to: "+up.URL, caOpt, "tls_server_name: other.internal", "tls_upstream_server_name: upstream.internal") +
		routeYAML("id: wrong", "from: http://wrong.test", "to: "+up.URL, caOpt, "tls_server_name: upstream.internal", "tls_upstream_server_name: other.internal") +
		routeYAML("id: reneg", "from: http://reneg.test", "to: "+up.URL, caOpt, "tls_upstream_server_name: upstream.internal", "tls_upstream_allow_renegotiation: true")
	h := newHarness(t, parseConfig(t, "", routes), newFakeAuthz(allowAll()))
	for host, want := range map[string]int{"up.test": 200, "both.test": 200, "wrong.test": 502, "reneg.test": 200} {
		resp, body := h.get(t, host, "/")
		if resp.StatusCode != want || (want == 200 && body != "sni=upstream.internal") {
			t.Errorf("%s: %d %q, want %d", host, resp.StatusCode, body, want)
		}
	}
	var reneg int
	for k, tr := range h.svc.transports.m {
		if tr.TLSClientConfig.Renegotiation == tls.RenegotiateFreelyAsClient {
			reneg++
			if !k.renegotiate {
				t.Error("renegotiation allowed on a transport whose key does not say so")
			}
		}
	}
	if reneg != 1 {
		t.Errorf("%d transports allow renegotiation, want 1", reneg)
	}
}

// to: h2c://host:port speaks HTTP/2 without TLS to the upstream (gRPC
// servers), trailers included.
func TestH2CUpstream(t *testing.T) {
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "Grpc-Status")
		_, _ = io.WriteString(w, r.Proto)
		w.(http.Flusher).Flush() // streamed, as gRPC answers: no Content-Length
		w.Header().Set("Grpc-Status", "0")
	}))
	up.Config.Protocols = new(http.Protocols)
	up.Config.Protocols.SetUnencryptedHTTP2(true)
	up.Start()
	t.Cleanup(up.Close)
	to := "to: h2c://" + up.Listener.Addr().String()
	h := newHarness(t, parseConfig(t, "", routeYAML("id: grpc", "from: http://grpc.test", to)), newFakeAuthz(allowAll()))
	resp, body := h.get(t, "grpc.test", "/pkg.Service/Method")
	if resp.StatusCode != 200 || body != "HTTP/2.0" {
		t.Fatalf("%d %q, want 200 HTTP/2.0", resp.StatusCode, body)
	}
	if got := resp.Trailer.Get("Grpc-Status"); got != "0" {
		t.Errorf("trailer Grpc-Status %q, want 0", got)
	}
}

// The upstream's Host by Pomerium's precedence: host_rewrite,
// host_rewrite_header, host_path_regex_rewrite_pattern,
// preserve_host_header, else the upstream's name.
func TestHostRewrites(t *testing.T) {
	up := newUpstream(t, "app")
	routes := routeYAML("id: hdr", "from: http://hdr.test", "to: "+up.URL, "host_rewrite_header: X-Upstream-Host") +
		routeYAML("id: both", "from: http://both.test", "to: "+up.URL, "host_rewrite: fixed.internal", "host_rewrite_header: X-Upstream-Host", "preserve_host_header: true") +
		routeYAML("id: path", "from: http://path.test", "to: "+up.URL, `host_path_regex_rewrite_pattern: "^/(.+)/.+$"`, `host_path_regex_rewrite_substitution: \1.internal`, "preserve_host_header: true") +
		routeYAML("id: preserve", "from: http://preserve.test", "to: "+up.URL, "preserve_host_header: true")
	h := newHarness(t, parseConfig(t, "", routes), newFakeAuthz(allowAll()))
	for _, tc := range []struct {
		host, path, header, want string
	}{
		{"hdr.test", "/", "svc.internal", "svc.internal"},
		{"hdr.test", "/", "", "hdr.test"}, // no header: the client's Host stays
		{"both.test", "/", "svc.internal", "fixed.internal"},
		{"path.test", "/tenant/x", "", "tenant.internal"},
		{"path.test", "/tenant//x?q=/a/b", "", "tenant.internal"}, // the normal path, without the query
		{"preserve.test", "/", "", "preserve.test"},
	} {
		var hdr []string
		if tc.header != "" {
			hdr = []string{"X-Upstream-Host", tc.header}
		}
		if resp, _ := h.get(t, tc.host, tc.path, hdr...); resp.StatusCode != 200 {
			t.Fatalf("%s%s: %d", tc.host, tc.path, resp.StatusCode)
		}
		if got := up.last(t).Host; got != tc.want {
			t.Errorf("%s%s (header %q): upstream Host %q, want %q", tc.host, tc.path, tc.header, got, tc.want)
		}
	}
}

// rewrite_response_headers: a value starting with prefix gets value in
// its place; other values and headers pass unchanged.
func TestRewriteResponseHeaders(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://backend:8080"+r.URL.Path)
		w.Header().Set("Link", "<http://backend:8080/style.css>")
		w.Header().Set("X-Other", "http://backend:8080/")
		w.WriteHeader(http.StatusFound)
	}))
	t.Cleanup(up.Close)
	routes := routeYAML("id: rw", "from: http://rw.test", "to: "+up.URL,
		`rewrite_response_headers: [{header: location, prefix: "http://backend:8080/", value: "https://rw.test/app/"}, {header: Link, prefix: "", value: "x"}]`)
	h := newHarness(t, parseConfig(t, "", routes), newFakeAuthz(allowAll()))
	resp, _ := h.get(t, "rw.test", "/one")
	if got := resp.Header.Get("Location"); got != "https://rw.test/app/one" {
		t.Errorf("Location %q", got)
	}
	if got := resp.Header.Get("Link"); got != "x<http://backend:8080/style.css>" {
		t.Errorf("Link %q", got)
	}
	if got := resp.Header.Get("X-Other"); got != "http://backend:8080/" {
		t.Errorf("X-Other %q", got)
	}
	resp, _ = h.get(t, "rw.test", "/")
	if got := resp.Header.Get("Location"); got != "https://rw.test/app/" {
		t.Errorf("Location %q", got)
	}
}

// redirect and response routes answer without an upstream, and only once
// authorize allowed the request: a denial stays a denial.
func TestDirectRoutes(t *testing.T) {
	routes := routeYAML("id: https", "from: http://r.test", "prefix: /old/", `redirect: {https_redirect: true, prefix_rewrite: /new/}`) +
		routeYAML("id: host", "from: http://r.test", "path: /moved", `redirect: {host_redirect: "other.test", port_redirect: 8443, path_redirect: "/x?from=moved", response_code: 308, strip_query: true}`) +
		routeYAML("id: strip", "from: http://r.test", "prefix: /strip", `redirect: {strip_query: true, scheme_redirect: https}`) +
		routeYAML("id: plain", "from: http://r.test", "prefix: /plain", `redirect: {path_redirect: /elsewhere}`) +
		routeYAML("id: resp", "from: http://resp.test", `response: {status: 418, body: "short and stout"}`, "set_response_headers: {X-Teapot: yes}") +
		routeYAML("id: json", "from: http://json.test", `response: {status: 200, body: "{}"}`, "set_response_headers: {Content-Type: application/json}")
	authz := newFakeAuthz(allowAll())
	h := newHarness(t, parseConfig(t, "", routes), authz)

	for _, tc := range []struct {
		host, target string
		status       int
		location     string
	}{
		{"r.test:80", "/old/a/b?q=1", 301, "https://r.test/new/a/b?q=1"},         // the old scheme's default port goes
		{"r.test:8080", "/old/a//b?q=1", 301, "https://r.test:8080/new/a/b?q=1"}, // the normal path
		{"r.test", "/moved?q=1", 308, "http://other.test:8443/x?from=moved"},
		{"r.test", "/strip?q=1&pomerium_jwt=x", 301, "https://r.test/strip"},
		{"r.test", "/plain?q=1&pomerium_jwt=x", 301, "http://r.test/elsewhere?q=1"}, // no pomerium_* parameter
	} {
		resp, _ := h.get(t, tc.host, tc.target)
		if resp.StatusCode != tc.status || resp.Header.Get("Location") != tc.location {
			t.Errorf("%s%s: %d %q, want %d %q", tc.host, tc.target, resp.StatusCode, resp.Header.Get("Location"), tc.status, tc.location)
		}
		if got := authz.last(t).GetAttributes().GetContextExtensions()[extRouteID]; got == "" {
			t.Errorf("%s%s: Check without the route id", tc.host, tc.target)
		}
	}

	resp, body := h.get(t, "resp.test", "/anything")
	if resp.StatusCode != 418 || body != "short and stout" || resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("X-Teapot") != "yes" {
		t.Errorf("response route: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	resp, body = h.get(t, "json.test", "/")
	if resp.StatusCode != 200 || body != "{}" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("response route with Content-Type: %d %q %v", resp.StatusCode, body, resp.Header)
	}

	// The policy comes first: a denied request gets the denial.
	authz.set(func(*authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return deniedResponse(403, "denied"), nil
	})
	for _, host := range []string{"r.test", "resp.test"} {
		resp, body := h.get(t, host, "/old/x")
		if resp.StatusCode != 403 || body != "denied" || resp.Header.Get("Location") != "" {
			t.Errorf("%s denied: %d %q %q", host, resp.StatusCode, body, resp.Header.Get("Location"))
		}
	}
}

// skip_xff_append: the upstream's X-Forwarded-For has what the trusted
// proxies wrote, without the peer; what the client could forge still goes.
func TestSkipXFFAppend(t *testing.T) {
	up := newUpstream(t, "app")
	route := routeYAML("id: a", "from: http://a.test", "to: "+up.URL)
	for _, tc := range []struct {
		extra, xff, want string
	}{
		{"skip_xff_append: true", "", ""},
		{"skip_xff_append: true", "6.6.6.6", ""},
		{"skip_xff_append: true\nxff_num_trusted_hops: 1", "6.6.6.6, 10.0.0.7", "10.0.0.7"},
		{"xff_num_trusted_hops: 1", "6.6.6.6, 10.0.0.7", "10.0.0.7, 127.0.0.1"},
		{"", "6.6.6.6", "127.0.0.1"},
	} {
		h := newHarness(t, parseConfig(t, tc.extra, route), newFakeAuthz(allowAll()))
		var hdr []string
		if tc.xff != "" {
			hdr = []string{"X-Forwarded-For", tc.xff}
		}
		h.get(t, "a.test", "/", hdr...)
		if got := up.last(t).Header.Values("X-Forwarded-For"); len(got) > 1 || (len(got) == 1) != (tc.want != "") || (len(got) == 1 && got[0] != tc.want) {
			t.Errorf("%q, XFF %q: upstream got %q, want %q", tc.extra, tc.xff, got, tc.want)
		}
	}
}

// headers_with_underscores_action: allow passes X_Custom (but never a
// spelling of a header gatehouse writes), drop_header removes it,
// reject_request answers 400.
func TestHeadersWithUnderscoresAction(t *testing.T) {
	up := newUpstream(t, "app")
	route := routeYAML("id: a", "from: http://a.test", "to: "+up.URL, "set_request_headers: {X-Role: reader}")
	authz := newFakeAuthz(allowAll("x-pomerium-jwt-assertion", "jwt"))
	for _, tc := range []struct {
		action   string
		status   int
		custom   bool // X_Custom reached the upstream
		checkSee bool // authorize was asked
	}{
		{"", 200, true, true},
		{"headers_with_underscores_action: allow", 200, true, true},
		{"headers_with_underscores_action: drop_header", 200, false, true},
		{"headers_with_underscores_action: REJECT_REQUEST", 400, false, false},
	} {
		h := newHarness(t, parseConfig(t, tc.action, route), authz)
		before := authz.calls.Load()
		resp, _ := h.get(t, "a.test", "/", "X_Custom", "1", "X_Role", "admin", "X_Pomerium_Jwt_Assertion", "forged")
		if resp.StatusCode != tc.status {
			t.Errorf("%q: status %d, want %d", tc.action, resp.StatusCode, tc.status)
			continue
		}
		if asked := authz.calls.Load() > before; asked != tc.checkSee {
			t.Errorf("%q: authorize asked %v", tc.action, asked)
		}
		if tc.status != 200 {
			continue
		}
		got := up.last(t).Header
		if (got.Get("X_Custom") == "1") != tc.custom {
			t.Errorf("%q: X_Custom at the upstream: %q", tc.action, got.Get("X_Custom"))
		}
		for k, vs := range got {
			if foldEqual(k, "X-Role") && (k != "X-Role" || vs[0] != "reader") || foldEqual(k, "X-Pomerium-Jwt-Assertion") && vs[0] != "jwt" {
				t.Errorf("%q: upstream got %s: %q", tc.action, k, vs)
			}
		}
	}
}

// load_balancing_policy: ring_hash and maglev keep a session on one
// upstream; random spreads; least_request avoids the busy upstream.
func TestLoadBalancingPolicy(t *testing.T) {
	ups := []*recordingUpstream{newUpstream(t, "a"), newUpstream(t, "b"), newUpstream(t, "c")}
	to := "to: [" + ups[0].URL + ", " + ups[1].URL + ", " + ups[2].URL + "]"
	routes := routeYAML("id: hash", "from: http://hash.test", to, "load_balancing_policy: ring_hash") +
		routeYAML("id: maglev", "from: http://maglev.test", to, "load_balancing_policy: MAGLEV") +
		routeYAML("id: random", "from: http://random.test", to, "load_balancing_policy: random")
	h := newHarness(t, parseConfig(t, "", routes), newFakeAuthz(allowAll()))
	served := func(host string, hdr ...string) string {
		resp, _ := h.get(t, host, "/", hdr...)
		return resp.Header.Get("X-Upstream")
	}
	for _, host := range []string{"hash.test", "maglev.test"} {
		spread := map[string]bool{}
		for i := 0; i < 30; i++ {
			cookie := fmt.Sprintf("_pomerium=session-%d", i)
			first := served(host, "Cookie", cookie)
			spread[first] = true
			for j := 0; j < 3; j++ {
				if got := served(host, "Cookie", cookie); got != first {
					t.Fatalf("%s: session %d went to %s, then %s", host, i, first, got)
				}
			}
		}
		if len(spread) != 3 {
			t.Errorf("%s: 30 sessions on %d upstreams", host, len(spread))
		}
		// No session: the client IP (always 127.0.0.1 here) is hashed.
		first := served(host)
		for j := 0; j < 3; j++ {
			if got := served(host); got != first {
				t.Errorf("%s without a session: %s then %s", host, first, got)
			}
		}
	}
	spread := map[string]int{}
	for i := 0; i < 60; i++ {
		spread[served("random.test")]++
	}
	if len(spread) != 3 {
		t.Errorf("random: %v", spread)
	}

	// least_request: while one upstream holds a request, the next go to
	// the other.
	release := make(chan struct{})
	holding := make(chan string, 1)
	mk := func(name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/hold" {
				holding <- name
				<-release
			}
			w.Header().Set("X-Upstream", name)
		}))
		t.Cleanup(s.Close)
		return s
	}
	x, y := mk("x"), mk("y")
	h2 := newHarness(t, parseConfig(t, "", routeYAML("id: lr", "from: http://lr.test", "to: ["+x.URL+", "+y.URL+"]", "load_balancing_policy: least_request")), newFakeAuthz(allowAll()))
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp := h2.do(t, http.MethodGet, "lr.test", "/hold", nil)
		resp.Body.Close()
	}()
	busy := <-holding
	for i := 0; i < 10; i++ {
		resp, _ := h2.get(t, "lr.test", "/")
		if got := resp.Header.Get("X-Upstream"); got == busy {
			t.Errorf("request %d went to the busy upstream %s", i, busy)
		}
	}
	close(release)
	<-done
}

// On a Kubernetes API route the upstream gets authorize's Authorization
// and Impersonate-* headers only: a client's, in any spelling, never pass
// (they would act as anyone with the service account's rights), even when
// authorize writes none; websockets and SPDY tunnel.
func TestKubernetesRouteHeaders(t *testing.T) {
	up := newUpstream(t, "k8s")
	routes := routeYAML("id: k8s", "from: http://k8s.test", "to: "+up.URL, "kubernetes_service_account_token: sa-token")
	authz := newFakeAuthz(allowAll("authorization", "Bearer sa-token", "impersonate-user", "alice@example.com"))
	h := newHarness(t, parseConfig(t, "", routes), authz)
	forged := []string{"Authorization", "Bearer client-token", "Impersonate-Group", "system:masters",
		"Impersonate_Uid", "0", "impersonate-extra-scopes", "all", "IMPERSONATE-USER", "admin"}
	if resp, _ := h.get(t, "k8s.test", "/api", forged...); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := up.last(t).Header
	want := http.Header{"Authorization": {"Bearer sa-token"}, "Impersonate-User": {"alice@example.com"}}
	for k, vs := range got {
		if isImpersonateHeader(k) || foldEqual(k, "Authorization") {
			if fmt.Sprint(want[k]) != fmt.Sprint(vs) {
				t.Errorf("upstream got %s: %q", k, vs)
			}
		}
	}
	for k := range want {
		if got.Get(k) == "" {
			t.Errorf("upstream lacks %s", k)
		}
	}
	// No token from authorize (an unreadable file): no Authorization at all.
	authz.set(allowAll())
	h.get(t, "k8s.test", "/api", forged...)
	for k := range up.last(t).Header {
		if isImpersonateHeader(k) || foldEqual(k, "Authorization") {
			t.Errorf("upstream got the client's %s", k)
		}
	}
	if rt := h.svc.state.Load().routes[&h.src.Current().Routes[0]]; len(rt.upgrades) != 2 {
		t.Errorf("upgrades %v, want websocket and spdy", rt.upgrades)
	}
}

// X-Pomerium-Jwt-Assertion-For: the identity JWT a service received and
// passes on (as X-Pomerium-Jwt-Assertion, or -For) reaches the next
// upstream under that name only when this deployment signed it and it
// has not expired, on a route that passes identity headers.
func TestJWTAssertionFor(t *testing.T) {
	up := newUpstream(t, "b")
	routes := routeYAML("id: b", "from: http://b.test", "to: "+up.URL, "pass_identity_headers: true") +
		routeYAML("id: noid", "from: http://noid.test", "to: "+up.URL, "pass_identity_headers: false")
	cfg := parseConfig(t, "", routes)
	h := newHarness(t, cfg, newFakeAuthz(allowAll("x-pomerium-jwt-assertion", "fresh-jwt-for-b")))
	keys, err := cfg.KeySet()
	if err != nil {
		t.Fatal(err)
	}
	sign := func(ks *signingkey.KeySet, at time.Time) string {
		c := &signingkey.IdentityClaims{Issuer: "a.test", Audience: "a.test", Subject: "alice"}
		c.SetTimes(at)
		tok, err := ks.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	ours := sign(keys, time.Now())
	otherKeys, _ := signingkey.Derive([]byte("another deployment's secret....."))
	for _, tc := range []struct {
		name, host string
		hdr        []string
		want       string
	}{
		{"passed on as the assertion", "b.test", []string{"X-Pomerium-Jwt-Assertion", ours}, ours},
		{"passed on as -For", "b.test", []string{"X-Pomerium-Jwt-Assertion-For", ours, "X-Pomerium-Jwt-Assertion", "x"}, ours},
		{"another deployment's", "b.test", []string{"X-Pomerium-Jwt-Assertion", sign(otherKeys, time.Now())}, ""},
		{"expired", "b.test", []string{"X-Pomerium-Jwt-Assertion-For", sign(keys, time.Now().Add(-time.Hour))}, ""},
		{"forged", "b.test", []string{"X-Pomerium-Jwt-Assertion-For", testJWT(map[string]any{"sub": "admin", "exp": 9999999999})}, ""},
		{"underscore spelling", "b.test", []string{"X_Pomerium_Jwt_Assertion_For", ours}, ""},
		{"route without identity headers", "noid.test", []string{"X-Pomerium-Jwt-Assertion", ours}, ""},
	} {
		if resp, _ := h.get(t, tc.host, "/", tc.hdr...); resp.StatusCode != 200 {
			t.Fatalf("%s: %d", tc.name, resp.StatusCode)
		}
		got := up.last(t).Header
		var vals []string
		for k, vs := range got {
			if foldEqual(k, headerJWTAssertionFor) {
				vals = append(vals, vs...)
			}
		}
		if (tc.want == "" && len(vals) != 0) || (tc.want != "" && (len(vals) != 1 || vals[0] != tc.want)) {
			t.Errorf("%s: upstream got X-Pomerium-Jwt-Assertion-For %q", tc.name, vals)
		}
		if tc.host == "b.test" && got.Get("X-Pomerium-Jwt-Assertion") != "fresh-jwt-for-b" {
			t.Errorf("%s: assertion %q", tc.name, got.Get("X-Pomerium-Jwt-Assertion"))
		}
	}
}
