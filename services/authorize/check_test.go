package authorize

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/cryptutil"
	"github.com/gatehouse/gatehouse/pkg/extauthz"
	"github.com/gatehouse/gatehouse/pkg/handoff"
	"github.com/gatehouse/gatehouse/pkg/sessionhandle"
)

// tokens are the session handles of the table's users.
type tokens struct {
	alice, bob, carol        string
	expiredSession, deleted  string
	otherUser, unknown, junk string
	expiredHandle            string
}

func setupTokens(t *testing.T, s *Service) tokens {
	var tk tokens
	tk.alice = signIn(t, s, alice, "sess-alice", 2)
	tk.bob = signIn(t, s, bob, "sess-bob", 3)
	tk.carol = signIn(t, s, carol, "sess-carol", 4)

	s.store.putSession(alice.session("sess-expired", time.Now().Add(-time.Minute)), 5)
	tk.expiredSession = handleFor(t, s, alice.id, "sess-expired", 1, 5)

	s.store.putSession(alice.session("sess-deleted", time.Now().Add(time.Hour)), 6)
	tk.deleted = handleFor(t, s, alice.id, "sess-deleted", 1, 6)
	s.store.deleteSession("sess-deleted", 7)

	tk.otherUser = handleFor(t, s, bob.id, "sess-alice", 1, 2) // alice's session, bob's sub
	tk.unknown = handleFor(t, s, alice.id, "sess-never", 1, 3) // old version: no wait
	tk.junk = "not.a.handle"

	now := time.Now()
	exp, err := encodeHandle(s, alice.id, "sess-alice", now.Add(-2*time.Hour), now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tk.expiredHandle = exp
	return tk
}

func TestCheck(t *testing.T) {
	s := newTestService(t, testConfig(t, testConfigYAML))
	tk := setupTokens(t, s)
	jwks := s.state.Load().keys.JWKS()

	type want struct {
		status int // 0 = allowed
		check  func(t *testing.T, resp *authv3.CheckResponse)
	}
	allowed := want{status: 0}
	tests := []struct {
		name string
		req  *authv3.CheckRequest
		want want
	}{
		{
			name: "guide policy allows alice with identity headers",
			req:  newReq("GET", "https://grafana.localhost.pomerium.io/d/abc?orgId=1", cookie(tk.alice), fromBrowser()),
			want: want{check: func(t *testing.T, resp *authv3.CheckResponse) {
				h := okHeaders(resp)
				claims := verifyJWT(t, jwks, h["x-pomerium-jwt-assertion"])
				for k, v := range map[string]any{
					"iss": "grafana.localhost.pomerium.io", "aud": "grafana.localhost.pomerium.io",
					"sub": "alice-id", "user": "alice-id", "email": "alice@example.com", "name": "Alice", "sid": "sess-alice",
				} {
					if claims[k] != v {
						t.Errorf("claim %s = %v, want %v", k, claims[k], v)
					}
				}
				if g, _ := claims["groups"].([]any); len(g) != 2 || g[0] != "admins" || g[1] != "staff" {
					t.Errorf("groups = %v", claims["groups"])
				}
				iat, exp := claims["iat"].(float64), claims["exp"].(float64)
				if exp-iat != 300 {
					t.Errorf("exp - iat = %v, want 300", exp-iat)
				}
				if claims["jti"] == "" || claims["jti"] == nil {
					t.Error("no jti")
				}
				if h["x-pomerium-claim-email"] != "alice@example.com" || h["x-pomerium-claim-groups"] != "admins,staff" {
					t.Errorf("claim headers: %v", h)
				}
				if r := resp.GetOkResponse().GetHeadersToRemove(); len(r) != 0 {
					t.Errorf("headers to remove: %v", r)
				}
			}},
		},
		{
			name: "guide policy denies bob, browser gets the HTML page",
			req:  newReq("GET", "https://grafana.localhost.pomerium.io/", cookie(tk.bob), fromBrowser()),
			want: want{status: 403, check: func(t *testing.T, resp *authv3.CheckResponse) {
				body := resp.GetDeniedResponse().GetBody()
				for _, s := range []string{"403 Forbidden", "req-1", "/.pomerium/sign_out", "GET https://grafana.localhost.pomerium.io/"} {
					if !strings.Contains(body, s) {
						t.Errorf("page lacks %q:\n%s", s, body)
					}
				}
				if ct := deniedHeaders(resp)["content-type"]; !strings.HasPrefix(ct, "text/html") {
					t.Errorf("content-type %q", ct)
				}
				if resp.GetStatus().GetCode() != int32(codes.PermissionDenied) {
					t.Errorf("rpc code %d", resp.GetStatus().GetCode())
				}
			}},
		},
		{
			name: "guide policy denies bob, API client gets JSON",
			req:  newReq("GET", "https://grafana.localhost.pomerium.io/api/dashboards", cookie(tk.bob), header("accept", "application/json")),
			want: want{status: 403, check: func(t *testing.T, resp *authv3.CheckResponse) {
				m := jsonBody(t, resp.GetDeniedResponse().GetBody())
				if m["error"] != "forbidden" || m["request_id"] != "req-1" {
					t.Errorf("body %v", m)
				}
			}},
		},
		{
			name: "browser without a session is sent to sign in",
			req:  newReq("GET", "https://grafana.localhost.pomerium.io/d/abc?orgId=1", fromBrowser()),
			want: want{status: 302, check: func(t *testing.T, resp *authv3.CheckResponse) {
				checkSignInRedirect(t, s, resp, "https://grafana.localhost.pomerium.io/d/abc?orgId=1")
			}},
		},
		{
			name: "XHR without a session gets 401 JSON",
			req:  newReq("GET", "https://grafana.localhost.pomerium.io/api/x", xhr()),
			want: want{status: 401, check: func(t *testing.T, resp *authv3.CheckResponse) {
				m := jsonBody(t, resp.GetDeniedResponse().GetBody())
				if m["error"] != "unauthenticated" || m["request_id"] != "req-1" {
					t.Errorf("body %v", m)
				}
				if resp.GetStatus().GetCode() != int32(codes.Unauthenticated) {
					t.Errorf("rpc code %d", resp.GetStatus().GetCode())
				}
				if deniedHeaders(resp)["www-authenticate"] == "" {
					t.Error("no WWW-Authenticate")
				}
			}},
		},
		{name: "JSON client without a session gets 401", req: newReq("POST", "https://grafana.localhost.pomerium.io/api/x", fromBrowser(), header("content-type", "application/json")), want: want{status: 401}},
		{name: "gRPC client without a session gets 401", req: newReq("POST", "https://grafana.localhost.pomerium.io/svc/M", header("content-type", "application/grpc")), want: want{status: 401}},
		{name: "API client preferring JSON without a session gets 401", req: newReq("GET", "https://grafana.localhost.pomerium.io/api/x", header("accept", "application/json, text/plain, */*")), want: want{status: 401}},
		// Pomerium's rule (issue 14): Accept */* or none is a browser.
		{name: "curl without a session is sent to sign in", req: newReq("GET", "https://grafana.localhost.pomerium.io/", header("accept", "*/*")), want: want{status: 302}},
		{name: "no Accept without a session is sent to sign in", req: newReq("GET", "https://grafana.localhost.pomerium.io/"), want: want{status: 302}},
		{name: "junk cookie is not signed in", req: newReq("GET", "https://grafana.localhost.pomerium.io/", cookie(tk.junk), fromBrowser()), want: want{status: 302}},
		{name: "expired handle is not signed in", req: newReq("GET", "https://grafana.localhost.pomerium.io/", cookie(tk.expiredHandle), jsonClient()), want: want{status: 401}},
		{name: "expired session is not signed in", req: newReq("GET", "https://grafana.localhost.pomerium.io/", cookie(tk.expiredSession), jsonClient()), want: want{status: 401}},
		{name: "deleted session is not signed in", req: newReq("GET", "https://grafana.localhost.pomerium.io/", cookie(tk.deleted), fromBrowser()), want: want{status: 302}},
		{name: "unknown session is not signed in", req: newReq("GET", "https://grafana.localhost.pomerium.io/", cookie(tk.unknown), jsonClient()), want: want{status: 401}},
		{name: "handle naming another user than its session is refused", req: newReq("GET", "https://grafana.localhost.pomerium.io/", cookie(tk.otherUser), jsonClient()), want: want{status: 401}},
		{
			name: "handle signed with another key is refused",
			req:  newReq("GET", "https://grafana.localhost.pomerium.io/", cookie(foreignHandle(t)), jsonClient()),
			want: want{status: 401},
		},
		{
			name: "Authorization Bearer Pomerium- handle, removed upstream",
			req:  newReq("GET", "https://grafana.localhost.pomerium.io/", header("authorization", "Bearer Pomerium-"+tk.alice)),
			want: want{check: func(t *testing.T, resp *authv3.CheckResponse) {
				if !slices.Contains(resp.GetOkResponse().GetHeadersToRemove(), "authorization") {
					t.Errorf("authorization not removed: %v", resp.GetOkResponse().GetHeadersToRemove())
				}
			}},
		},
		{name: "Authorization Pomerium handle", req: newReq("GET", "https://grafana.localhost.pomerium.io/", header("authorization", "Pomerium "+tk.alice)), want: allowed},
		{name: "X-Pomerium-Authorization handle", req: newReq("GET", "https://grafana.localhost.pomerium.io/", header("x-pomerium-authorization", tk.alice)), want: allowed},
		{name: "other Authorization is ignored, cookie used", req: newReq("GET", "https://grafana.localhost.pomerium.io/", header("authorization", "Bearer abc"), cookie(tk.alice)), want: allowed},
		{name: "bob via bearer is denied 403", req: newReq("GET", "https://grafana.localhost.pomerium.io/", header("authorization", "Bearer Pomerium-"+tk.bob)), want: want{status: 403}},
		{
			name: "unknown host is 404",
			req:  newReq("GET", "https://nothing.localhost.pomerium.io/", cookie(tk.alice), fromBrowser()),
			want: want{status: 404, check: func(t *testing.T, resp *authv3.CheckResponse) {
				if !strings.Contains(resp.GetDeniedResponse().GetBody(), "404 Not Found") {
					t.Errorf("body: %s", resp.GetDeniedResponse().GetBody())
				}
			}},
		},
		{
			name: "public route without a session passes without identity",
			req:  newReq("GET", "https://public.localhost.pomerium.io/x"),
			want: want{check: func(t *testing.T, resp *authv3.CheckResponse) {
				if _, ok := okHeaders(resp)["x-pomerium-jwt-assertion"]; ok {
					t.Error("JWT without a session")
				}
				if !slices.Contains(resp.GetOkResponse().GetHeadersToRemove(), "x-pomerium-jwt-assertion") {
					t.Errorf("remove: %v", resp.GetOkResponse().GetHeadersToRemove())
				}
			}},
		},
		{
			name: "public route with a session passes identity",
			req:  newReq("GET", "https://public.localhost.pomerium.io/x", cookie(tk.bob)),
			want: want{check: func(t *testing.T, resp *authv3.CheckResponse) {
				claims := verifyJWT(t, jwks, okHeaders(resp)["x-pomerium-jwt-assertion"])
				if claims["email"] != "bob@other.org" {
					t.Errorf("claims %v", claims)
				}
				if g, ok := claims["groups"].([]any); !ok || len(g) != 0 {
					t.Errorf("groups = %#v, want []", claims["groups"])
				}
			}},
		},
		{
			name: "route without pass_identity_headers strips identity",
			req:  newReq("GET", "https://nopass.localhost.pomerium.io/", cookie(tk.bob)),
			want: want{check: func(t *testing.T, resp *authv3.CheckResponse) {
				h := okHeaders(resp)
				if _, ok := h["x-pomerium-jwt-assertion"]; ok {
					t.Error("JWT sent with pass_identity_headers off")
				}
				if h["x-custom"] != "hello" {
					t.Errorf("set_request_headers missing: %v", h)
				}
				rm := resp.GetOkResponse().GetHeadersToRemove()
				for _, n := range []string{"x-pomerium-jwt-assertion", "x-pomerium-claim-email", "x-pomerium-claim-groups"} {
					if !slices.Contains(rm, n) {
						t.Errorf("%s not removed: %v", n, rm)
					}
				}
			}},
		},
		{
			name: "internal check passes the JWT even without pass_identity_headers",
			req:  newReq("GET", "https://nopass.localhost.pomerium.io/.pomerium/", cookie(tk.bob), ctxExt("internal", "true"), ctxExt("route_id", "nopass")),
			want: want{check: func(t *testing.T, resp *authv3.CheckResponse) {
				claims := verifyJWT(t, jwks, okHeaders(resp)["x-pomerium-jwt-assertion"])
				if claims["aud"] != "nopass.localhost.pomerium.io" {
					t.Errorf("aud %v", claims["aud"])
				}
				if _, ok := okHeaders(resp)["x-custom"]; ok {
					t.Error("route headers on an internal answer")
				}
			}},
		},
		{name: "internal check ignores the route policy", req: newReq("GET", "https://grafana.localhost.pomerium.io/.pomerium/", cookie(tk.bob), ctxExt("internal", "true")), want: allowed},
		{name: "internal check on a host without a route", req: newReq("GET", "https://nothing.localhost.pomerium.io/.pomerium/", cookie(tk.bob), ctxExt("internal", "true")), want: allowed},
		{name: "internal check without a session signs in", req: newReq("GET", "https://grafana.localhost.pomerium.io/.pomerium/", fromBrowser(), ctxExt("internal", "true")), want: want{status: 302}},
		{
			name: "route_id picks the route over the host",
			req:  newReq("GET", "https://grafana.localhost.pomerium.io/", cookie(tk.bob), ctxExt("route_id", "nopass")),
			want: allowed,
		},
		{name: "unknown route_id falls back to the host", req: newReq("GET", "https://grafana.localhost.pomerium.io/", cookie(tk.bob), ctxExt("route_id", "gone")), want: want{status: 403}},
		{name: "prefix route: carol is no admin", req: newReq("GET", "https://app.localhost.pomerium.io/admin/users", cookie(tk.carol)), want: want{status: 403}},
		{name: "prefix route: alice is an admin", req: newReq("GET", "https://app.localhost.pomerium.io/admin/users", cookie(tk.alice)), want: allowed},
		{
			name: "second route on the host for other paths, with set_request_headers",
			req:  newReq("GET", "https://app.localhost.pomerium.io/home", cookie(tk.carol)),
			want: want{check: func(t *testing.T, resp *authv3.CheckResponse) {
				h := okHeaders(resp)
				if h["x-app"] != "yes" || h["x-pomerium-jwt-assertion"] == "" {
					t.Errorf("headers %v", h)
				}
			}},
		},
		{name: "wildcard host", req: newReq("GET", "https://a.wild.localhost.pomerium.io/", cookie(tk.bob)), want: allowed},
		{name: "wildcard host needs the suffix", req: newReq("GET", "https://wild.localhost.pomerium.io/", cookie(tk.bob)), want: want{status: 404}},
		{name: "host is matched without regard to case and port", req: newReq("GET", "https://Grafana.localhost.pomerium.io:443/", cookie(tk.alice)), want: allowed},
		{name: "route with a port needs it", req: newReq("GET", "https://port.localhost.pomerium.io:8443/", cookie(tk.alice)), want: allowed},
		{name: "route with a port refuses another", req: newReq("GET", "https://port.localhost.pomerium.io:9443/", cookie(tk.alice)), want: want{status: 404}},
		{name: "source_ip inside the range", req: newReq("GET", "https://office.localhost.pomerium.io/", sourceIP("10.1.2.3")), want: allowed},
		{name: "source_ip outside the range", req: newReq("GET", "https://office.localhost.pomerium.io/", sourceIP("10.2.2.3")), want: want{status: 403}},
		{name: "deny wins over allow", req: newReq("DELETE", "https://dd.localhost.pomerium.io/x", cookie(tk.bob)), want: want{status: 403}},
		{name: "deny leaves other methods", req: newReq("GET", "https://dd.localhost.pomerium.io/x", cookie(tk.bob)), want: allowed},
		{name: "deny route without a session signs in", req: newReq("DELETE", "https://dd.localhost.pomerium.io/x", fromBrowser()), want: want{status: 302}},
		{
			name: "no HTTP attributes is 400",
			req:  &authv3.CheckRequest{},
			want: want{status: 400},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := s.Check(context.Background(), tt.req)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if tt.want.status == 0 {
				if !extauthz.Allowed(resp) {
					t.Fatalf("denied %d: %s", extauthz.DeniedStatus(resp), resp.GetDeniedResponse().GetBody())
				}
			} else {
				if extauthz.Allowed(resp) {
					t.Fatalf("allowed, want %d (headers %v)", tt.want.status, okHeaders(resp))
				}
				if got := extauthz.DeniedStatus(resp); got != tt.want.status {
					t.Fatalf("status %d, want %d: %s", got, tt.want.status, resp.GetDeniedResponse().GetBody())
				}
			}
			if tt.want.check != nil {
				tt.want.check(t, resp)
			}
		})
	}
}

