package authenticate

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/cryptutil"
	"github.com/gatehouse/gatehouse/pkg/devidp"
	"github.com/gatehouse/gatehouse/pkg/handoff"
	"github.com/gatehouse/gatehouse/pkg/sessionhandle"
)

func TestSignInFlow(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client()
	ret := e.appOrigin + "/dashboard?x=1"
	back := e.signIn(c, ret, "alice@example.com", "Alice", "admins,dev")

	if back.Host != "app.localhost:18080" || back.Path != handoff.CallbackPath {
		t.Fatalf("callback went to %s, want the route host's %s", back, handoff.CallbackPath)
	}
	cb := e.openCallback(back)
	handle, redirect := cb.Handle, cb.RedirectURI
	if redirect.String() != ret {
		t.Errorf("redirect = %s, want %s", redirect, ret)
	}
	// The proxy's binding to the browser comes back unchanged.
	if cb.Binding != e.binding.Param() {
		t.Errorf("callback binding %q, want the sign-in URL's %q", cb.Binding, e.binding.Param())
	}
	h, err := sessionhandle.Decode(e.cfg.HandleKey, handle, time.Now())
	if err != nil {
		t.Fatalf("decode handle: %v", err)
	}
	sub := devidp.Subject("alice@example.com")
	if h.UserID != sub {
		t.Errorf("handle sub = %q, want %q", h.UserID, sub)
	}
	if h.DatabrokerServerVersion == 0 || h.DatabrokerRecordVersion == 0 {
		t.Errorf("handle lacks databroker versions: %+v", h)
	}
	sess := e.session(h.ID)
	if sess == nil {
		t.Fatal("no session record")
	}
	if sess.UserId != sub || sess.OauthToken.GetRefreshToken() == "" || sess.IdToken.GetRaw() == "" {
		t.Errorf("session record incomplete: user %q, refresh token %t, id token %t", sess.UserId, sess.OauthToken.GetRefreshToken() != "", sess.IdToken.GetRaw() != "")
	}
	if d := time.Until(sess.ExpiresAt.AsTime()); d < 13*time.Hour || d > 14*time.Hour+time.Minute {
		t.Errorf("session expires in %s, want cookie_expire (14h)", d)
	}
	if g := listStrings(sess.Claims["groups"]); !slices.Equal(g, []string{"admins", "dev"}) {
		t.Errorf("session groups = %v", g)
	}
	u := e.user(sub)
	if u.Email != "alice@example.com" || u.Name != "Alice" || !slices.Equal(listStrings(u.Claims["groups"]), []string{"admins", "dev"}) {
		t.Errorf("user record = %v", u)
	}

	// The authenticate host has its own cookie: /.pomerium/ shows the user.
	resp, body := get(t, c, e.authURL.String()+"/.pomerium/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "alice@example.com") || !strings.Contains(body, "admins, dev") {
		t.Fatalf("user page: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, c, e.authURL.String()+"/.pomerium/", "Accept", "application/json")
	var info userInfo
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &info) != nil || info.Email != "alice@example.com" || info.SessionID != h.ID {
		t.Fatalf("user JSON: %d %s", resp.StatusCode, body)
	}

	// A second sign-in from the same browser reuses the session without
	// the IdP.
	resp, body = get(t, c, e.signInURL(e.appOrigin+"/other", false))
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("second sign-in: %d %s", resp.StatusCode, body)
	}
	again := e.openCallback(location(t, resp))
	if again.Binding != e.binding.Param() {
		t.Errorf("single sign-on callback binding %q, want %q", again.Binding, e.binding.Param())
	}
	h2, _ := sessionhandle.Decode(e.cfg.HandleKey, again.Handle, time.Now())
	if h2.ID != h.ID {
		t.Errorf("second sign-in made session %s, want the existing %s", h2.ID, h.ID)
	}
	if n := len(e.sessions()); n != 1 {
		t.Errorf("%d sessions, want 1", n)
	}
}

