package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/net/websocket"

	"github.com/gatehouse/gatehouse/pkg/config/configtest"
	"github.com/gatehouse/gatehouse/pkg/devidp"
	"github.com/gatehouse/gatehouse/pkg/testutil"
)

// The proxy end-to-end tests run every service as its own process on
// loopback, over plain HTTP (insecure_server; TLS listeners are tested in
// tls_e2e_test.go): the dev IdP; authenticate and databroker together;
// authorize alone (so it can be stopped); the proxy alone; and a test
// upstream in this process that echoes what it receives. Route host names
// (*.localhost, *.example.test) are mapped to 127.0.0.1 by the test
// clients' dialer.

// loopbackDial dials the test's host names (localhost, *.localhost and
// *.example.test) on 127.0.0.1, keeping the port.
func loopbackDial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err == nil && (host == "localhost" || strings.HasSuffix(host, ".localhost") || strings.HasSuffix(host, ".example.test")) {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// echoed is what the test upstream answers: the request as it arrived.
type echoed struct {
	Method   string      `json:"method"`
	Host     string      `json:"host"`
	Path     string      `json:"path"`
	RawPath  string      `json:"raw_path"` // the escaped path as it arrived
	RawQuery string      `json:"raw_query"`
	Header   http.Header `json:"header"`
}

// upstream is the application behind the proxy. It echoes requests as
// JSON, streams Server-Sent Events one at a time (each after the test
// acknowledged the previous one), counts uploaded bytes and echoes
// WebSocket messages.
type upstream struct {
	srv    *httptest.Server
	sseAck chan struct{}

	mu   sync.Mutex
	last *echoed // the last echoed request
}

const sseEvents = 3

func startUpstream(t *testing.T) *upstream {
	u := &upstream{sseAck: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/sse", u.serveSSE)
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d", n)
	})
	mux.Handle("/ws", websocket.Server{Handler: func(c *websocket.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		for {
			var msg string
			if websocket.Message.Receive(c, &msg) != nil || websocket.Message.Send(c, msg) != nil {
				return
			}
		}
	}})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		e := &echoed{Method: r.Method, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Header: r.Header.Clone()}
		u.mu.Lock()
		u.last = e
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(e)
	})
	u.srv = httptest.NewServer(mux)
	t.Cleanup(u.srv.Close)
	return u
}

// serveSSE writes one event, flushes it, and waits for the test's ack
// before the next: a proxy that buffers the stream never delivers the
// first event and the test times out.
func (u *upstream) serveSSE(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	for i := 1; i <= sseEvents; i++ {
		fmt.Fprintf(w, "id: %d\ndata: event %d\n\n", i, i)
		if err := rc.Flush(); err != nil {
			return
		}
		if i == sseEvents {
			return
		}
		select {
		case <-u.sseAck:
		case <-r.Context().Done():
			return
		case <-time.After(10 * time.Second):
			return
		}
	}
}

// proxyEnv is the running deployment of the proxy tests.
type proxyEnv struct {
	procSet
	idpURL    string
	authnPort string
	proxyPort string
	up        *upstream
}

