package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// rawGet sends target exactly as written in the request line (http.Client
// would clean or re-escape some of these) and returns the response, read.
func (h *harness) rawGet(t *testing.T, host, target string) (*http.Response, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(h.front.URL, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET "+target+" HTTP/1.1\r\nHost: "+host+"\r\nAccept: text/html\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// denySecret answers a Check as a route policy "allow /open, deny
// http_path starts_with /open/secret" would, on the path the Check
// carries, and denies the route "secret" whatever the path.
func denySecret(req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	p, _, _ := strings.Cut(req.GetAttributes().GetRequest().GetHttp().GetPath(), "?")
	if strings.HasPrefix(p, "/open/secret") || req.GetAttributes().GetContextExtensions()["route_id"] == "secret" {
		return deniedResponse(http.StatusForbidden, "denied"), nil
	}
	return okResponse(nil), nil
}

func pathHarness(t *testing.T, extra string) (*harness, *recordingUpstream) {
	t.Helper()
	up := newUpstream(t, "app")
	routes := routeYAML("id: secret", "from: http://app.test", "prefix: /open/secret", "to: "+up.URL) +
		routeYAML("id: exact", "from: http://app.test", "path: /open/exact", "to: "+up.URL) +
		routeYAML("id: open", "from: http://app.test", "prefix: /open", "to: "+up.URL) +
		routeYAML("id: rewrite", "from: http://rw.test", "prefix: /api/", "prefix_rewrite: /v2/", "to: "+up.URL) +
		routeYAML("id: regex", "from: http://rw.test", `regex: "^/re/[0-9]+$"`, `regex_rewrite_pattern: "^/re/([0-9]+)$"`,
			`regex_rewrite_substitution: "/num/\\1"`, "to: "+up.URL) +
		routeYAML("id: catchall", "from: http://app.test", "to: "+up.URL)
	return newHarness(t, parseConfig(t, extra, routes), newFakeAuthz(denySecret)), up
}

// Every spelling of /open/secret is denied (or refused) like /open/secret
// itself, and nothing but the normal form ever reaches the upstream.
func TestEncodedPathsCannotReachPastPathPolicy(t *testing.T) {
	h, up := pathHarness(t, "")
	tests := []struct {
		target string
		status int
		route  string // for allowed requests: the route and
		path   string // the path the upstream and the Check got
	}{
		{target: "/open/secret", status: 403},
		{target: "/open/%73ecret", status: 403},
		{target: "/open/secre%74?x=1", status: 403},
		{target: "/open//secret", status: 403},
		{target: "//open/secret", status: 403},
		{target: "/open/./secret", status: 403},
		{target: "/open/x/../secret", status: 403},
		{target: "/open/x/%2e%2e/secret", status: 403},
		{target: "/open/x/.%2E/secret", status: 403},
		{target: `/open\secret`, status: 403},
		{target: "/open%2fsecret", status: 400},
		{target: "/open%2Fsecret", status: 400},
		{target: "/open/%5csecret", status: 400},
		{target: "/open/secret%00", status: 400},
		{target: "/open/secret%zz", status: 400},
		{target: "http://app.test/open/secret", status: 400},
		{target: "/open/secret#x", status: 400},

		// Allowed: the upstream gets the normal form, which the Check carried.
		{target: "/OPEN/secret", status: 200, route: "catchall", path: "/OPEN/secret"}, // case is significant
		{target: "/open/%2e%2e/secret", status: 200, route: "catchall", path: "/secret"},
		{target: "/open/ok/./x/", status: 200, route: "open", path: "/open/ok/x/"},
		{target: "/open/%7Eada%3bv=1", status: 200, route: "open", path: "/open/~ada%3Bv=1"},
		{target: "/open/a%20b", status: 200, route: "open", path: "/open/a%20b"},
		{target: "/open/%65xact", status: 200, route: "exact", path: "/open/exact"},
		{target: "/open/x/../exact?q=/../secret", status: 200, route: "exact", path: "/open/exact"},
		{target: "/open?next=/open/secret", status: 200, route: "open", path: "/open"},
	}
	for _, tt := range tests {
		before := up.count()
		resp, body := h.rawGet(t, "app.test", tt.target)
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d\n%s", tt.target, resp.StatusCode, tt.status, body)
			continue
		}
		if tt.status != 200 {
			if up.count() != before {
				t.Errorf("%s: refused, yet the upstream got %q", tt.target, up.last(t).URI)
			}
			continue
		}
		got := up.last(t)
		_, query, _ := strings.Cut(tt.target, "?")
		wantURI := tt.path
		if query != "" {
			wantURI += "?" + query
		}
		if got.URI != wantURI {
			t.Errorf("%s: upstream got %q, want %q", tt.target, got.URI, wantURI)
		}
		hr := h.authz.last(t).GetAttributes()
		if p := hr.GetRequest().GetHttp().GetPath(); p != wantURI {
			t.Errorf("%s: Check path %q, want %q (what the upstream got)", tt.target, p, wantURI)
		}
		if rid := hr.GetContextExtensions()["route_id"]; rid != tt.route {
			t.Errorf("%s: route %q, want %q", tt.target, rid, tt.route)
		}
	}
	// A refusal says why, and is a page of gatehouse's own.
	resp, body := h.rawGet(t, "app.test", "/open%2Fsecret")
	if resp.StatusCode != 400 || !strings.Contains(body, "%2F") || resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("refusal of %%2F: %d %q", resp.StatusCode, body)
	}
}