func TestProgrammaticSignIn(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client()
	ret := "http://localhost:8123/cb"
	id, _ := e.toIdP(c, e.signInURL(ret, true))
	cb := e.loginAt(c, id, "bob@example.com", "Bob", "")
	resp, body := get(t, c, cb.String())
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("callback: %d %s", resp.StatusCode, body)
	}
	back := location(t, resp)
	if back.Host != "localhost:8123" || back.Path != "/cb" {
		t.Fatalf("programmatic login went to %s", back)
	}
	h, err := sessionhandle.Decode(e.cfg.HandleKey, back.Query().Get(handoff.QueryJWT), time.Now())
	if err != nil {
		t.Fatalf("pomerium_jwt: %v", err)
	}
	if e.session(h.ID) == nil {
		t.Fatal("no session for the programmatic login")
	}
	// The handle works as a bearer token on the authenticate host.
	resp, body = get(t, e.client(), e.authURL.String()+"/.pomerium/user", "Authorization", "Pomerium "+back.Query().Get(handoff.QueryJWT))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "bob@example.com") {
		t.Fatalf("/.pomerium/user with the handle: %d %s", resp.StatusCode, body)
	}
	// Schemes compare without case, as authorize and the proxy read them
	// (sessionhandle.FromAuthorization).
	resp, body = get(t, e.client(), e.authURL.String()+"/.pomerium/user", "Authorization", "bearer pomerium-"+back.Query().Get(handoff.QueryJWT))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "bob@example.com") {
		t.Fatalf("/.pomerium/user with a lower-case bearer handle: %d %s", resp.StatusCode, body)
	}
	// A foreign host is no more allowed for programmatic logins.
	resp, _ = get(t, c, e.signInURL("http://evil.example.com/cb", true))
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("programmatic login to a foreign host: status %d, want 400", resp.StatusCode)
	}
}