func startProxyEnv(t *testing.T) *proxyEnv {
	t.Helper()
	e := &proxyEnv{procSet: newProcSet(t)}
	e.up = startUpstream(t)

	authnAddr, proxyAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	_, e.authnPort, _ = net.SplitHostPort(authnAddr)
	_, e.proxyPort, _ = net.SplitHostPort(proxyAddr)
	authURL := "http://authenticate.localhost:" + e.authnPort

	idpAddr := testutil.FreeAddr(t)
	e.idpURL = "http://" + idpAddr
	idp := testutil.StartProcess(t, "dev-idp", e.bin, []string{"dev-idp", "--address", idpAddr, "--issuer", e.idpURL,
		"--client-id", "gatehouse", "--client-secret", "idp-secret", "--redirect-uri", authURL + "/oauth2/callback"})

	// Nothing listens on downAddr: the route to it is an upstream that is down.
	downAddr := testutil.FreeAddr(t)
	up := e.up.srv.URL
	e.config = configtest.New().
		Set("authenticate_service_url", authURL).
		IdP(e.idpURL, "idp-secret").
		Set("jwt_claims_headers", "email,name,groups").
		Route(`
			from: http://app.localhost
			to: ` + up + `
			pass_identity_headers: true
			allowed_domains: [example.com]`).
		Route(`
			from: http://noid.localhost
			to: ` + up + `
			pass_identity_headers: false
			allow_any_authenticated_user: true`).
		Route(`
			from: http://deny.localhost
			to: ` + up + `
			pass_identity_headers: true
			policy:
			  - allow:
			      or:
			        - accept: true
			    deny:
			      or:
			        - email:
			            is: alice@example.com`).
		Route(`
			from: http://routes.localhost
			path: /exact
			to: ` + up + `
			set_request_headers: {X-Route: path}
			allow_any_authenticated_user: true`).
		Route(`
			from: http://routes.localhost
			prefix: /api/
			prefix_rewrite: /v2/
			to: ` + up + `
			set_request_headers: {X-Route: prefix-rewrite}
			allow_any_authenticated_user: true`).
		Route(`
			from: http://routes.localhost
			regex: '^/re/[0-9]+$'
			regex_rewrite_pattern: '^/re/([0-9]+)$'
			regex_rewrite_substitution: '/num/\1'
			to: ` + up + `
			set_request_headers: {X-Route: regex-rewrite}
			allow_any_authenticated_user: true`).
		Route(`
			from: http://routes.localhost
			prefix: /plain/
			to: ` + up + `
			set_request_headers: {X-Route: prefix}
			allow_any_authenticated_user: true`).
		Route(`
			from: http://ws.localhost
			to: ` + up + `
			allow_websockets: true
			allow_any_authenticated_user: true`).
		Route(`
			from: http://down.localhost
			to: http://` + downAddr + `
			allow_any_authenticated_user: true`).
		Route(`
			from: http://slow.localhost
			to: ` + up + `
			timeout: 300ms
			allow_any_authenticated_user: true`).
		Route(`
			from: http://app.example.test
			to: ` + up + `
			pass_identity_headers: true
			allowed_domains: [example.com]`).
		Write(t)

	dbAddr, azAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	e.add("authenticate+databroker", "SERVICES=authenticate,databroker", "ADDRESS="+authnAddr, "GRPC_ADDRESS="+dbAddr)
	e.add("authorize", "SERVICES=authorize", "GRPC_ADDRESS="+azAddr, "DATABROKER_SERVICE_URLS=http://"+dbAddr)
	e.add("proxy", "SERVICES=proxy", "ADDRESS="+proxyAddr, "AUTHORIZE_SERVICE_URLS=http://"+azAddr)
	names := []string{"authenticate+databroker", "authorize", "proxy"}
	for _, n := range names {
		e.start(n)
	}
	testutil.WaitHTTP(t, e.idpURL+"/.well-known/openid-configuration", 20*time.Second, idp)
	for _, n := range names {
		e.waitReady(n)
	}
	return e
}

// url is a URL on a route host through the proxy.
func (e *proxyEnv) url(host, pathQuery string) string {
	return "http://" + host + ":" + e.proxyPort + pathQuery
}

// client is a browser-like client: a cookie jar, following redirects,
// reaching the test's host names on loopback.
func (e *proxyEnv) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Transport: &http.Transport{DialContext: loopbackDial}, Timeout: 20 * time.Second}
}

// signIn opens target in c, signs in at the dev IdP's form and returns
// the final response (redirects followed).
func (e *proxyEnv) signIn(c *http.Client, target, email, name, groups string) *http.Response {
	e.t.Helper()
	return testutil.DevIDPSignIn(e.t, c, target, email, name, groups)
}

// do sends a request with headers and returns the response, read.
func do(t *testing.T, c *http.Client, method, u string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, u, err)
	}
	return resp, body
}

// echo GETs u (Accept text/html, plus header) and returns what the
// upstream received; it fails unless the answer is the upstream's 200.
func echo(t *testing.T, c *http.Client, u string, header http.Header) *echoed {
	t.Helper()
	h := http.Header{"Accept": {"text/html"}}
	for k, vs := range header {
		h[k] = vs
	}
	resp, body := do(t, c, http.MethodGet, u, h)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET %s: %d %s\n%s", u, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var e echoed
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("GET %s: %v: %s", u, err, body)
	}
	return &e
}