// prefix_rewrite and regex_rewrite work on the normal form.
func TestRewritesSeeNormalPath(t *testing.T) {
	h, up := pathHarness(t, "")
	for _, tt := range []struct{ target, want string }{
		{"/api/./users/%34%32", "/v2/users/42"},
		{"/api//users", "/v2/users"},
		{"/x/../api/users", "/v2/users"},
		{"/re/%34%32", "/num/42"},
		{"/re/7/../42", "/num/42"},
	} {
		resp, body := h.rawGet(t, "rw.test", tt.target)
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", tt.target, resp.StatusCode, body)
			continue
		}
		if got := up.last(t).URI; got != tt.want {
			t.Errorf("%s: upstream got %q, want %q", tt.target, got, tt.want)
		}
	}
}

// The operator's choices for %2F and // hold in the proxy.
func TestPathOptions(t *testing.T) {
	t.Run("keep_unchanged", func(t *testing.T) {
		h, up := pathHarness(t, "path_with_escaped_slashes_action: keep_unchanged")
		resp, body := h.rawGet(t, "app.test", "/open%2fsecret?x=1")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d %s", resp.StatusCode, body)
		}
		// The encoded slash is part of a segment: not the secret route, and
		// the upstream gets it encoded, as the Check did.
		if got := up.last(t).URI; got != "/open%2Fsecret?x=1" {
			t.Errorf("upstream got %q", got)
		}
		if p := h.authz.last(t).GetAttributes().GetRequest().GetHttp().GetPath(); p != "/open%2Fsecret?x=1" {
			t.Errorf("Check path %q", p)
		}
		if resp, _ := h.rawGet(t, "app.test", "/open/x%2F..%2F..%2Fsecret"); resp.StatusCode != 200 || up.last(t).URI != "/open/x%2F..%2F..%2Fsecret" {
			t.Errorf("encoded dot segments: %d, upstream got %q", resp.StatusCode, up.last(t).URI)
		}
	})
	t.Run("unescape_and_forward", func(t *testing.T) {
		h, up := pathHarness(t, "path_with_escaped_slashes_action: unescape_and_forward")
		if resp, _ := h.rawGet(t, "app.test", "/open%2Fsecret"); resp.StatusCode != 403 {
			t.Errorf("/open%%2Fsecret: %d, want 403", resp.StatusCode)
		}
		resp, _ := h.rawGet(t, "app.test", "/open/a%2Fb")
		if resp.StatusCode != 200 || up.last(t).URI != "/open/a/b" {
			t.Errorf("/open/a%%2Fb: %d, upstream got %q", resp.StatusCode, up.last(t).URI)
		}
	})
	t.Run("unescape_and_redirect", func(t *testing.T) {
		h, up := pathHarness(t, "path_with_escaped_slashes_action: unescape_and_redirect")
		before := up.count()
		resp, _ := h.rawGet(t, "app.test", "/open/a%2Fb?x=%2F")
		if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != "/open/a/b?x=%2F" {
			t.Errorf("status %d Location %q, want 307 to /open/a/b?x=%%2F", resp.StatusCode, resp.Header.Get("Location"))
		}
		if up.count() != before || h.authz.calls.Load() != 0 {
			t.Errorf("the redirected request went on")
		}
	})
	t.Run("merge_slashes false", func(t *testing.T) {
		h, up := pathHarness(t, "merge_slashes: false")
		// Not merged: // is not /open/secret, and the upstream gets the
		// same // the route matcher and the Check saw.
		resp, _ := h.rawGet(t, "app.test", "/open//secret")
		if resp.StatusCode != 200 || up.last(t).URI != "/open//secret" {
			t.Errorf("/open//secret: %d, upstream got %q", resp.StatusCode, up.last(t).URI)
		}
		if rid := h.authz.last(t).GetAttributes().GetContextExtensions()["route_id"]; rid != "open" {
			t.Errorf("route %q, want open", rid)
		}
	})
}