// TestSignInErrors checks that every bad input gets its own clear 4xx and
// that none creates a session.
func TestSignInErrors(t *testing.T) {
	e := newEnv(t, envOptions{})
	cbURL := e.authURL.String() + "/oauth2/callback"
	expiredSignIn := handoff.SignInURL(e.authURL, e.appOrigin+"/", false, e.cfg.URLKey, time.Now().Add(-time.Hour)).String()

	// A real callback URL (code and state) from a sign-in that is left
	// unfinished, and the browser that started it.
	fresh := func() (*http.Client, *url.URL) {
		c := e.client()
		id, _ := e.toIdP(c, e.signInURL(e.appOrigin+"/", false))
		return c, e.loginAt(c, id, "mallory@example.com", "Mallory", "")
	}

	tests := []struct {
		name   string
		do     func(t *testing.T) (*http.Response, string)
		status int
		code   string
	}{
		{"expired signed URL", func(t *testing.T) (*http.Response, string) {
			return get(t, e.client(), expiredSignIn)
		}, 400, "signed_url_expired"},
		{"unsigned sign-in", func(t *testing.T) (*http.Response, string) {
			return get(t, e.client(), e.authURL.String()+"/.pomerium/sign_in?pomerium_redirect_uri="+url.QueryEscape(e.appOrigin+"/"))
		}, 400, "signed_url_invalid"},
		{"modified signed URL", func(t *testing.T) (*http.Response, string) {
			u := e.signInURL(e.appOrigin+"/", false) + "&extra=1"
			return get(t, e.client(), u)
		}, 400, "signed_url_invalid"},
		{"foreign return URL", func(t *testing.T) (*http.Response, string) {
			return get(t, e.client(), e.signInURL("https://evil.example.com/", false))
		}, 400, "redirect_not_allowed"},
		{"return URL on a look-alike host", func(t *testing.T) (*http.Response, string) {
			return get(t, e.client(), e.signInURL("http://app.localhost.evil.com:18080/", false))
		}, 400, "redirect_not_allowed"},
		{"javascript return URL", func(t *testing.T) (*http.Response, string) {
			return get(t, e.client(), e.signInURL("javascript:alert(1)", false))
		}, 400, "redirect_not_allowed"},
		{"IdP error", func(t *testing.T) (*http.Response, string) {
			return get(t, e.client(), cbURL+"?error=access_denied&error_description=user+cancelled&state=x")
		}, 403, "idp_access_denied"},
		{"IdP other error", func(t *testing.T) (*http.Response, string) {
			return get(t, e.client(), cbURL+"?error=invalid_scope&state=x")
		}, 400, "idp_error"},
		{"missing state", func(t *testing.T) (*http.Response, string) {
			return get(t, e.client(), cbURL+"?code=abc")
		}, 400, "state_invalid"},
		{"tampered state", func(t *testing.T) (*http.Response, string) {
			c, cb := fresh()
			q := cb.Query()
			s := []byte(q.Get("state"))
			s[len(s)/2] ^= 1
			if s[len(s)/2] == '-' || s[len(s)/2] == '_' {
				s[len(s)/2] = 'A'
			}
			q.Set("state", string(s))
			cb.RawQuery = q.Encode()
			return get(t, c, cb.String())
		}, 400, "state_invalid"},
		{"state sealed with another key", func(t *testing.T) (*http.Response, string) {
			c, cb := fresh()
			other, _ := cryptutil.NewCipher(make([]byte, 32))
			q := cb.Query()
			q.Set("state", sealState(other, newAuthState(e.appOrigin+"/", false, time.Now())))
			cb.RawQuery = q.Encode()
			return get(t, c, cb.String())
		}, 400, "state_invalid"},
		{"expired state", func(t *testing.T) (*http.Response, string) {
			c, cb := fresh()
			cipher, _ := cryptutil.NewCipher(e.cfg.CookieSealKey)
			old := newAuthState(e.appOrigin+"/", false, time.Now().Add(-MaxStateAge-time.Minute))
			q := cb.Query()
			q.Set("state", sealState(cipher, old))
			cb.RawQuery = q.Encode()
			return get(t, c, cb.String())
		}, 400, "state_expired"},
		{"wrong CSRF cookie", func(t *testing.T) (*http.Response, string) {
			c, cb := fresh()
			c.Jar.SetCookies(e.authURL, []*http.Cookie{{Name: CSRFCookieName, Value: "not-the-token", Path: "/"}})
			return get(t, c, cb.String())
		}, 400, "csrf_mismatch"},
		{"no CSRF cookie (another browser)", func(t *testing.T) (*http.Response, string) {
			_, cb := fresh()
			return get(t, e.client(), cb.String())
		}, 400, "csrf_mismatch"},
		{"replayed state", func(t *testing.T) (*http.Response, string) {
			c, cb := fresh()
			// Keep the CSRF cookie for the replay: the first use clears it.
			csrf := c.Jar.Cookies(e.authURL)
			q := cb.Query()
			q.Set("code", "bogus") // the first use fails at the exchange, leaving no session
			cb.RawQuery = q.Encode()
			if resp, body := get(t, c, cb.String()); resp.StatusCode != 400 || !strings.Contains(body, "code_exchange_failed") {
				t.Fatalf("first use: %d %s", resp.StatusCode, body)
			}
			c.Jar.SetCookies(e.authURL, csrf)
			return get(t, c, cb.String())
		}, 400, "state_replayed"},
		{"missing code", func(t *testing.T) (*http.Response, string) {
			c, cb := fresh()
			q := cb.Query()
			q.Del("code")
			cb.RawQuery = q.Encode()
			return get(t, c, cb.String())
		}, 400, "missing_code"},
		{"answer from another IdP (RFC 9207 iss)", func(t *testing.T) (*http.Response, string) {
			c, cb := fresh()
			q := cb.Query()
			q.Set("iss", "https://evil-idp.example.com")
			cb.RawQuery = q.Encode()
			return get(t, c, cb.String())
		}, 400, "issuer_mismatch"},
		{"sign-out by HEAD is only a confirmation", func(t *testing.T) (*http.Response, string) {
			req, _ := http.NewRequest(http.MethodHead, handoff.SignOutURL(e.authURL, "", "", e.cfg.URLKey, nil, time.Now()).String(), nil)
			resp, _ := do(t, e.client(), req)
			return resp, "method_not_allowed" // HEAD has no body to name a code
		}, 200, "method_not_allowed"},
		{"callback by PUT", func(t *testing.T) (*http.Response, string) {
			req, _ := http.NewRequest(http.MethodPut, cbURL, nil)
			return do(t, e.client(), req)
		}, 405, "method_not_allowed"},
		{"unknown path", func(t *testing.T) (*http.Response, string) {
			return get(t, e.client(), e.authURL.String()+"/nope")
		}, 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.sessions())
			resp, body := tt.do(t)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d; body: %s", resp.StatusCode, tt.status, body)
			}
			if !strings.Contains(body, tt.code) {
				t.Errorf("page does not name the error %q: %s", tt.code, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q, want an HTML page", ct)
			}
			if after := len(e.sessions()); after != before {
				t.Errorf("sessions went from %d to %d", before, after)
			}
		})
	}

	// API clients get JSON.
	resp, body := get(t, e.client(), expiredSignIn, "Accept", "application/json")
	var j map[string]any
	if resp.StatusCode != 400 || json.Unmarshal([]byte(body), &j) != nil || j["error"] != "signed_url_expired" {
		t.Errorf("JSON error: %d %s", resp.StatusCode, body)
	}
}

