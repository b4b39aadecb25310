package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/pkg/config"
)

// captureTransport records the request ReverseProxy sends upstream and
// answers 200 without a network.
type captureTransport struct{ got *http.Request }

func (c *captureTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.got = r
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

// fuzzAnswer is authorize's answer in FuzzUpstreamHeaders, and want what
// the upstream must get under gatehouse's names: those, with exactly
// these values, and nothing else under any spelling of them.
var (
	fuzzAnswer = okResponse([]string{"x-role"},
		"x-pomerium-jwt-assertion", "real.jwt", "x-groups", "dev", "x-pomerium-claim-email", "ada@example.com").GetOkResponse()
	fuzzWant = map[string]string{
		"X-Pomerium-Jwt-Assertion": "real.jwt", "X-Groups": "dev", "X-Pomerium-Claim-Email": "ada@example.com",
		"X-Tenant": "acme", "X-Pomerium-Route": "app",
		"X-Forwarded-For": "192.0.2.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "app.test",
	}
)

// FuzzUpstreamHeaders sends arbitrary client headers (one "name: value"
// per line; raw keeps the names as written, as a map key an HTTP/2 or
// hand-made request might carry, instead of canonical) and query through
// a route's ReverseProxy, and checks what reaches the upstream: no header
// named like one gatehouse writes unless gatehouse wrote it, each of
// gatehouse's headers present with its value whatever Connection names,
// and no session handle in a cookie, Authorization or pomerium_jwt.
func FuzzUpstreamHeaders(f *testing.F) {
	for _, s := range []struct {
		block, query string
		raw          bool
	}{
		{"X-Role: admin\nx_role: admin\nX-ROLE: root", "", false},
		{"X-Role: admin\nx_role: admin\nX-ROLE: root\nx-rOlE: a", "", true},
		{"Connection: X-Pomerium-Jwt-Assertion, X-Pomerium-Claim-Email\nConnection: x-groups, X-Tenant", "", false},
		{"Connection: x_pomerium_jwt_assertion,X-Request-Id\nX-Request-Id: r1", "", true},
		{"X-Tenant: evil\nX-Tenant: evil2\nX_Tenant: evil\nx-pomerium-route: evil", "", true},
		{"Cookie: a=1; _pomerium=h; b=2\nCookie: _pomerium=x", "", false},
		{"Authorization: bearer pomerium-h\nAuthorization: Pomerium h\nAuthorization: Bearer ok", "", false},
		{"X-Pomerium-Authorization: h\nx_pomerium_anything: y", "pomerium_jwt=h&a=1&pomerium%5Fjwt=x", true},
		{"Connection: Upgrade\nUpgrade: websocket", "", false},
		{"Connection: Cookie, Authorization\nCookie: _pomerium=h", "", false},
		{"Connection: keep-alive, ,, X-Groups,", "%zz=1&pomerium_jwt", false},
		{"X_Forwarded_For: 6.6.6.6\nForwarded: for=x\nx-forwarded-host: evil\nX_Request_Id: r\nX-Secret: s\nx_secret: s", "", true},
		{"Connection: X-Forwarded-For, X-Forwarded-Proto, x_request_id", "", false},
	} {
		f.Add(s.block, s.query, s.raw)
	}

	up := "http://127.0.0.1:1"
	cfg := parseConfig(f, forgeryClaims, forgeryRoutes(up))
	svc, err := New(context.Background(), Options{
		Source: config.NewStaticSource(cfg), Authorizer: newFakeAuthz(allowAll()), Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		f.Fatal(err)
	}
	var rt *route
	for cr, r := range svc.state.Load().routes {
		if cr.ID == "app" {
			rt = r
		}
	}
	capture := &captureTransport{}
	rt.proxy.Transport = capture

	f.Fuzz(func(t *testing.T, block, query string, raw bool) {
		req := httptest.NewRequest(http.MethodGet, "http://app.test/p", nil)
		req.URL.RawQuery = query
		for line := range strings.SplitSeq(block, "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok || k == "" {
				continue
			}
			v = strings.TrimSpace(v)
			if raw {
				req.Header[k] = append(req.Header[k], v)
			} else {
				req.Header.Add(k, v)
			}
		}
		requestID(req.Header)
		capture.got = nil
		rt.proxy.ServeHTTP(httptest.NewRecorder(), withOK(req, fuzzAnswer))
		out := capture.got
		if out == nil {
			return // ReverseProxy refused the request (a bad Upgrade): nothing reached the upstream
		}
		id := req.Header.Get(headerRequestID)
		for k, vs := range out.Header {
			if !namedLikeGatehouse(k) {
				continue
			}
			want, ours := fuzzWant[k]
			if k == headerRequestID {
				want, ours = id, true
			}
			if !ours || len(vs) != 1 || vs[0] != want {
				t.Fatalf("upstream got %q: %q; gatehouse wrote %v", k, vs, fuzzWant)
			}
		}
		for k, want := range fuzzWant {
			if out.Header.Get(k) != want {
				t.Fatalf("upstream lacks %s: %q (gatehouse wrote %q)", k, out.Header[k], want)
			}
		}
		if out.Header.Get(headerRequestID) != id {
			t.Fatalf("upstream request id %q, want %q", out.Header[headerRequestID], id)
		}
		for _, c := range out.Header["Cookie"] {
			for part := range strings.SplitSeq(c, ";") {
				if name, _, _ := strings.Cut(strings.TrimSpace(part), "="); strings.TrimSpace(name) == "_pomerium" {
					t.Fatalf("session cookie reached the upstream: %q", out.Header["Cookie"])
				}
			}
		}
		auth := out.Header["Authorization"]
		for _, a := range append(auth, strings.Join(auth, ",")) {
			// The forms authorize reads a handle from (services/authorize/token.go).
			if hasPrefixFoldTest(a, "Bearer Pomerium-") || hasPrefixFoldTest(a, "Pomerium ") {
				t.Fatalf("Pomerium Authorization reached the upstream: %q", auth)
			}
		}
		for part := range strings.SplitSeq(out.URL.RawQuery, "&") {
			k, _, _ := strings.Cut(part, "=")
			if uk, err := url.QueryUnescape(k); k == "pomerium_jwt" || err == nil && uk == "pomerium_jwt" {
				t.Fatalf("pomerium_jwt reached the upstream: %q", out.URL.RawQuery)
			}
		}
	})
}

func hasPrefixFoldTest(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// namedLikeGatehouse is the fuzz oracle, written apart from headerSet: a
// name an upstream may read as one gatehouse writes on route app.
func namedLikeGatehouse(k string) bool {
	n := strings.ReplaceAll(strings.ToLower(k), "_", "-")
	switch n {
	case "x-role", "x-groups", "x-tenant", "x-secret",
		"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded", "x-request-id":
		return true
	}
	return strings.HasPrefix(n, "x-pomerium-")
}
