package proxy

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse/gatehouse/pkg/cryptutil"
	"github.com/gatehouse/gatehouse/pkg/handoff"
)

// sessionSetCookie returns the session cookie a response sets, or nil.
func sessionSetCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == "_pomerium" {
			return c
		}
	}
	return nil
}

// bindingSetCookie returns the sign-in binding cookie a response sets (not
// one it clears), or nil.
func bindingSetCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if strings.HasPrefix(c.Name, handoff.BindingCookiePrefix) && c.MaxAge > 0 {
			return c
		}
	}
	return nil
}

// signInAuthz answers every Check with authorize's sign-in redirect to
// the request's URL.
func signInAuthz(t *testing.T, key []byte) *fakeAuthz {
	auth, _ := url.Parse(testAuthURL)
	return newFakeAuthz(func(req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		h := req.GetAttributes().GetRequest().GetHttp()
		u := handoff.SignInURL(auth, h.GetScheme()+"://"+h.GetHost()+h.GetPath(), false, key, time.Now())
		return deniedResponse(302, "", "location", u.String(), "cache-control", "no-store"), nil
	})
}

// TestSignInIsBoundToTheBrowser follows a sign-in from the proxy's
// redirect to its callback: the redirect sets a binding cookie whose hash
// travels in the signed sign-in URL, and the callback opens only with
// that cookie, once.
func TestSignInIsBoundToTheBrowser(t *testing.T) {
	up := newUpstream(t, "app")
	cfg := parseConfig(t, "", routeYAML("id: app", "from: http://app.test", "to: "+up.URL)+
		routeYAML("id: tls", "from: https://tls.test", "to: "+up.URL))
	h := newHarness(t, cfg, signInAuthz(t, cfg.URLKey))
	cipher, _ := cryptutil.NewCipher(cfg.CookieSealKey)

	resp, _ := h.get(t, "app.test", "/page?x=1", "Accept", "text/html")
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 302 || err != nil {
		t.Fatalf("sign-in redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if err := cryptutil.VerifySignedURL(cfg.URLKey, loc, time.Now()); err != nil {
		t.Fatalf("bound sign-in URL does not verify: %v", err)
	}
	c := bindingSetCookie(resp)
	if c == nil || c.Path != handoff.CallbackPath || !c.HttpOnly || c.Secure || c.Domain != "" || c.SameSite != http.SameSiteLaxMode {
		t.Fatalf("binding cookie %+v", c)
	}
	param := loc.Query().Get(handoff.QueryBinding)
	if id, err := handoff.ParseBinding(param); err != nil || c.Name != handoff.BindingCookiePrefix+id || strings.Contains(param, c.Value) {
		t.Fatalf("binding %q for cookie %s", param, c.Name)
	}
	if loc.Query().Get(handoff.QueryRedirectURI) != "http://app.test/page?x=1" {
		t.Errorf("sign-in URL lost its return URL: %s", loc)
	}

	// Authenticate carries the binding into the callback.
	ret, _ := url.Parse("http://app.test/page?x=1")
	cb := handoff.CallbackURL(ret, "the-handle", param, cfg.URLKey, cipher, time.Now()).RequestURI()
	// Other browsers: each try burns its callback, so each gets a fresh one.
	for name, cookie := range map[string]func(b handoff.Binding) string{
		"no binding cookie":           func(handoff.Binding) string { return "" },
		"another sign-in's cookie":    func(handoff.Binding) string { return c.Name + "=" + c.Value },
		"the right name, wrong value": func(b handoff.Binding) string { return b.Cookie(false).Name + "=" + c.Value },
		"the hash as the value":       func(b handoff.Binding) string { return b.Cookie(false).Name + "=" + b.Param()[len(b.ID)+1:] },
	} {
		b := handoff.NewBinding()
		var hdr []string
		if v := cookie(b); v != "" {
			hdr = []string{"Cookie", v}
		}
		cbx := handoff.CallbackURL(ret, "the-handle", b.Param(), cfg.URLKey, cipher, time.Now()).RequestURI()
		resp, body := h.get(t, "app.test", cbx, hdr...)
		if resp.StatusCode != 400 || sessionSetCookie(resp) != nil || !strings.Contains(body, "not started in this browser") {
			t.Errorf("%s: %d %v\n%s", name, resp.StatusCode, resp.Cookies(), body)
		}
		// Burnt: not even the right browser can use it now.
		resp, _ = h.get(t, "app.test", cbx, "Cookie", b.Cookie(false).Name+"="+b.Nonce)
		if resp.StatusCode != 400 || sessionSetCookie(resp) != nil {
			t.Errorf("%s, then the right browser: %d", name, resp.StatusCode)
		}
	}

	resp, _ = h.get(t, "app.test", cb, "Cookie", c.Name+"="+c.Value)
	if s := sessionSetCookie(resp); resp.StatusCode != 302 || s == nil || s.Value != "the-handle" {
		t.Fatalf("callback in the browser that started the sign-in: %d %v", resp.StatusCode, resp.Cookies())
	}
	cleared := false
	for _, ck := range resp.Cookies() {
		cleared = cleared || (ck.Name == c.Name && ck.MaxAge < 0 && ck.Path == handoff.CallbackPath)
	}
	if !cleared {
		t.Errorf("binding cookie not cleared: %v", resp.Cookies())
	}
	// Once only, even in the same browser with its cookie kept.
	resp, body := h.get(t, "app.test", cb, "Cookie", c.Name+"="+c.Value)
	if resp.StatusCode != 400 || sessionSetCookie(resp) != nil || !strings.Contains(body, "used already") {
		t.Errorf("replayed callback: %d %v", resp.StatusCode, resp.Cookies())
	}

	// The binding cookie of an https route is Secure, also with
	// insecure_server (a TLS load balancer in front).
	resp, _ = h.get(t, "tls.test", "/", "Accept", "text/html")
	if c := bindingSetCookie(resp); c == nil || !c.Secure {
		t.Errorf("binding cookie on an https route: %+v", c)
	}

	// A redirect that is not this deployment's signed sign-in URL is
	// passed on as it is, without a cookie.
	h.authz.set(func(*authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return deniedResponse(302, "", "location", testAuthURL+"/.pomerium/sign_in?pomerium_redirect_uri=x"), nil
	})
	resp, _ = h.get(t, "app.test", "/", "Accept", "text/html")
	if resp.Header.Get("Location") != testAuthURL+"/.pomerium/sign_in?pomerium_redirect_uri=x" || bindingSetCookie(resp) != nil {
		t.Errorf("unsigned redirect: %q %v", resp.Header.Get("Location"), resp.Cookies())
	}
}

// TestSessionCookieSecureFromRoute: the Secure attribute follows the
// route's from URL, not insecure_server (item 11).
func TestSessionCookieSecureFromRoute(t *testing.T) {
	up := newUpstream(t, "app")
	cfg := parseConfig(t, "cookie_same_site: none", routeYAML("id: tls", "from: https://tls.test", "to: "+up.URL)+
		routeYAML("id: dev", "from: http://dev.test", "to: "+up.URL))
	h := newHarness(t, cfg, newFakeAuthz(allowAll()))
	cipher, _ := cryptutil.NewCipher(cfg.CookieSealKey)
	for host, want := range map[string]bool{"tls.test": true, "dev.test": false} {
		scheme := map[bool]string{true: "https", false: "http"}[want]
		ret, _ := url.Parse(scheme + "://" + host + "/")
		b := handoff.NewBinding()
		cb := handoff.CallbackURL(ret, "the-handle", b.Param(), cfg.URLKey, cipher, time.Now()).RequestURI()
		resp, body := h.get(t, host, cb, "Cookie", b.Cookie(want).Name+"="+b.Nonce)
		c := sessionSetCookie(resp)
		if resp.StatusCode != 302 || c == nil {
			t.Fatalf("%s callback: %d %s", host, resp.StatusCode, body)
		}
		if c.Secure != want {
			t.Errorf("%s: session cookie Secure = %v, want %v", host, c.Secure, want)
		}
		wantSameSite := map[bool]http.SameSite{true: http.SameSiteNoneMode, false: http.SameSiteLaxMode}[want]
		if c.SameSite != wantSameSite {
			t.Errorf("%s: SameSite %v, want %v", host, c.SameSite, wantSameSite)
		}
	}
}

// TestUpstreamNeverSeesReservedQuery: no pomerium_ parameter (a handle,
// a sealed handle, a signature) reaches the upstream in the URL (item 2).
func TestUpstreamNeverSeesReservedQuery(t *testing.T) {
	up := newUpstream(t, "app")
	cfg := parseConfig(t, "", routeYAML("id: app", "from: http://app.test", "to: "+up.URL))
	h := newHarness(t, cfg, newFakeAuthz(allowAll()))
	resp, _ := h.get(t, "app.test", "/p?a=1&pomerium_jwt=h&pomerium_session_encrypted=s&Pomerium%5FJWT=x&b=%2F")
	if resp.StatusCode != 200 {
		t.Fatalf("%d", resp.StatusCode)
	}
	if got := up.last(t).Query; got != "a=1&b=%2F" {
		t.Errorf("upstream query %q", got)
	}
	if got := h.authz.last(t).GetAttributes().GetRequest().GetHttp().GetPath(); got != "/p?a=1&b=%2F" {
		t.Errorf("Check path %q", got)
	}
}

var csrfInput = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// TestSignOutNeedsConfirmedPOST: a GET of /.pomerium/sign_out shows a form
// and signs no one out; only the form's POST, with its token, does
// (item 10).
func TestSignOutNeedsConfirmedPOST(t *testing.T) {
	up := newUpstream(t, "app")
	cfg := parseConfig(t, "", routeYAML("id: app", "from: http://app.test", "to: "+up.URL))
	h := newHarness(t, cfg, newFakeAuthz(allowAll()))

	resp, body := h.get(t, "app.test", "/.pomerium/sign_out?pomerium_redirect_uri="+url.QueryEscape("http://app.test/bye"), "Cookie", "_pomerium=h")
	if resp.StatusCode != 200 || len(resp.Cookies()) != 0 || !strings.Contains(body, `<form method="post" action="/.pomerium/sign_out">`) ||
		!strings.Contains(body, `name="pomerium_redirect_uri" value="http://app.test/bye"`) {
		t.Fatalf("GET sign_out: %d %v\n%s", resp.StatusCode, resp.Cookies(), body)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("the confirmation page may be framed: %v", resp.Header)
	}
	m := csrfInput.FindStringSubmatch(body)
	if m == nil || m[1] != handoff.SignOutToken(cfg.CookieKey, "h") {
		t.Fatalf("form token %v", m)
	}
	resp, body = h.get(t, "app.test", "/.pomerium/sign_out", "Cookie", "_pomerium=h", "Accept", "application/json")
	if resp.StatusCode != 200 || !strings.Contains(body, `"csrf_token":"`+m[1]+`"`) || !strings.Contains(body, `"method":"POST"`) {
		t.Errorf("JSON sign-out form: %d %s", resp.StatusCode, body)
	}

	post := func(form url.Values, cookie string) *http.Response {
		hdr := []string{"Content-Type", "application/x-www-form-urlencoded"}
		if cookie != "" {
			hdr = append(hdr, "Cookie", cookie)
		}
		resp := h.do(t, http.MethodPost, "app.test", "/.pomerium/sign_out", strings.NewReader(form.Encode()), hdr...)
		resp.Body.Close()
		return resp
	}
	for name, form := range map[string]url.Values{
		"no token":             {},
		"forged token":         {"csrf_token": {"forged"}},
		"another session's":    {"csrf_token": {handoff.SignOutToken(cfg.CookieKey, "other")}},
		"the no-session token": {"csrf_token": {handoff.SignOutToken(cfg.CookieKey, "")}},
	} {
		resp := post(form, "_pomerium=h")
		if resp.StatusCode != 403 || len(resp.Cookies()) != 0 {
			t.Errorf("%s: %d %v", name, resp.StatusCode, resp.Cookies())
		}
	}
	// The token counts only in the POSTed form, not in the URL.
	resp = h.do(t, http.MethodPost, "app.test", "/.pomerium/sign_out?csrf_token="+url.QueryEscape(m[1]), nil, "Cookie", "_pomerium=h")
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("token in the query: %d", resp.StatusCode)
	}

	resp = post(url.Values{"csrf_token": {m[1]}, "pomerium_redirect_uri": {"http://app.test/bye"}}, "_pomerium=h")
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 302 || loc == nil || loc.Path != handoff.SignOutPath || loc.Query().Get(handoff.QueryRedirectURI) != "http://app.test/bye" {
		t.Fatalf("confirmed sign-out: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if err := cryptutil.VerifySignedURL(cfg.URLKey, loc, time.Now()); err != nil || loc.Query().Get(handoff.QuerySessionEncrypted) == "" {
		t.Errorf("sign-out URL: %v %s", err, loc)
	}
	if c := sessionSetCookie(resp); c == nil || c.MaxAge >= 0 {
		t.Errorf("session cookie not cleared: %v", resp.Cookies())
	}

	// Without a session on this host nothing vouches for the request:
	// authenticate's own confirmation page takes over.
	resp = post(url.Values{"csrf_token": {handoff.SignOutToken(cfg.CookieKey, "")}}, "")
	loc, _ = url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 302 || loc == nil || loc.Path != handoff.SignOutPath || loc.Query().Has(cryptutil.QuerySignature) {
		t.Errorf("sign-out without a session: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if up.count() != 0 {
		t.Error("a sign-out reached the upstream")
	}
}

// TestUserPageSignOutButtonPosts: the Sign out button of the route host's
// user page carries the token its POST needs.
func TestUserPageSignOutButtonPosts(t *testing.T) {
	up := newUpstream(t, "app")
	cfg := parseConfig(t, "", routeYAML("id: app", "from: http://app.test", "to: "+up.URL))
	jwt := testJWT(map[string]any{"email": "ada@example.com", "sub": "u1"})
	h := newHarness(t, cfg, newFakeAuthz(allowAll("x-pomerium-jwt-assertion", jwt)))
	resp, body := h.get(t, "app.test", "/.pomerium/", "Cookie", "_pomerium=h")
	m := csrfInput.FindStringSubmatch(body)
	if resp.StatusCode != 200 || m == nil || !strings.Contains(body, `<form method="post" action="/.pomerium/sign_out">`) {
		t.Fatalf("user page: %d\n%s", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("user page X-Frame-Options %q", resp.Header.Get("X-Frame-Options"))
	}
	resp = h.do(t, http.MethodPost, "app.test", "/.pomerium/sign_out", strings.NewReader("csrf_token="+url.QueryEscape(m[1])),
		"Cookie", "_pomerium=h", "Content-Type", "application/x-www-form-urlencoded")
	resp.Body.Close()
	if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != 302 || loc == nil || loc.Path != handoff.SignOutPath ||
		cryptutil.VerifySignedURL(cfg.URLKey, loc, time.Now()) != nil {
		t.Errorf("the button's POST: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}