func TestSignInWhileIdPDown(t *testing.T) {
	e := newEnv(t, envOptions{idpDown: true})
	if err := e.svc.Ready(); err != nil {
		t.Fatalf("Ready with the IdP down: %v (readiness must not wait for the IdP)", err)
	}
	resp, body := get(t, e.client(), e.signInURL(e.appOrigin+"/", false))
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "idp_unavailable") {
		t.Fatalf("sign-in with the IdP down: %d %s", resp.StatusCode, body)
	}
	if n := len(e.sessions()); n != 0 {
		t.Fatalf("%d sessions after a failed sign-in", n)
	}
	// Once the IdP is up, the next sign-in discovers it and succeeds.
	e.startIdP()
	back := e.signIn(e.client(), e.appOrigin+"/", "alice@example.com", "Alice", "")
	if back.Path != handoff.CallbackPath {
		t.Fatalf("sign-in after the IdP came up went to %s", back)
	}
}

func TestSignOut(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client()
	back := e.signIn(c, e.appOrigin+"/", "alice@example.com", "Alice", "admins")
	handle := e.openCallback(back).Handle
	cipher, _ := cryptutil.NewCipher(e.cfg.CookieSealKey)
	h, _ := sessionhandle.Decode(e.cfg.HandleKey, handle, time.Now())
	signOut := e.authURL.String() + handoff.SignOutPath
	refreshToken := e.session(h.ID).OauthToken.GetRefreshToken()
	// The refresh token works before the sign-out.
	if resp, body := postForm(t, c, e.idpURL+"/oauth/token", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {refreshToken},
		"client_id": {testClientID}, "client_secret": {testClientSecret},
	}); resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh before sign-out: %d %s", resp.StatusCode, body)
	}

	// An unsigned GET only asks for confirmation.
	resp, body := get(t, c, signOut)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="csrf_token"`) {
		t.Fatalf("confirmation page: %d %s", resp.StatusCode, body)
	}
	if e.session(h.ID) == nil {
		t.Fatal("an unsigned GET signed out")
	}
	// A POST without the right token is refused.
	resp, body = postForm(t, c, signOut, url.Values{"csrf_token": {"forged"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "csrf_invalid") {
		t.Fatalf("forged sign-out: %d %s", resp.StatusCode, body)
	}
	if e.session(h.ID) == nil {
		t.Fatal("a forged POST signed out")
	}
	// A signed sign-out URL with a foreign return URL is refused.
	resp, _ = get(t, c, handoff.SignOutURL(e.authURL, "https://evil.example.com/", handle, e.cfg.URLKey, cipher, time.Now()).String())
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("sign-out to a foreign URL: %d", resp.StatusCode)
	}
	// The signed URL signs out and goes to the IdP's end_session endpoint.
	// A signed URL that names no session only asks for confirmation.
	resp, body = get(t, c, handoff.SignOutURL(e.authURL, e.appOrigin+"/", "", e.cfg.URLKey, nil, time.Now()).String())
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="csrf_token"`) || e.session(h.ID) == nil {
		t.Fatalf("signed sign-out URL without a session: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, c, handoff.SignOutURL(e.authURL, e.appOrigin+"/", handle, e.cfg.URLKey, cipher, time.Now()).String())
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("sign-out: %d %s", resp.StatusCode, body)
	}
	end := location(t, resp)
	signedOut := e.authURL.String() + SignedOutPath
	if !strings.HasPrefix(end.String(), e.idpURL+"/end_session") || end.Query().Get("post_logout_redirect_uri") != signedOut || end.Query().Get("id_token_hint") == "" || end.Query().Get("state") == "" {
		t.Errorf("sign-out went to %s, want the IdP's end_session with id_token_hint, the signed-out page and the sealed return URL", end)
	}
	if e.session(h.ID) != nil {
		t.Fatal("session record still there after sign-out")
	}
	// The old handle is refused now.
	resp, _ = get(t, e.client(), e.authURL.String()+"/.pomerium/user", "Authorization", "Pomerium "+handle)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("old handle after sign-out: %d, want 401", resp.StatusCode)
	}
	// The refresh token was revoked at the IdP.
	resp, _ = postForm(t, c, e.idpURL+"/oauth/token", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {refreshToken},
		"client_id": {testClientID}, "client_secret": {testClientSecret},
	})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("refresh with the signed-out session's token: %d, want 400 (revoked)", resp.StatusCode)
	}
	// The IdP's end_session takes the browser back to the signed-out page,
	// which goes on to the return URL.
	resp, _ = get(t, c, end.String())
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(location(t, resp).String(), signedOut+"?state=") {
		t.Fatalf("IdP end_session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = get(t, c, location(t, resp).String())
	if resp.StatusCode != http.StatusFound || location(t, resp).String() != e.appOrigin+"/" {
		t.Errorf("signed-out page: %d %s, want a redirect to %s/", resp.StatusCode, resp.Header.Get("Location"), e.appOrigin)
	}
	// A state that does not open is just the signed-out page.
	resp, _ = get(t, c, signedOut+"?state=forged")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("signed-out page with a forged state: %d, want 200", resp.StatusCode)
	}
}

