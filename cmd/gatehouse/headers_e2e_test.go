package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/gatehouse/gatehouse/pkg/config/configtest"
	"github.com/gatehouse/gatehouse/pkg/testutil"
)

// The identity-header end-to-end test runs gatehouse all-in-one (one
// process, every service) with map-form jwt_claims_headers and a route
// with set_request_headers, signs a user in at the dev IdP, and checks
// what the upstream receives when the client forges, hides or smuggles
// headers, and which protocol upgrades reach an upstream that would
// switch to anything.

// startSwitchingUpstream answers 101 to any Upgrade, naming the protocol
// asked for, and echoes one line inside the tunnel; a request without
// Upgrade gets 200 "plain upgrade=<what it saw>".
func startSwitchingUpstream(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := r.Header.Get("Upgrade")
		if up == "" {
			fmt.Fprintf(w, "plain upgrade=%s", up)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n", up)
		_ = brw.Flush()
		line, _ := brw.ReadString('\n')
		fmt.Fprintf(brw, "tunnel: %s", line)
		_ = brw.Flush()
	}))
	t.Cleanup(srv.Close)
	return srv
}

// rawUpgrade sends GET / with the Upgrade headers to host through the
// proxy at addr, with the session cookie, over a fresh connection, and
// returns the status and the body (or, after a 101, the tunnel's echo).
func rawUpgrade(t *testing.T, addr, host, cookie string, hdr ...string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "GET / HTTP/1.1\r\nHost: %s\r\nCookie: _pomerium=%s\r\nAccept: application/json\r\n", host, cookie)
	for i := 0; i+1 < len(hdr); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", hdr[i], hdr[i+1])
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		_, _ = io.WriteString(conn, "ping\n")
		line, _ := br.ReadString('\n')
		return resp.StatusCode, line
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestIdentityHeadersEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts gatehouse and the dev IdP")
	}
	bin := testutil.Gatehouse(t)
	up := startUpstream(t)
	sw := startSwitchingUpstream(t)

	addr := testutil.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	authURL := "http://authenticate.localhost:" + port
	idpAddr := testutil.FreeAddr(t)
	idpURL := "http://" + idpAddr
	health := testutil.FreeAddr(t)
	idp := testutil.StartProcess(t, "dev-idp", bin, []string{"dev-idp", "--address", idpAddr, "--issuer", idpURL,
		"--client-id", "gatehouse", "--client-secret", "idp-secret", "--redirect-uri", authURL + "/oauth2/callback"})
	config := configtest.New().
		Set("services", "all").
		Set("address", addr).
		Set("grpc_address", testutil.FreeAddr(t)).
		Set("health_check_addr", health).
		Set("authenticate_service_url", authURL).
		IdP(idpURL, "idp-secret").
		Set("jwt_claims_headers", "{X-Role: role, X-Groups: groups, X-Email: email}").
		Route(`
			from: http://app.localhost
			to: ` + up.srv.URL + `
			pass_identity_headers: true
			set_request_headers: {X-Tenant: acme}
			allow_any_authenticated_user: true`).
		Route(`
			from: http://ws.localhost
			to: ` + up.srv.URL + `
			allow_websockets: true
			allow_any_authenticated_user: true`).
		Route(`
			from: http://sw.localhost
			to: ` + sw.URL + `
			allow_websockets: true
			allow_any_authenticated_user: true`).
		Route(`
			from: http://spdy.localhost
			to: ` + sw.URL + `
			allow_spdy: true
			allow_any_authenticated_user: true`).
		Write(t)
	testutil.WaitHTTP(t, idpURL+"/.well-known/openid-configuration", 20*time.Second, idp)
	gh := testutil.StartProcess(t, "gatehouse", bin, []string{"--config", config})
	testutil.WaitHTTP(t, "http://"+health+"/readyz", 30*time.Second, gh)

	e := &proxyEnv{proxyPort: port}
	e.t = t
	c := e.client()
	// Bob is in dev and has no role claim.
	resp := testutil.DevIDPSignIn(t, c, e.url("app.localhost", "/"), "bob@example.com", "Bob", "dev")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in ended at %s %d\n%s", resp.Request.URL, resp.StatusCode, body)
	}
	handle := sessionCookie(t, c, e.url("app.localhost", "/"))
	app := func(t *testing.T, path string, h http.Header) http.Header {
		t.Helper()
		return echo(t, c, e.url("app.localhost", path), h).Header
	}
	// only checks that every spelling of name carries exactly want (none: absent).
	only := func(t *testing.T, got http.Header, name string, want ...string) {
		t.Helper()
		for k, vs := range got {
			if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), name) && (k != name || strings.Join(vs, "|") != strings.Join(want, "|")) {
				t.Errorf("upstream got %s: %q, want only gatehouse's %s: %q", k, vs, name, want)
			}
		}
		if len(want) > 0 && len(got[name]) == 0 {
			t.Errorf("upstream lacks %s (want %q)", name, want)
		}
	}

	t.Run("ForgedHeadersStripped", func(t *testing.T) {
		got := app(t, "/forged", http.Header{
			"X-Role":                   {"admin"},
			"X_role":                   {"admin"},
			"X-Groups":                 {"admins"},
			"X_groups":                 {"admins"},
			"X-Email":                  {"ceo@example.com"},
			"X-Tenant":                 {"evil", "evil2"},
			"X_tenant":                 {"evil"},
			"X-Pomerium-Claim-Email":   {"ceo@example.com"},
			"X-Pomerium-Claim-Role":    {"admin"},
			"X-Pomerium-Jwt-Assertion": {"forged.jwt.value"},
			"X_forwarded_for":          {"6.6.6.6"},
			"X-App":                    {"kept"},
		})
		only(t, got, "X-Forwarded-For", "127.0.0.1")
		only(t, got, "X-Role")
		only(t, got, "X-Groups", "dev")
		only(t, got, "X-Email", "bob@example.com")
		only(t, got, "X-Tenant", "acme")
		only(t, got, "X-Pomerium-Claim-Email")
		only(t, got, "X-Pomerium-Claim-Role")
		if v := got.Values("X-Pomerium-Jwt-Assertion"); len(v) != 1 || v[0] == "forged.jwt.value" || strings.Count(v[0], ".") != 2 {
			t.Errorf("X-Pomerium-Jwt-Assertion = %q", v)
		}
		if got.Get("X-App") != "kept" {
			t.Errorf("the application's own header was dropped: %v", got)
		}
	})

	t.Run("ConnectionCannotDropIdentityHeaders", func(t *testing.T) {
		got := app(t, "/connection", http.Header{
			"Connection": {"X-Pomerium-Jwt-Assertion, X-Email", "x-groups, X-Tenant, X-Request-Id"},
		})
		if v := got.Get("X-Pomerium-Jwt-Assertion"); strings.Count(v, ".") != 2 {
			t.Errorf("X-Pomerium-Jwt-Assertion = %q", v)
		}
		only(t, got, "X-Email", "bob@example.com")
		only(t, got, "X-Groups", "dev")
		only(t, got, "X-Tenant", "acme")
		if !validID.MatchString(got.Get("X-Request-Id")) {
			t.Errorf("X-Request-Id = %q", got.Get("X-Request-Id"))
		}
	})

	t.Run("SessionCredentialsStripped", func(t *testing.T) {
		api := &http.Client{Transport: &http.Transport{DialContext: loopbackDial}, Timeout: 10 * time.Second}
		// (Messages name the form, never the handle.)
		for _, tc := range []struct{ form, header, value string }{
			{"Bearer Pomerium-", "Authorization", "Bearer Pomerium-" + handle},
			{"bearer pomerium-", "Authorization", "bearer pomerium-" + handle},
			{"Pomerium", "Authorization", "Pomerium " + handle},
			{"X-Pomerium-Authorization", "X-Pomerium-Authorization", handle},
			{"cookie", "Cookie", "theme=dark; _pomerium=" + handle},
		} {
			h := http.Header{tc.header: {tc.value}, "Accept": {"application/json"}}
			got := echo(t, api, e.url("app.localhost", "/api?pomerium_jwt="+url.QueryEscape(handle)+"&q=1"), h)
			if got.Header.Get("X-Email") != "bob@example.com" {
				t.Errorf("%s: not signed in: upstream X-Email %q", tc.form, got.Header.Get("X-Email"))
			}
			if got.RawQuery != "q=1" {
				t.Errorf("%s: the upstream's query kept pomerium_jwt (%d bytes, want q=1)", tc.form, len(got.RawQuery))
			}
			for k, vs := range got.Header {
				if strings.Contains(strings.Join(vs, " "), handle) {
					t.Errorf("%s: the session handle reached the upstream in %s", tc.form, k)
				}
			}
		}
		// An Authorization for the application itself passes.
		got := app(t, "/app-token", http.Header{"Authorization": {"Bearer app-token"}})
		if got.Get("Authorization") != "Bearer app-token" {
			t.Errorf("the application's Authorization was dropped: %q", got.Get("Authorization"))
		}
	})

	t.Run("Upgrades", func(t *testing.T) {
		cookies := map[string]string{}
		for _, host := range []string{"sw.localhost", "spdy.localhost"} {
			// Single sign-on: the route host gets its own cookie.
			resp, body := do(t, c, http.MethodGet, e.url(host, "/"), http.Header{"Accept": {"text/html"}})
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "plain") {
				t.Fatalf("%s: %d %s", host, resp.StatusCode, body)
			}
			cookies[host] = sessionCookie(t, c, e.url(host, "/"))
		}
		upgrade := func(p string) []string { return []string{"Connection", "Upgrade", "Upgrade", p} }
		for _, tc := range []struct {
			host   string
			hdr    []string
			status int
			body   string
		}{
			{"sw.localhost", upgrade("websocket"), 101, "tunnel: ping"},
			{"sw.localhost", upgrade("h2c"), 200, "plain upgrade="},
			{"sw.localhost", []string{"Connection", "Upgrade, HTTP2-Settings", "Upgrade", "h2c", "HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"}, 200, "plain upgrade="},
			{"sw.localhost", upgrade("foo"), 403, ""},
			{"sw.localhost", upgrade("spdy/3.1"), 403, ""},
			{"spdy.localhost", upgrade("spdy/3.1"), 101, "tunnel: ping"},
			{"spdy.localhost", upgrade("websocket"), 403, ""},
			{"spdy.localhost", upgrade("h2c"), 200, "plain upgrade="},
		} {
			status, body := rawUpgrade(t, addr, tc.host+":"+port, cookies[tc.host], tc.hdr...)
			if status != tc.status || !strings.HasPrefix(body, tc.body) {
				t.Errorf("%s %v: %d %q, want %d %q", tc.host, tc.hdr, status, body, tc.status, tc.body)
			}
		}
	})

	t.Run("WebSocketStillWorks", func(t *testing.T) {
		echo(t, c, e.url("ws.localhost", "/"), nil) // single sign-on on the ws host
		cookie := sessionCookie(t, c, e.url("ws.localhost", "/"))
		cfg, err := websocket.NewConfig("ws://ws.localhost:"+port+"/ws", "http://ws.localhost:"+port)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Header = http.Header{"Cookie": {"_pomerium=" + cookie}}
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		ws, err := websocket.NewClient(cfg, conn)
		if err != nil {
			conn.Close()
			t.Fatalf("websocket handshake: %v", err)
		}
		defer ws.Close()
		if err := websocket.Message.Send(ws, "hello"); err != nil {
			t.Fatal(err)
		}
		var back string
		if err := websocket.Message.Receive(ws, &back); err != nil || back != "hello" {
			t.Fatalf("echo %q %v", back, err)
		}
	})
}