func checkSignInRedirect(t *testing.T, s *Service, resp *authv3.CheckResponse, wantRedirect string) {
	t.Helper()
	loc := deniedHeaders(resp)["location"]
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("location %q: %v", loc, err)
	}
	if u.Host != "authenticate.localhost.pomerium.io" || u.Path != handoff.SignInPath {
		t.Errorf("location %q", loc)
	}
	if got := u.Query().Get(handoff.QueryRedirectURI); got != wantRedirect {
		t.Errorf("redirect uri %q, want %q", got, wantRedirect)
	}
	if err := cryptutil.VerifySignedURL(s.state.Load().urlKey, u, time.Now()); err != nil {
		t.Errorf("sign-in URL signature: %v", err)
	}
	if resp.GetStatus().GetCode() != int32(codes.Unauthenticated) {
		t.Errorf("rpc code %d", resp.GetStatus().GetCode())
	}
}

func TestCheckJWTCache(t *testing.T) {
	s := newTestService(t, testConfig(t, testConfigYAML))
	tk := setupTokens(t, s)
	jwt := func(tok, host string) string {
		t.Helper()
		resp, err := s.Check(context.Background(), newReq("GET", "https://"+host+"/", cookie(tok)))
		if err != nil || !extauthz.Allowed(resp) {
			t.Fatalf("Check: %v %v", resp, err)
		}
		return okHeaders(resp)["x-pomerium-jwt-assertion"]
	}
	a1 := jwt(tk.alice, "grafana.localhost.pomerium.io")
	a2 := jwt(tk.alice, "grafana.localhost.pomerium.io")
	if a1 != a2 {
		t.Error("warm cache signed a new JWT")
	}
	c1 := jwt(tk.carol, "app.localhost.pomerium.io")
	if c1 == a1 {
		t.Error("carol got alice's JWT")
	}
	if a3 := jwt(tk.alice, "app.localhost.pomerium.io"); a3 == a1 {
		t.Error("another audience reused the JWT")
	}
	// A change to the user is seen at once: a new JWT with the new email.
	u := alice.record()
	u.Email = "alice.new@example.com"
	s.store.putUser(u, 20)
	a4 := jwt(tk.alice, "grafana.localhost.pomerium.io")
	if a4 == a1 {
		t.Fatal("JWT not re-signed after the user changed")
	}
	if c := verifyJWT(t, s.state.Load().keys.JWKS(), a4); c["email"] != "alice.new@example.com" {
		t.Errorf("email %v", c["email"])
	}
	// A JWT within a minute of its expiry is replaced.
	st := s.state.Load()
	st.jwts.mu.Lock()
	for k, e := range st.jwts.m {
		e2 := *e
		e2.refreshAt = time.Now().Add(-time.Second)
		st.jwts.m[k] = &e2
	}
	st.jwts.mu.Unlock()
	if a5 := jwt(tk.alice, "grafana.localhost.pomerium.io"); a5 == a4 {
		t.Error("JWT past its refresh time was served")
	}
}

