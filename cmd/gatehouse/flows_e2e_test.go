package main

import (
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/config/configtest"
	"github.com/gatehouse/gatehouse/pkg/testutil"
)

// The sign-in and sign-out flows as an attacker meets them (issue 11 items
// 2, 9, 10 and 11), against the real binary: the proxy deployment of
// proxy_e2e_test.go (authenticate, authorize and proxy as separate
// processes) for the flows, and an all-in-one process behind a simulated
// TLS load balancer for the cookies' Secure attribute.

// csrfField finds the CSRF token of a sign-out form.
var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// signOutByForm does what a person does on a route host: open the sign-out
// page, read its form, press Sign out. It returns the final response.
func signOutByForm(t *testing.T, c *http.Client, signOutURL string) *http.Response {
	t.Helper()
	resp := testutil.BrowserGet(t, c, signOutURL)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfField.FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("GET %s: %d, want the sign-out confirmation form\n%s", signOutURL, resp.StatusCode, body)
	}
	resp, err := c.PostForm(resp.Request.URL.String(), url.Values{"csrf_token": {html.UnescapeString(string(m[1]))}})
	if err != nil {
		t.Fatalf("POST %s: %v", signOutURL, err)
	}
	return resp
}

// setCookieRecorder is a RoundTripper that keeps every Set-Cookie header
// the client receives, with the URL it came from.
type setCookieRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen []string // "url: Set-Cookie value"
}

func (r *setCookieRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err == nil {
		r.mu.Lock()
		for _, v := range resp.Header.Values("Set-Cookie") {
			r.seen = append(r.seen, req.URL.Scheme+"://"+req.URL.Host+req.URL.Path+": "+v)
		}
		r.mu.Unlock()
	}
	return resp, err
}

func (r *setCookieRecorder) cookies() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

func hasAttr(setCookie, attr string) bool {
	for _, a := range strings.Split(setCookie, ";") {
		if strings.EqualFold(strings.TrimSpace(a), attr) {
			return true
		}
	}
	return false
}

func TestSignInFlowsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole deployment")
	}
	e := startProxyEnv(t)
	api := &http.Client{Transport: &http.Transport{DialContext: loopbackDial}, Timeout: 10 * time.Second}
	login := func(redirect string) (*http.Response, []byte) {
		return do(t, api, http.MethodGet, e.url("app.localhost", "/.pomerium/api/v1/login?pomerium_redirect_uri="+url.QueryEscape(redirect)), nil)
	}

	// Item 2: the handle of a programmatic login goes only to a host on
	// programmatic_redirect_domain_whitelist (default localhost), never to
	// a route, whose upstream would log it.
	t.Run("ProgrammaticLoginRefusesRouteURL", func(t *testing.T) {
		for _, target := range []string{
			e.url("app.localhost", "/steal"),
			e.url("noid.localhost", "/"),
			"http://authenticate.localhost:" + e.authnPort + "/",
		} {
			resp, body := login(target)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "programmatic_redirect_domain_whitelist") {
				t.Errorf("programmatic login to %s: %d, want 400 naming programmatic_redirect_domain_whitelist\n%s", target, resp.StatusCode, body)
			}
		}
	})

	t.Run("ProgrammaticLoginToLoopback", func(t *testing.T) {
		// localhost, and every loopback address with it (as in Pomerium):
		// the proxy hands out the sign-in URL and authenticate then
		// agrees, because both call the same check.
		for i, cb := range []string{"http://localhost:" + e.proxyPort + "/cb", "http://127.0.0.1:9/cb", "http://[::1]:9/cb"} {
			resp, body := login(cb)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("login API for %s: %d\n%s", cb, resp.StatusCode, body)
			}
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
			resp = testutil.DevIDPSignIn(t, browser, strings.TrimSpace(string(body)), fmt.Sprintf("cli%d@example.com", i), "CLI", "")
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want, _ := url.Parse(cb)
			if final == nil || final.Host != want.Host || final.Path != "/cb" {
				t.Fatalf("programmatic sign-in to %s ended at %s %d without pomerium_jwt there\n%s", cb, resp.Request.URL, resp.StatusCode, page)
			}
		}
	})

	// Alice, signed in by browser, for the tests below.
	alice := e.client()
	resp := e.signIn(alice, e.url("app.localhost", "/"), "alice@example.com", "Alice", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("alice's sign-in: %s %d", resp.Request.URL, resp.StatusCode)
	}

	t.Run("UpstreamNeverSeesHandoffParameters", func(t *testing.T) {
		q := "a=1&pomerium_jwt=stolen&b=2&pomerium_session_encrypted=x&POMERIUM_JWT=y&pomerium%5Fjwt=z&c=3;pomerium_jwt=w&pomerium-jwt=v&pomerium_signature=s"
		got := echo(t, alice, e.url("app.localhost", "/page?"+q), nil)
		if got.RawQuery != "a=1&b=2" {
			t.Errorf("upstream query %q, want %q (every pomerium_ parameter removed, the rest untouched)", got.RawQuery, "a=1&b=2")
		}
		got = echo(t, alice, e.url("app.localhost", "/page?x=%2F&y=a+b"), nil)
		if got.RawQuery != "x=%2F&y=a+b" {
			t.Errorf("upstream query %q, want it as sent", got.RawQuery)
		}
	})

	// Item 9: the callback URL works once, in the browser that started the
	// sign-in, and nowhere else.
	t.Run("CallbackIsSingleUseAndBoundToTheBrowser", func(t *testing.T) {
		rec := &setCookieRecorder{next: &http.Transport{DialContext: loopbackDial}}
		jar, _ := cookiejar.New(nil)
		bob := &http.Client{Jar: jar, Transport: rec, Timeout: 20 * time.Second}
		var callback string
		bob.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if req.URL.Path == "/.pomerium/callback/" {
				callback = req.URL.String()
			}
			if len(via) > 10 {
				return errors.New("too many redirects")
			}
			return nil
		}
		target := e.url("app.example.test", "/bob")
		resp := testutil.DevIDPSignIn(t, bob, target, "bob@example.com", "Bob", "")
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != target || callback == "" {
			t.Fatalf("bob's sign-in ended at %s %d (callback %q)", resp.Request.URL, resp.StatusCode, callback)
		}
		// http:// routes and authenticate: no cookie is Secure, so the
		// development set-up keeps working over plain HTTP.
		for _, c := range rec.cookies() {
			if hasAttr(c, "Secure") {
				t.Errorf("Secure cookie on a plain-HTTP deployment: %s", c)
			}
		}

		noFollow := func(c *http.Client) *http.Client {
			cc := *c
			cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			return &cc
		}
		fresh := noFollow(e.client())
		for name, c := range map[string]*http.Client{"another browser": fresh, "the same browser again": noFollow(bob)} {
			resp, body := do(t, c, http.MethodGet, callback, http.Header{"Accept": {"text/html"}})
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("callback replayed in %s: %d, want 400\n%s", name, resp.StatusCode, body)
			}
			for _, ck := range resp.Cookies() {
				if ck.Name == "_pomerium" && ck.Value != "" {
					t.Errorf("callback replayed in %s set the session cookie", name)
				}
			}
		}
		// Login CSRF: the attacker's own callback, opened in a victim's
		// browser, does not sign the victim in as the attacker.
		mallory := e.client()
		var malloryCallback string
		mallory.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if req.URL.Path == "/.pomerium/callback/" {
				malloryCallback = req.URL.String()
				return http.ErrUseLastResponse // she keeps it for her victim
			}
			return nil
		}
		resp = testutil.DevIDPSignIn(t, mallory, e.url("app.example.test", "/"), "mallory@example.com", "Mallory", "")
		resp.Body.Close()
		if malloryCallback == "" {
			t.Fatalf("mallory's sign-in ended at %s %d without a callback", resp.Request.URL, resp.StatusCode)
		}
		victim := noFollow(e.client())
		resp, body := do(t, victim, http.MethodGet, malloryCallback, http.Header{"Accept": {"text/html"}})
		if resp.StatusCode != http.StatusBadRequest || len(resp.Cookies()) > 0 && resp.Cookies()[0].Name == "_pomerium" && resp.Cookies()[0].Value != "" {
			t.Errorf("the attacker's callback in a victim's browser: %d %v, want 400 and no session\n%s", resp.StatusCode, resp.Cookies(), body)
		}
	})

	// Item 10: a cross-site GET of the sign-out URL signs no one out.
	t.Run("SignOutNeedsPOSTWithCSRFToken", func(t *testing.T) {
		dave := e.client()
		resp := testutil.DevIDPSignIn(t, dave, e.url("app.localhost", "/"), "dave@example.com", "Dave", "")
		resp.Body.Close()
		stillIn := func(when string) {
			t.Helper()
			got := echo(t, dave, e.url("app.localhost", "/check"), nil)
			if got.Header.Get("X-Pomerium-Claim-Email") != "dave@example.com" {
				t.Fatalf("%s: dave is no longer signed in", when)
			}
		}
		// An <img src> or link on another site: the browser follows
		// every redirect.
		resp = testutil.BrowserGet(t, dave, e.url("app.localhost", "/.pomerium/sign_out"))
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `method="post"`) {
			t.Errorf("GET sign_out: %s %d, want the confirmation form\n%s", resp.Request.URL, resp.StatusCode, body)
		}
		stillIn("after a GET of /.pomerium/sign_out")

		// A cross-site form POST carries no token.
		resp, err := dave.PostForm(e.url("app.localhost", "/.pomerium/sign_out"), url.Values{"pomerium_redirect_uri": {e.url("app.localhost", "/")}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST sign_out without a token: %d, want 403\n%s", resp.StatusCode, body)
		}
		stillIn("after a POST without a token")

		// The form's button signs out everywhere.
		resp = signOutByForm(t, dave, e.url("app.localhost", "/.pomerium/sign_out"))
		resp.Body.Close()
		noFollow := *dave
		noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, _ = do(t, &noFollow, http.MethodGet, e.url("app.localhost", "/check"), http.Header{"Accept": {"text/html"}})
		if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "/.pomerium/sign_in") {
			t.Errorf("after the sign-out form: %d %s, want a redirect to sign in", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}

// tlsTerminator is a RoundTripper in front of a plain-HTTP gatehouse
// (insecure_server), as a TLS-terminating load balancer is: the client
// speaks https to it, gatehouse gets http with X-Forwarded-Proto: https.
type tlsTerminator struct{ next http.RoundTripper }

func (l tlsTerminator) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		return l.next.RoundTrip(req)
	}
	out := req.Clone(req.Context())
	out.URL.Scheme = "http"
	out.Header.Set("X-Forwarded-Proto", "https")
	resp, err := l.next.RoundTrip(out)
	if err == nil {
		resp.Request = req
	}
	return resp, err
}

