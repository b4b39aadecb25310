package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/config/configtest"
	"github.com/gatehouse/gatehouse/pkg/testutil"
)

// startAllInOne runs the dev IdP and one gatehouse process with every
// service, on loopback, with the routes and options b adds to; the
// authenticate host and the route hosts share its address.
func startAllInOne(t *testing.T, build func(b *configtest.Builder, up, port string)) *proxyEnv {
	t.Helper()
	e := &proxyEnv{procSet: newProcSet(t)}
	e.up = startUpstream(t)
	addr := testutil.FreeAddr(t)
	_, e.proxyPort, _ = net.SplitHostPort(addr)
	e.authnPort = e.proxyPort
	authURL := "http://authenticate.localhost:" + e.proxyPort
	idpAddr := testutil.FreeAddr(t)
	e.idpURL = "http://" + idpAddr
	idp := testutil.StartProcess(t, "dev-idp", e.bin, []string{"dev-idp", "--address", idpAddr, "--issuer", e.idpURL,
		"--client-id", "gatehouse", "--client-secret", "idp-secret", "--redirect-uri", authURL + "/oauth2/callback"})
	var key [32]byte
	_, _ = rand.Read(key[:])
	b := configtest.New().
		Set("authenticate_service_url", authURL).
		Set("cookie_secret", base64.StdEncoding.EncodeToString(key[:])).
		IdP(e.idpURL, "idp-secret")
	build(b, e.up.srv.URL, e.proxyPort)
	e.config = b.Write(t)
	e.add("all", "SERVICES=all", "ADDRESS="+addr, "GRPC_ADDRESS="+testutil.FreeAddr(t))
	e.start("all")
	testutil.WaitHTTP(t, e.idpURL+"/.well-known/openid-configuration", 20*time.Second, idp)
	e.waitReady("all")
	return e
}

// Pomerium's route options that answer, rewrite or route a request, on
// the real binary: each passes the route's policy first.
func TestRouteOptionsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a deployment")
	}
	tokenFile := filepath.Join(t.TempDir(), "sa-token")
	if err := os.WriteFile(tokenFile, []byte("service-account-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startAllInOne(t, func(b *configtest.Builder, up, port string) {
		b.Route(`
			from: http://redirect.localhost
			redirect: {host_redirect: "public.localhost:` + port + `", prefix_rewrite: /moved/, response_code: 307}
			allowed_domains: [example.com]`).
			Route(`
			from: http://teapot.localhost
			response: {status: 418, body: "short and stout"}
			allowed_domains: [example.com]`).
			Route(`
			from: http://public.localhost
			response: {status: 200, body: "public"}
			allow_public_unauthenticated_access: true`).
			Route(`
			from: http://k8s.localhost
			to: ` + up + `
			kubernetes_service_account_token_file: ` + tokenFile + `
			allowed_domains: [example.com]`).
			Route(`
			from: http://uri.localhost
			to: ` + up + `
			jwt_issuer_format: uri
			pass_identity_headers: true
			allowed_domains: [example.com]`)
	})
	noFollow := e.client()
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	t.Run("direct responses pass the policy first", func(t *testing.T) {
		resp, body := do(t, noFollow, http.MethodGet, e.url("public.localhost", "/"), nil)
		if resp.StatusCode != 200 || string(body) != "public" {
			t.Errorf("public response route: %d %q", resp.StatusCode, body)
		}
		// Signed out: sent to sign in, neither the body nor the redirect.
		for _, host := range []string{"teapot.localhost", "redirect.localhost"} {
			resp, body := do(t, noFollow, http.MethodGet, e.url(host, "/x"), http.Header{"Accept": {"text/html"}})
			if resp.StatusCode != http.StatusFound || !sameHost(resp.Header.Get("Location"), "authenticate.localhost") {
				t.Errorf("%s signed out: %d %q %s", host, resp.StatusCode, resp.Header.Get("Location"), body)
			}
		}
		// Signed in, outside the allowed domain: 403.
		mallory := e.client()
		resp = e.signIn(mallory, e.url("teapot.localhost", "/"), "mallory@evil.test", "Mallory", "")
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("mallory on the response route: %d", resp.StatusCode)
		}
		// Allowed: the fixed response and the redirect.
		alice := e.client()
		resp = e.signIn(alice, e.url("teapot.localhost", "/"), "alice@example.com", "Alice", "")
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 418 || string(b) != "short and stout" {
			t.Errorf("alice on the response route: %d %q", resp.StatusCode, b)
		}
		// Already signed in at authenticate: the route host's hand-off,
		// then the redirect, followed.
		resp, b = do(t, alice, http.MethodGet, e.url("redirect.localhost", "/a?b=c"), http.Header{"Accept": {"text/html"}})
		if resp.StatusCode != 200 || string(b) != "public" {
			t.Errorf("alice through the redirect: %d %q", resp.StatusCode, b)
		}
		alice.CheckRedirect = noFollow.CheckRedirect
		resp, _ = do(t, alice, http.MethodGet, e.url("redirect.localhost", "/a?b=c"), nil)
		if want := e.url("public.localhost", "/moved/a?b=c"); resp.StatusCode != 307 || resp.Header.Get("Location") != want {
			t.Errorf("alice on the redirect route: %d %q, want 307 %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
	})

	alice := e.client()
	resp := e.signIn(alice, e.url("k8s.localhost", "/api"), "alice@example.com", "Alice", "admins,staff")
	resp.Body.Close()

	t.Run("kubernetes_service_account_token_file", func(t *testing.T) {
		got := echo(t, alice, e.url("k8s.localhost", "/api/v1/pods"), http.Header{
			"Authorization": {"Bearer client-token"}, "Impersonate-Group": {"system:masters"},
			"Impersonate_Uid": {"0"}, "Impersonate-Extra-Scopes": {"all"}})
		want := map[string]string{"Authorization": "Bearer service-account-token",
			"Impersonate-User": "alice@example.com", "Impersonate-Group": "admins,staff"}
		for k, vs := range got.Header {
			if lk := strings.ToLower(strings.ReplaceAll(k, "_", "-")); lk == "authorization" || strings.HasPrefix(lk, "impersonate-") {
				if len(vs) != 1 || want[k] != vs[0] {
					t.Errorf("upstream got %s: %q", k, vs)
				}
				delete(want, k)
			}
		}
		if len(want) > 0 {
			t.Errorf("upstream lacks %v", want)
		}
	})

	t.Run("jwt_issuer_format uri", func(t *testing.T) {
		got := echo(t, alice, e.url("uri.localhost", "/"), nil)
		claims := jwtClaims(t, got.Header.Get("X-Pomerium-Jwt-Assertion"))
		if claims["iss"] != "https://uri.localhost/" || claims["aud"] != "uri.localhost" {
			t.Errorf("iss %v aud %v", claims["iss"], claims["aud"])
		}
	})
}

// jwtClaims returns the claims of a compact JWS, unverified.
func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// sameHost reports whether the URL u names host (any port).
func sameHost(u, host string) bool {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	return err == nil && req.URL.Hostname() == host
}