func TestCheckWaitsForNewSession(t *testing.T) {
	s := newTestService(t, testConfig(t, testConfigYAML))
	s.store.putUser(alice.record(), 2)
	// The handle was written at version 10; the store has seen 2.
	tok := handleFor(t, s, alice.id, "sess-new", 1, 10)
	// The session arrives once Check waits for it.
	ctx := newWaitSignal(context.Background())
	go func() {
		<-ctx.waiting
		s.store.putSession(alice.session("sess-new", time.Now().Add(time.Hour)), 10)
	}()
	resp, err := s.Check(ctx, newReq("GET", "https://grafana.localhost.pomerium.io/", cookie(tok)))
	if err != nil || !extauthz.Allowed(resp) {
		t.Fatalf("Check: %v %v", resp, err)
	}
}

// waitSignal is a context that tells a test when the code it was passed
// to waits on it: the store's wait for a session selects on ctx.Done(),
// and nothing before it on Check's path calls Done.
type waitSignal struct {
	context.Context
	waiting chan struct{} // closed at the first call of Done
	once    sync.Once
}

func newWaitSignal(ctx context.Context) *waitSignal {
	return &waitSignal{Context: ctx, waiting: make(chan struct{})}
}

func (w *waitSignal) Done() <-chan struct{} {
	w.once.Do(func() { close(w.waiting) })
	return w.Context.Done()
}