// Item 11: behind a TLS load balancer (insecure_server, https:// URLs),
// every cookie gatehouse sets is Secure.
func TestCookiesSecureBehindTLSLoadBalancer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts gatehouse and the dev IdP")
	}
	bin := testutil.Gatehouse(t)
	addr := testutil.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	authURL := "https://authenticate.localhost:" + port
	idpAddr := testutil.FreeAddr(t)
	idpURL := "http://" + idpAddr
	healthAddr := testutil.FreeAddr(t)
	up := startUpstream(t)
	idp := testutil.StartProcess(t, "dev-idp", bin, []string{"dev-idp", "--address", idpAddr, "--issuer", idpURL,
		"--client-id", "gatehouse", "--client-secret", "idp-secret", "--redirect-uri", authURL + "/oauth2/callback"})
	config := configtest.New().
		Set("services", "all").
		Set("address", addr).
		Set("grpc_address", testutil.FreeAddr(t)).
		Set("health_check_addr", healthAddr).
		Set("xff_num_trusted_hops", "1").
		Set("authenticate_service_url", authURL).
		IdP(idpURL, "idp-secret").
		Route(`
			from: https://tls.localhost
			to: ` + up.srv.URL + `
			pass_identity_headers: true
			allow_any_authenticated_user: true`).
		Write(t)
	testutil.WaitHTTP(t, idpURL+"/.well-known/openid-configuration", 20*time.Second, idp)
	gh := testutil.StartProcess(t, "gatehouse", bin, []string{"--config", config})
	testutil.WaitHTTP(t, "http://"+healthAddr+"/readyz", 30*time.Second, gh)

	rec := &setCookieRecorder{next: tlsTerminator{next: &http.Transport{DialContext: loopbackDial}}}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: rec, Timeout: 20 * time.Second}
	target := "https://tls.localhost:" + port + "/page"
	resp := testutil.DevIDPSignIn(t, c, target, "erin@example.com", "Erin", "")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != target {
		t.Fatalf("sign-in ended at %s %d\n%s", resp.Request.URL, resp.StatusCode, body)
	}
	checkSecure := func(when string, want ...string) {
		t.Helper()
		names := map[string]bool{}
		for _, sc := range rec.cookies() {
			_, v, _ := strings.Cut(sc, ": ")
			name, _, _ := strings.Cut(v, "=")
			names[name] = true
			if strings.HasPrefix(sc, "https://") && !hasAttr(v, "Secure") {
				t.Errorf("%s: cookie without Secure on an https URL behind the load balancer: %s", when, sc)
			}
		}
		for _, n := range want {
			if !names[n] {
				t.Errorf("%s: no %s cookie was set (cookies: %v)", when, n, rec.cookies())
			}
		}
	}
	checkSecure("sign-in", "_pomerium", "_pomerium_csrf")
	resp = signOutByForm(t, c, "https://tls.localhost:"+port+"/.pomerium/sign_out")
	resp.Body.Close()
	checkSecure("sign-out")
}