// pomeriumHeaders returns the X-Pomerium-* headers (any spelling) in h.
func pomeriumHeaders(h http.Header) []string {
	var out []string
	for k := range h {
		if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(k, "_", "-")), "x-pomerium-") {
			out = append(out, k)
		}
	}
	return out
}

// sessionCookie returns the value of the _pomerium cookie c holds for u.
func sessionCookie(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	for _, ck := range c.Jar.Cookies(mustURL(t, u)) {
		if ck.Name == "_pomerium" {
			return ck.Value
		}
	}
	t.Fatalf("no _pomerium cookie for %s", u)
	return ""
}

// procStatus returns a field of /proc/<pid>/status in bytes (VmRSS, VmHWM).
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				n, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return n * 1024
				}
			}
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// requestIDInPage finds the request id line of an error page.
var requestIDInPage = regexp.MustCompile(`Request ID: <code>[0-9a-f]{32}</code>`)

var validID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// assertJSONRequestID checks that a JSON error names the request id,
// the same as its X-Request-Id header.
func assertJSONRequestID(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	var j struct {
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(body, &j); err != nil || !validID.MatchString(j.RequestID) || resp.Header.Get("X-Request-Id") != j.RequestID {
		t.Errorf("JSON error without its request id (X-Request-Id %q): %v %s", resp.Header.Get("X-Request-Id"), err, body)
	}
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestProxyEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole deployment")
	}
	e := startProxyEnv(t)

	const aliceEmail, aliceName, aliceGroups = "alice@example.com", "Alice Liddell", "admins,dev"
	// Alice signs in once; every subtest uses her session (and can run
	// on its own with -run).
	alice := e.client()
	resp := e.signIn(alice, e.url("app.localhost", "/hello?x=1"), aliceEmail, aliceName, aliceGroups)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	t.Run("SignInAndIdentityJWT", func(t *testing.T) {
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("after sign-in: %s %d\n%s", resp.Request.URL, resp.StatusCode, body)
		}
		if got := resp.Request.URL.String(); got != e.url("app.localhost", "/hello?x=1") {
			t.Fatalf("sign-in ended at %s, want the page first asked for", got)
		}
		var got echoed
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		if got.Path != "/hello" || got.RawQuery != "x=1" {
			t.Fatalf("upstream got %s?%s", got.Path, got.RawQuery)
		}
		h := got.Header
		if h.Get("X-Forwarded-Proto") != "http" || h.Get("X-Forwarded-Host") != "app.localhost:"+e.proxyPort ||
			h.Get("X-Forwarded-For") != "127.0.0.1" {
			t.Errorf("X-Forwarded-Proto %q, X-Forwarded-Host %q, X-Forwarded-For %q",
				h.Get("X-Forwarded-Proto"), h.Get("X-Forwarded-Host"), h.Get("X-Forwarded-For"))
		}
		if !validID.MatchString(h.Get("X-Request-Id")) {
			t.Errorf("upstream X-Request-Id %q", h.Get("X-Request-Id"))
		}
		for _, ck := range h.Values("Cookie") {
			if strings.Contains(ck, "_pomerium") {
				t.Errorf("upstream received the session cookie: %q", ck)
			}
		}

		// The JWT verifies against the JWKS of the route host.
		resp, jwksBody := do(t, alice, http.MethodGet, e.url("app.localhost", "/.well-known/pomerium/jwks.json"), nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("jwks: %d %s", resp.StatusCode, jwksBody)
		}
		var jwks jose.JSONWebKeySet
		if err := json.Unmarshal(jwksBody, &jwks); err != nil || len(jwks.Keys) == 0 {
			t.Fatalf("jwks %v: %s", err, jwksBody)
		}
		assertion := h.Get("X-Pomerium-Jwt-Assertion")
		tok, err := jwt.ParseSigned(assertion, []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA})
		if err != nil {
			t.Fatalf("parse X-Pomerium-Jwt-Assertion %q: %v", assertion, err)
		}
		var std jwt.Claims
		var claims struct {
			Email  string   `json:"email"`
			Name   string   `json:"name"`
			Groups []string `json:"groups"`
			User   string   `json:"user"`
			SID    string   `json:"sid"`
		}
		if err := tok.Claims(jwks, &std, &claims); err != nil {
			t.Fatalf("JWT does not verify against the route host's JWKS: %v", err)
		}
		if err := std.Validate(jwt.Expected{Issuer: "app.localhost", AnyAudience: jwt.Audience{"app.localhost"}, Time: time.Now()}); err != nil {
			t.Fatalf("iss %q aud %v: %v", std.Issuer, std.Audience, err)
		}
		sub := devidp.Subject(aliceEmail)
		if std.Subject != sub || claims.User != sub || claims.Email != aliceEmail || claims.Name != aliceName ||
			strings.Join(claims.Groups, ",") != aliceGroups || claims.SID == "" {
			t.Fatalf("JWT claims sub %q %+v", std.Subject, claims)
		}
		// The claim headers of jwt_claims_headers.
		for k, want := range map[string]string{
			"X-Pomerium-Claim-Email":  aliceEmail,
			"X-Pomerium-Claim-Name":   aliceName,
			"X-Pomerium-Claim-Groups": aliceGroups,
		} {
			if v := h.Values(k); len(v) != 1 || v[0] != want {
				t.Errorf("%s = %q, want %q", k, v, want)
			}
		}

		// The /.pomerium/ page of the route host shows the same identity.
		var user map[string]any
		readJSON(t, get(t, alice, e.url("app.localhost", "/.pomerium/user")), &user)
		if user["email"] != aliceEmail || user["aud"] != "app.localhost" {
			t.Fatalf("/.pomerium/user = %v", user)
		}
	})

	t.Run("ForgedPomeriumHeadersStripped", func(t *testing.T) {
		forged := http.Header{
			"X-Pomerium-Jwt-Assertion":   {"forged.jwt.value"},
			"X-Pomerium-Claim-Email":     {"mallory@evil.test"},
			"X-Pomerium-Claim-Groups":    {"admins"},
			"X-Pomerium-Claim-Custom":    {"forged"},
			"X-Pomerium-Something-Else":  {"forged"},
			"x-pomerium-lowercase":       {"forged"},
			"X_Pomerium_Claim_Email":     {"mallory@evil.test"},
			"X-Pomerium-Routing-Key":     {"forged"},
			"X-Pomerium-Jwt-Assertion-2": {"forged"},
		}
		got := echo(t, alice, e.url("app.localhost", "/forged"), forged)
		h := got.Header
		for _, k := range pomeriumHeaders(h) {
			switch k {
			case "X-Pomerium-Jwt-Assertion", "X-Pomerium-Claim-Email", "X-Pomerium-Claim-Name", "X-Pomerium-Claim-Groups":
			default:
				t.Errorf("forged header %s: %q reached the upstream", k, h[k])
			}
		}
		if v := h.Values("X-Pomerium-Jwt-Assertion"); len(v) != 1 || v[0] == "forged.jwt.value" || strings.Count(v[0], ".") != 2 {
			t.Errorf("X-Pomerium-Jwt-Assertion = %q", v)
		}
		if v := h.Values("X-Pomerium-Claim-Email"); len(v) != 1 || v[0] != aliceEmail {
			t.Errorf("X-Pomerium-Claim-Email = %q", v)
		}
		if v := h.Values("X-Pomerium-Claim-Groups"); len(v) != 1 || v[0] != aliceGroups {
			t.Errorf("X-Pomerium-Claim-Groups = %q", v)
		}

		// The application's own cookies pass; the session cookie does not.
		got = echo(t, alice, e.url("app.localhost", "/cookies"), http.Header{"Cookie": {"theme=dark; x_pomerium=1; _pomerium_pref=2"}})
		cookies := strings.Join(got.Header.Values("Cookie"), "; ")
		for _, want := range []string{"theme=dark", "x_pomerium=1", "_pomerium_pref=2"} {
			if !strings.Contains(cookies, want) {
				t.Errorf("upstream cookies %q lack %s", cookies, want)
			}
		}
		for part := range strings.SplitSeq(cookies, ";") {
			if name, _, _ := strings.Cut(strings.TrimSpace(part), "="); name == "_pomerium" {
				t.Errorf("upstream cookies %q carry the session cookie", cookies)
			}
		}

		// pass_identity_headers: false: no identity header at all, forged or not.
		got = echo(t, alice, e.url("noid.localhost", "/"), forged)
		if ks := pomeriumHeaders(got.Header); len(ks) != 0 {
			t.Errorf("pass_identity_headers false: the upstream got %v", ks)
		}
		if got.Path != "/" {
			t.Errorf("noid: path %q", got.Path)
		}
	})

	t.Run("DenyPolicy", func(t *testing.T) {
		u := e.url("deny.localhost", "/secret")
		resp, body := do(t, alice, http.MethodGet, u, http.Header{"Accept": {"text/html"}})
		if resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("HTML: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if !requestIDInPage.Match(body) {
			t.Errorf("HTML 403 without a request id:\n%s", body)
		}
		resp, body = do(t, alice, http.MethodGet, u, http.Header{"Accept": {"text/html"}, "X-Request-Id": {"e2e-deny-html"}})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "e2e-deny-html") {
			t.Errorf("HTML 403 without the client's request id e2e-deny-html: %d\n%s", resp.StatusCode, body)
		}

		resp, body = do(t, alice, http.MethodGet, u, http.Header{"Accept": {"application/json"}, "X-Request-Id": {"e2e-deny-1"}})
		if resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("JSON: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		var j struct {
			Error     string `json:"error"`
			RequestID string `json:"request_id"`
		}
		if err := json.Unmarshal(body, &j); err != nil {
			t.Fatalf("JSON 403 body: %v: %s", err, body)
		}
		if j.Error == "" || j.RequestID != "e2e-deny-1" {
			t.Errorf("JSON 403 = %s, want an error and request_id e2e-deny-1", body)
		}
		if e.up.lastPath() == "/secret" {
			t.Errorf("the denied request reached the upstream")
		}
	})

	t.Run("RouteMatchingAndRewrites", func(t *testing.T) {
		// Sign in on the routes host (single sign-on: no IdP form).
		echo(t, alice, e.url("routes.localhost", "/exact"), nil)
		for _, c := range []struct{ path, route, upstreamPath string }{
			{"/exact", "path", "/exact"},
			{"/exact?q=1", "path", "/exact"},
			{"/api/users/7", "prefix-rewrite", "/v2/users/7"},
			{"/api/", "prefix-rewrite", "/v2/"},
			{"/re/42", "regex-rewrite", "/num/42"},
			{"/plain/a/b", "prefix", "/plain/a/b"},
		} {
			got := echo(t, alice, e.url("routes.localhost", c.path), nil)
			if got.Header.Get("X-Route") != c.route || got.Path != c.upstreamPath {
				t.Errorf("%s: route %q path %q, want route %q path %q", c.path, got.Header.Get("X-Route"), got.Path, c.route, c.upstreamPath)
			}
		}
		// Escaped characters and the query survive matching and rewrites
		// (an encoded slash is refused: pathnorm_e2e_test.go).
		for _, c := range []struct{ path, rawPath, query string }{
			{"/plain/a%3Bb%20c?q=1&r=%2F", "/plain/a%3Bb%20c", "q=1&r=%2F"},
			{"/api/a%3bb?q=2", "/v2/a%3Bb", "q=2"},
		} {
			got := echo(t, alice, e.url("routes.localhost", c.path), nil)
			if got.RawPath != c.rawPath || got.RawQuery != c.query {
				t.Errorf("%s: upstream got %s?%s, want %s?%s", c.path, got.RawPath, got.RawQuery, c.rawPath, c.query)
			}
		}
		for _, p := range []string{"/exact/more", "/re/abc", "/re/42/x", "/api", "/other"} {
			resp, body := do(t, alice, http.MethodGet, e.url("routes.localhost", p), http.Header{"Accept": {"text/html"}})
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s: %d, want 404 (no route)\n%s", p, resp.StatusCode, body)
			}
		}
	})

	t.Run("WebSocketEcho", func(t *testing.T) {
		echo(t, alice, e.url("ws.localhost", "/"), nil) // sign in on the ws host
		cookie := sessionCookie(t, alice, e.url("ws.localhost", "/"))

		dialWS := func(host string) (*websocket.Conn, error) {
			cfg, err := websocket.NewConfig("ws://"+host+":"+e.proxyPort+"/ws", "http://"+host+":"+e.proxyPort)
			if err != nil {
				return nil, err
			}
			cfg.Header = http.Header{"Cookie": {"_pomerium=" + cookie}}
			conn, err := net.DialTimeout("tcp", "127.0.0.1:"+e.proxyPort, 5*time.Second)
			if err != nil {
				return nil, err
			}
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			ws, err := websocket.NewClient(cfg, conn)
			if err != nil {
				conn.Close()
				return nil, err
			}
			return ws, nil
		}
		ws, err := dialWS("ws.localhost")
		if err != nil {
			t.Fatalf("websocket handshake through the proxy: %v", err)
		}
		defer ws.Close()
		for _, msg := range []string{"hello", strings.Repeat("x", 70000), "bye"} {
			if err := websocket.Message.Send(ws, msg); err != nil {
				t.Fatalf("send: %v", err)
			}
			var back string
			if err := websocket.Message.Receive(ws, &back); err != nil {
				t.Fatalf("receive: %v", err)
			}
			if back != msg {
				t.Fatalf("echo of %d bytes came back as %d bytes", len(msg), len(back))
			}
		}

		// A route without allow_websockets refuses the upgrade.
		if ws, err := dialWS("app.localhost"); err == nil {
			ws.Close()
			t.Errorf("websocket upgrade accepted on a route without allow_websockets")
		}
		resp, body := do(t, alice, http.MethodGet, e.url("app.localhost", "/ws"), http.Header{
			"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"},
			"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "Accept": {"application/json"},
		})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("upgrade on a route without allow_websockets: %d, want 403\n%s", resp.StatusCode, body)
		}
	})

	t.Run("ServerSentEventsStream", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url("app.localhost", "/sse"), nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := alice.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("sse: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
		br := bufio.NewReader(resp.Body)
		for i := 1; i <= sseEvents; i++ {
			// Read one event (up to the blank line) before the upstream
			// is allowed to write the next one.
			var lines []string
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("event %d: %v (read so far %q): the stream is not delivered event by event", i, err, lines)
				}
				line = strings.TrimRight(line, "\r\n")
				if line == "" {
					break
				}
				lines = append(lines, line)
			}
			want := []string{fmt.Sprintf("id: %d", i), fmt.Sprintf("data: event %d", i)}
			if strings.Join(lines, "|") != strings.Join(want, "|") {
				t.Fatalf("event %d = %q, want %q", i, lines, want)
			}
			if i < sseEvents {
				select {
				case e.up.sseAck <- struct{}{}:
				case <-ctx.Done():
					t.Fatalf("upstream did not wait for the ack of event %d", i)
				}
			}
		}
		if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
			t.Fatalf("after the last event: %q %v", rest, err)
		}
	})

	t.Run("LargeUploadBoundedMemory", func(t *testing.T) {
		const size = 100 << 20
		pid := e.procs["proxy"].proc.Pid()
		echo(t, alice, e.url("app.localhost", "/warm-up"), nil)
		for _, c := range []struct {
			name          string
			contentLength int64
		}{{"Content-Length", size}, {"chunked", -1}} {
			rssBefore := procStatus(t, pid, "VmRSS")
			hwmBefore := procStatus(t, pid, "VmHWM")

			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url("app.localhost", "/upload"), io.NopCloser(io.LimitReader(zeros{}, size)))
			req.ContentLength = c.contentLength
			req.Header.Set("Content-Type", "application/octet-stream")
			start := time.Now()
			resp, err := alice.Do(req)
			if err != nil {
				cancel()
				t.Fatalf("%s: %v", c.name, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			cancel()
			if resp.StatusCode != http.StatusOK || string(body) != strconv.Itoa(size) {
				t.Fatalf("%s upload: %d %q, want 200 %d", c.name, resp.StatusCode, body, size)
			}
			rssAfter := procStatus(t, pid, "VmRSS")
			hwmAfter := procStatus(t, pid, "VmHWM")
			// The peak during the upload: VmHWM when it rose, else at
			// most the earlier peak, so use what is resident now.
			peak := rssAfter
			if hwmAfter > hwmBefore {
				peak = max(hwmAfter, rssAfter)
			}
			growth := peak - rssBefore
			t.Logf("100 MB upload (%s) in %v; proxy RSS %d MB before, %d MB after, peak growth %d MB",
				c.name, time.Since(start).Round(time.Millisecond), rssBefore>>20, rssAfter>>20, growth>>20)
			if growth > 40<<20 {
				t.Fatalf("the proxy's memory grew by %d MB during a 100 MB upload (%s): the body is buffered", growth>>20, c.name)
			}
		}
	})

	t.Run("UpstreamTooSlow", func(t *testing.T) {
		start := time.Now()
		resp, body := do(t, alice, http.MethodGet, e.url("slow.localhost", "/slow"), http.Header{"Accept": {"text/html"}})
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("slow upstream: %d, want 504\n%s", resp.StatusCode, body)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("504 after %v; the route's timeout is 300ms", d)
		}
	})

	t.Run("UpstreamDown", func(t *testing.T) {
		u := e.url("down.localhost", "/")
		echoDown := func(accept string) (*http.Response, []byte) {
			return do(t, alice, http.MethodGet, u, http.Header{"Accept": {accept}})
		}
		resp, body := echoDown("text/html")
		if resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("upstream down: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		resp, body = echoDown("application/json")
		if resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("upstream down, JSON: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		assertJSONRequestID(t, resp, body)
	})

	t.Run("ProgrammaticLogin", func(t *testing.T) {
		// The callback of a CLI: a local port (allowed by default).
		cb := "http://localhost:" + e.proxyPort + "/cb"
		api := &http.Client{Transport: &http.Transport{DialContext: loopbackDial}, Timeout: 10 * time.Second}
		resp, body := do(t, api, http.MethodGet, e.url("app.localhost", "/.pomerium/api/v1/login?pomerium_redirect_uri="+url.QueryEscape(cb)), nil)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("login API: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		signInURL := strings.TrimSpace(string(body))
		if !strings.HasPrefix(signInURL, "http://authenticate.localhost:"+e.authnPort+"/.pomerium/sign_in?") {
			t.Fatalf("login API answered %q", signInURL)
		}

		// A fresh browser signs in at that URL; the last redirect goes
		// to the CLI's callback with pomerium_jwt.
		browser := e.client()
		var final *url.URL
		browser.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if req.URL.Query().Has("pomerium_jwt") {
				final = req.URL
				return http.ErrUseLastResponse
			}
			if len(via) > 10 {
				return errors.New("too many redirects")
			}
			return nil
		}
		resp = e.signIn(browser, signInURL, "carol@example.com", "Carol", "ops")
		resp.Body.Close()
		if final == nil {
			t.Fatalf("sign-in ended at %s %d without a redirect carrying pomerium_jwt", resp.Request.URL, resp.StatusCode)
		}
		if final.Host != "localhost:"+e.proxyPort || final.Path != "/cb" {
			t.Fatalf("redirected to %s, want %s", final, cb)
		}
		handle := final.Query().Get("pomerium_jwt")

		// The handle works as a bearer token, without cookies.
		got := echo(t, api, e.url("app.localhost", "/api-call"), http.Header{"Authorization": {"Bearer Pomerium-" + handle}, "Accept": {"application/json"}})
		if got.Header.Get("X-Pomerium-Claim-Email") != "carol@example.com" {
			t.Fatalf("bearer request: upstream claim email %q", got.Header.Get("X-Pomerium-Claim-Email"))
		}
		if v := got.Header.Get("Authorization"); v != "" {
			t.Errorf("the upstream received the Pomerium credential: Authorization %q", v)
		}
		for _, h := range []http.Header{
			{"Authorization": {"Pomerium " + handle}},
			{"X-Pomerium-Authorization": {handle}},
		} {
			h.Set("Accept", "application/json")
			got := echo(t, api, e.url("app.localhost", "/api-call"), h)
			if got.Header.Get("X-Pomerium-Claim-Email") != "carol@example.com" || got.Header.Get("Authorization") != "" ||
				got.Header.Get("X-Pomerium-Authorization") != "" {
				t.Errorf("credential %v: upstream got %v", h, got.Header)
			}
		}
		// Without it the API client is refused with 401, not redirected.
		resp, body = do(t, api, http.MethodGet, e.url("app.localhost", "/api-call"), http.Header{"Accept": {"application/json"}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("no credential: %d\n%s", resp.StatusCode, body)
		}
		resp, body = do(t, api, http.MethodGet, e.url("app.localhost", "/api-call"), http.Header{"Authorization": {"Bearer Pomerium-" + handle + "x"}, "Accept": {"application/json"}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("bad credential: %d\n%s", resp.StatusCode, body)
		}
		// A redirect URI on a foreign host is refused.
		resp, body = do(t, api, http.MethodGet, e.url("app.localhost", "/.pomerium/api/v1/login?pomerium_redirect_uri="+url.QueryEscape("https://evil.test/cb")), nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("foreign redirect URI: %d\n%s", resp.StatusCode, body)
		}
	})

	t.Run("OtherRegistrableDomain", func(t *testing.T) {
		// Bob signs in on app.example.test: authenticate is on
		// authenticate.localhost, so its cookie can never reach the route
		// host; the session arrives through the route host's callback.
		bob := e.client()
		var visited []string
		bob.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			visited = append(visited, req.URL.Host+req.URL.Path)
			if len(via) > 10 {
				return errors.New("too many redirects")
			}
			return nil
		}
		target := e.url("app.example.test", "/page?y=2")
		resp := e.signIn(bob, target, "bob@example.com", "Bob", "")
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != target {
			t.Fatalf("ended at %s %d\n%s", resp.Request.URL, resp.StatusCode, body)
		}
		callback := "app.example.test:" + e.proxyPort + "/.pomerium/callback/"
		found := false
		for _, v := range visited {
			found = found || v == callback
		}
		if !found {
			t.Fatalf("sign-in did not pass %s; redirects: %v", callback, visited)
		}
		if sessionCookie(t, bob, target) == "" {
			t.Fatal("empty session cookie on app.example.test")
		}
		var got echoed
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		if got.Header.Get("X-Pomerium-Claim-Email") != "bob@example.com" || got.Path != "/page" {
			t.Fatalf("upstream got %s with email %q", got.Path, got.Header.Get("X-Pomerium-Claim-Email"))
		}
		var user map[string]any
		readJSON(t, get(t, bob, e.url("app.example.test", "/.pomerium/user")), &user)
		if user["iss"] != "app.example.test" || user["aud"] != "app.example.test" || user["email"] != "bob@example.com" {
			t.Fatalf("/.pomerium/user on app.example.test = %v", user)
		}
		// The session works on the route host from now on.
		if got := echo(t, bob, e.url("app.example.test", "/again"), nil); got.Header.Get("X-Pomerium-Claim-Email") != "bob@example.com" {
			t.Fatalf("second request: %v", got.Header)
		}
	})

	// Last: it stops authorize.
	t.Run("AuthorizeDownFailsClosed", func(t *testing.T) {
		u := e.url("app.localhost", "/during-outage")
		e.stop("authorize")
		resp, body := do(t, alice, http.MethodGet, u, http.Header{"Accept": {"text/html"}})
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("authorize down: %d, want 503\n%s", resp.StatusCode, body)
		}
		if e.up.lastPath() == "/during-outage" {
			t.Fatal("a request reached the upstream while authorize was down")
		}
		resp, body = do(t, alice, http.MethodGet, u, http.Header{"Accept": {"application/json"}})
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("authorize down, JSON: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		assertJSONRequestID(t, resp, body)

		e.start("authorize")
		e.waitReady("authorize")
		testutil.WaitFor(t, 15*time.Second, "the proxy to reach the restarted authorize", func() error {
			resp, body := do(t, alice, http.MethodGet, e.url("app.localhost", "/after-outage"), http.Header{"Accept": {"text/html"}})
			switch resp.StatusCode {
			case http.StatusOK:
				var got echoed
				if err := json.Unmarshal(body, &got); err != nil || got.Header.Get("X-Pomerium-Claim-Email") != aliceEmail {
					t.Fatalf("after restart: %v %s", err, body)
				}
				return nil
			case http.StatusServiceUnavailable:
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			t.Fatalf("after authorize restarted: %d\n%s", resp.StatusCode, body)
			return nil
		})
	})
}

func (u *upstream) lastPath() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.last == nil {
		return ""
	}
	return u.last.Path
}