func TestCheckWaitIsBounded(t *testing.T) {
	s := newTestService(t, testConfig(t, testConfigYAML))
	s.sessionWait = 100 * time.Millisecond
	tok := handleFor(t, s, alice.id, "sess-late", 1, 50)
	start := time.Now()
	resp, err := s.Check(context.Background(), newReq("GET", "https://grafana.localhost.pomerium.io/", cookie(tok), jsonClient()))
	if err != nil {
		t.Fatal(err)
	}
	if extauthz.DeniedStatus(resp) != http.StatusUnauthorized {
		t.Errorf("status %d", extauthz.DeniedStatus(resp))
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("waited %v", d)
	}

	// The store caught up without the session: no wait at all.
	s.store.markSynced(1, 60)
	start = time.Now()
	if _, err := s.Check(context.Background(), newReq("GET", "https://grafana.localhost.pomerium.io/", cookie(tok))); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("waited %v for a store that has caught up", d)
	}

	// A handle from another store (other server version): no wait.
	tok2 := handleFor(t, s, alice.id, "sess-other", 99, 500)
	start = time.Now()
	if _, err := s.Check(context.Background(), newReq("GET", "https://grafana.localhost.pomerium.io/", cookie(tok2))); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("waited %v for a handle of another store", d)
	}

	// The caller giving up ends the wait.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	s.sessionWait = time.Minute
	tok3 := handleFor(t, s, alice.id, "sess-late3", 1, 1000)
	start = time.Now()
	if _, err := s.Check(ctx, newReq("GET", "https://grafana.localhost.pomerium.io/", cookie(tok3))); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("waited %v past the caller's deadline", d)
	}
}

func TestConfigReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(testConfigYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(string) (string, bool) { return "", false }
	src, err := config.NewSource(path, env, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), Options{Source: src, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	s.store.markSynced(1, 1)
	tok := signIn(t, s, bob, "sess-bob", 2)
	req := func() *authv3.CheckRequest {
		return newReq("GET", "https://grafana.localhost.pomerium.io/", cookie(tok))
	}
	resp, _ := s.Check(context.Background(), req())
	if extauthz.DeniedStatus(resp) != 403 {
		t.Fatalf("before reload: %d", extauthz.DeniedStatus(resp))
	}
	// Allow other.org too, and change the claim headers.
	cfg := strings.Replace(testConfigYAML, "is: example.com", "in: [example.com, other.org]", 1)
	cfg = strings.Replace(cfg, "jwt_claims_headers: email,groups", "jwt_claims_headers: name", 1)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := src.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, _ = s.Check(context.Background(), req())
	if !extauthz.Allowed(resp) {
		t.Fatalf("after reload: %d", extauthz.DeniedStatus(resp))
	}
	h := okHeaders(resp)
	if h["x-pomerium-claim-name"] != "Bob" || h["x-pomerium-claim-email"] != "" {
		t.Errorf("claim headers after reload: %v", h)
	}
	// A bad file is refused and the running config stays.
	if err := os.WriteFile(path, []byte("routes: [{from: nope}]"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := src.Reload(context.Background()); err == nil {
		t.Fatal("bad config accepted")
	}
	if resp, _ = s.Check(context.Background(), req()); !extauthz.Allowed(resp) {
		t.Fatal("bad reload changed the running config")
	}
}

func TestDecisionLog(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(context.Background(), Options{Source: config.NewStaticSource(testConfig(t, testConfigYAML)), Logger: logger, DecisionLogLevel: slog.LevelDebug})
	if err != nil {
		t.Fatal(err)
	}
	s.store.markSynced(1, 1)
	tok := signIn(t, s, bob, "sess-bob", 2)
	buf.Reset()
	if _, err := s.Check(context.Background(), newReq("GET", "https://grafana.localhost.pomerium.io/x?q=secret", cookie(tok))); err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", buf.String(), err)
	}
	want := map[string]any{
		"level": "INFO", "request_id": "req-1", "method": "GET", "host": "grafana.localhost.pomerium.io",
		"path": "/x", "user": "bob-id", "email": "bob@other.org", "decision": "deny", "reason": "domain-unauthorized",
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %v", k, line[k], v)
		}
	}
	if line["route"] == "" || line["route"] == nil {
		t.Error("no route id")
	}
	if strings.Contains(buf.String(), tok) || strings.Contains(buf.String(), "secret") {
		t.Error("log carries the handle or the query")
	}

	// A denial is logged at info even though allows go to debug; with an
	// info-level logger, allowed decisions cost nothing and print nothing.
	buf.Reset()
	s.logger = slog.New(slog.NewJSONHandler(&buf, nil))
	aliceTok := signIn(t, s, alice, "sess-alice", 3)
	if _, err := s.Check(context.Background(), newReq("GET", "https://grafana.localhost.pomerium.io/", cookie(aliceTok))); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Errorf("logged %q", buf.String())
	}
}

func encodeHandle(s *Service, uid, sid string, iat, exp time.Time) (string, error) {
	return sessionhandle.Encode(s.state.Load().handleKey, &sessionhandle.Handle{
		ID: sid, UserID: uid, IssuedAt: iat, Expiry: exp, DatabrokerServerVersion: 1, DatabrokerRecordVersion: 1,
	})
}

func foreignHandle(t *testing.T) string {
	tok, err := sessionhandle.Encode([]byte("another-secret-another-secret-32"), &sessionhandle.Handle{
		ID: "sess-alice", UserID: alice.id, Expiry: time.Now().Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
