package authenticate

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/cryptutil"
	"github.com/gatehouse/gatehouse/pkg/handoff"
	"github.com/gatehouse/gatehouse/pkg/sessionhandle"
)

// cookieNamed returns the cookie of that name a response sets, or nil.
func cookieNamed(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// TestCookiesSecureFromAuthenticateURL: with insecure_server behind a TLS
// load balancer (authenticate_service_url https://), every cookie of the
// authenticate host is Secure; with an http:// URL none is (item 11).
func TestCookiesSecureFromAuthenticateURL(t *testing.T) {
	for _, https := range []bool{true, false} {
		e := newEnv(t, envOptions{authHTTPS: https})
		c := e.client()
		// The load balancer speaks https to the browser, http to gatehouse.
		plain := func(u string) string {
			return strings.Replace(u, "https://authenticate.localhost", "http://authenticate.localhost", 1)
		}
		resp, body := get(t, c, plain(e.signInURL(e.appOrigin+"/", false)))
		csrf := cookieNamed(resp, CSRFCookieName)
		if resp.StatusCode != http.StatusFound || csrf == nil {
			t.Fatalf("https %v: sign_in: %d %v %s", https, resp.StatusCode, resp.Cookies(), body)
		}
		wantSameSite := http.SameSiteLaxMode
		if https {
			wantSameSite = http.SameSiteNoneMode // the IdP may come back with a cross-site POST
		}
		if csrf.Secure != https || csrf.SameSite != wantSameSite || !csrf.HttpOnly {
			t.Errorf("https %v: CSRF cookie Secure %v SameSite %v HttpOnly %v", https, csrf.Secure, csrf.SameSite, csrf.HttpOnly)
		}
		// Go's cookie jar keeps Secure cookies for https URLs only: hand
		// the CSRF cookie over as the browser would.
		authz := location(t, resp)
		resp, _ = get(t, c, authz.String())
		id := location(t, resp).Query().Get("authRequestID")
		cb := e.loginAt(c, id, "sec@example.com", "Sec", "")
		req, _ := http.NewRequest(http.MethodGet, plain(cb.String()), nil)
		req.AddCookie(&http.Cookie{Name: CSRFCookieName, Value: csrf.Value})
		resp, body = do(t, c, req)
		session := cookieNamed(resp, e.cfg.CookieName)
		if resp.StatusCode != http.StatusFound || session == nil {
			t.Fatalf("https %v: callback: %d %v %s", https, resp.StatusCode, resp.Cookies(), body)
		}
		for _, ck := range resp.Cookies() {
			if ck.Secure != https {
				t.Errorf("https %v: cookie %s Secure = %v", https, ck.Name, ck.Secure)
			}
		}
	}
}

// TestBrowserSignInNeedsBinding: a browser sign-in for a route host must
// carry the proxy's binding to the browser, and the callback URL carries it
// back; a programmatic one needs none (item 9).
func TestBrowserSignInNeedsBinding(t *testing.T) {
	e := newEnv(t, envOptions{})
	unbound := handoff.SignInURL(e.authURL, e.appOrigin+"/", false, e.cfg.URLKey, time.Now()).String()
	resp, body := get(t, e.client(), unbound)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "signin_unbound") {
		t.Errorf("unbound browser sign-in: %d %s", resp.StatusCode, body)
	}
	// Back to the authenticate host itself, no binding is needed.
	own := handoff.SignInURL(e.authURL, e.authURL.String()+"/.pomerium/", false, e.cfg.URLKey, time.Now()).String()
	if resp, body := get(t, e.client(), own); resp.StatusCode != http.StatusFound {
		t.Errorf("sign-in to the authenticate host: %d %s", resp.StatusCode, body)
	}
	// A forged binding does not verify (it is covered by the signature).
	u, _ := url.Parse(e.signInURL(e.appOrigin+"/", false))
	q := u.Query()
	q.Set(handoff.QueryBinding, handoff.NewBinding().Param())
	u.RawQuery = q.Encode()
	if resp, _ := get(t, e.client(), u.String()); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("swapped binding: %d", resp.StatusCode)
	}
}

// TestSignedSignOutEndsOnlyTheNamedSession: a signed sign-out URL ends the
// session it names; opened in another user's browser (an attacker's link)
// it leaves that browser's session alone (item 10).
func TestSignedSignOutEndsOnlyTheNamedSession(t *testing.T) {
	e := newEnv(t, envOptions{})
	cipher, _ := cryptutil.NewCipher(e.cfg.CookieSealKey)
	victim, attacker := e.client(), e.client()
	victimHandle := e.openCallback(e.signIn(victim, e.appOrigin+"/", "victim@example.com", "Victim", "")).Handle
	attackerHandle := e.openCallback(e.signIn(attacker, e.appOrigin+"/", "mallory@example.com", "Mallory", "")).Handle
	vh, _ := sessionhandle.Decode(e.cfg.HandleKey, victimHandle, time.Now())
	ah, _ := sessionhandle.Decode(e.cfg.HandleKey, attackerHandle, time.Now())

	// What the proxy gives the attacker after her own confirmed sign-out.
	link := handoff.SignOutURL(e.authURL, e.appOrigin+"/", attackerHandle, e.cfg.URLKey, cipher, time.Now()).String()
	resp, body := get(t, victim, link)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("sign-out link in the victim's browser: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(resp.Header.Get("Location"), "/end_session") {
		t.Errorf("the victim's browser was sent to the IdP's end_session: %s", resp.Header.Get("Location"))
	}
	if e.session(vh.ID) == nil {
		t.Fatal("the victim's session ended")
	}
	if c := cookieNamed(resp, e.cfg.CookieName); c != nil {
		t.Errorf("the victim's cookie was cleared: %v", c)
	}
	if e.session(ah.ID) != nil {
		t.Error("the session named in the link is still there")
	}
	resp, body = get(t, victim, e.authURL.String()+handoff.UserJSONPath)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "victim@example.com") {
		t.Errorf("victim after the link: %d %s", resp.StatusCode, body)
	}
}