func TestSignOutByForm(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client()
	e.signIn(c, e.appOrigin+"/", "carol@example.com", "Carol", "")
	if n := len(e.sessions()); n != 1 {
		t.Fatalf("%d sessions", n)
	}
	// The user page carries the sign-out form with its token.
	_, body := get(t, c, e.authURL.String()+"/.pomerium/")
	i := strings.Index(body, `name="csrf_token" value="`)
	if i < 0 {
		t.Fatalf("no sign-out form on the user page: %s", body)
	}
	tok := body[i+len(`name="csrf_token" value="`):]
	tok = tok[:strings.IndexByte(tok, '"')]
	resp, body := postForm(t, c, e.authURL.String()+handoff.SignOutPath, url.Values{"csrf_token": {tok}})
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("sign-out POST: %d %s", resp.StatusCode, body)
	}
	if n := len(e.sessions()); n != 0 {
		t.Fatalf("%d sessions after sign-out", n)
	}
	end := location(t, resp)
	if got := end.Query().Get("post_logout_redirect_uri"); got != e.authURL.String()+SignedOutPath {
		t.Errorf("post_logout_redirect_uri = %q, want the signed-out page", got)
	}
	resp, _ = get(t, c, e.authURL.String()+SignedOutPath+"?state="+url.QueryEscape(end.Query().Get("state")))
	if resp.StatusCode != http.StatusFound || location(t, resp).String() != "http://app.localhost:18080/bye" {
		t.Errorf("signed-out page: %d %s, want signout_redirect_url", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The cookie is gone: the user page sends the browser to sign in.
	resp, _ = get(t, c, e.authURL.String()+"/.pomerium/")
	if resp.StatusCode != http.StatusFound || !strings.Contains(location(t, resp).Path, handoff.SignInPath) {
		t.Errorf("user page after sign-out: %d", resp.StatusCode)
	}
}

func TestWellKnown(t *testing.T) {
	e := newEnv(t, envOptions{})
	ks, err := e.cfg.KeySet()
	if err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, e.client(), e.authURL.String()+"/.well-known/pomerium/jwks.json")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(body, ks.KeyID()) {
		t.Fatalf("jwks: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, e.client(), e.authURL.String()+"/.well-known/pomerium")
	if resp.StatusCode != 200 || !strings.Contains(body, "jwks.json") {
		t.Fatalf("well-known: %d %s", resp.StatusCode, body)
	}
}
