package devidp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/pkg/testutil"
)

const (
	testClientID     = "gatehouse-test"
	testClientSecret = "test-secret"
	testRedirectURI  = "https://app.example.com/oauth2/callback"
)

// testIdP is a running provider and the pieces a test needs to drive it.
type testIdP struct {
	srv      *Server
	ts       *httptest.Server
	issuer   string
	provider *oidc.Provider
	ctx      context.Context // carries the HTTP client for go-oidc/oauth2
	client   *http.Client    // stops at any redirect leaving the IdP
	meta     struct {
		Revocation string `json:"revocation_endpoint"`
		EndSession string `json:"end_session_endpoint"`
	}
}

// startIdP starts a provider on loopback (TLS when useTLS) with cfg's
// Issuer (a bare path is put after the server's address), ClientID, ClientSecret and RedirectURIs filled in unless set.
func startIdP(t *testing.T, cfg Config, useTLS bool) *testIdP {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil) // listens on 127.0.0.1
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	if cfg.Issuer == "" || strings.HasPrefix(cfg.Issuer, "/") { // a path only
		cfg.Issuer = scheme + "://" + ts.Listener.Addr().String() + cfg.Issuer
	}
	if cfg.ClientID == "" { // the default confidential client
		cfg.ClientID, cfg.ClientSecret = testClientID, testClientSecret
	}
	if cfg.RedirectURIs == nil {
		cfg.RedirectURIs = []string{testRedirectURI}
	}
	if testing.Verbose() && cfg.Logger == nil {
		cfg.Logger = slogForTest(t)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	if useTLS {
		ts.StartTLS()
	} else {
		ts.Start()
	}
	t.Cleanup(ts.Close)

	idpHost := ts.Listener.Addr().String()
	client := ts.Client()
	client.Timeout = 10 * time.Second
	client.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host != idpHost {
			return http.ErrUseLastResponse
		}
		return nil
	}
	ctx := oidc.ClientContext(t.Context(), client)
	provider, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	idp := &testIdP{srv: srv, ts: ts, issuer: cfg.Issuer, provider: provider, ctx: ctx, client: client}
	if err := provider.Claims(&idp.meta); err != nil {
		t.Fatal(err)
	}
	return idp
}

func (idp *testIdP) oauth2Config(secret string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     idp.srv.cfg.ClientID,
		ClientSecret: secret,
		Endpoint:     idp.provider.Endpoint(),
		RedirectURL:  testRedirectURI,
		Scopes:       []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess},
	}
}

var hiddenIDField = regexp.MustCompile(`<input type="hidden" name="authRequestID" value="([^"]+)">`)
var formAction = regexp.MustCompile(`<form method="post" action="([^"]+)">`)

// signIn opens authURL, checks the login page, posts the form and returns
// the redirect that leaves the IdP.
func (idp *testIdP) signIn(t *testing.T, authURL string, form url.Values) *url.URL {
	t.Helper()
	resp, err := idp.client.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login page: status %d: %s", resp.StatusCode, body)
	}
	page := string(body)
	for _, want := range []string{"For development only", `name="email"`, `name="name"`, `name="groups"`, `type="submit"`} {
		if !strings.Contains(page, want) {
			t.Errorf("login page lacks %q", want)
		}
	}
	m := hiddenIDField.FindStringSubmatch(page)
	a := formAction.FindStringSubmatch(page)
	if m == nil || a == nil {
		t.Fatalf("login page lacks the hidden auth request id or the form action:\n%s", page)
	}
	if got := resp.Request.URL.Query().Get("authRequestID"); got != m[1] {
		t.Errorf("hidden authRequestID %q differs from the query's %q", m[1], got)
	}
	action, err := resp.Request.URL.Parse(a[1])
	if err != nil {
		t.Fatal(err)
	}
	form.Set("authRequestID", m[1])
	resp, err = idp.client.PostForm(action.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login POST: status %d, want 302: %s", resp.StatusCode, body)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func aliceForm() url.Values {
	return url.Values{"email": {"alice@example.com"}, "name": {"Alice Smith"}, "groups": {"admins, dev"}}
}

type testClaims struct {
	Subject       string   `json:"sub"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Name          string   `json:"name"`
	Groups        []string `json:"groups"`
	Nonce         string   `json:"nonce"`
	IssuedAt      int64    `json:"iat"`
	Expiry        int64    `json:"exp"`
}

func checkAlice(t *testing.T, what string, c testClaims) {
	t.Helper()
	if c.Subject != Subject("alice@example.com") || c.Email != "alice@example.com" || !c.EmailVerified ||
		c.Name != "Alice Smith" || !slices.Equal(c.Groups, []string{"admins", "dev"}) {
		t.Errorf("%s claims = %+v, want alice's", what, c)
	}
}

// codeFlow runs a sign-in as alice with PKCE and returns the code and the
// verifier.
func (idp *testIdP) codeFlow(t *testing.T, conf *oauth2.Config, nonce string) (code, verifier string) {
	t.Helper()
	verifier = oauth2.GenerateVerifier()
	state := "state-" + nonce
	authURL := conf.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))
	loc := idp.signIn(t, authURL, aliceForm())
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != conf.RedirectURL {
		t.Fatalf("redirected to %s, want %s", got, conf.RedirectURL)
	}
	if got := loc.Query().Get("state"); got != state {
		t.Fatalf("state = %q, want %q", got, state)
	}
	code = loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", loc)
	}
	return code, verifier
}

func retrieveErrorCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

func TestFullFlow(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "http"
		if useTLS {
			name = "https"
		}
		t.Run(name, func(t *testing.T) { testFullFlow(t, useTLS) })
	}
}

func testFullFlow(t *testing.T, useTLS bool) {
	idp := startIdP(t, Config{}, useTLS)
	conf := idp.oauth2Config(testClientSecret)
	code, verifier := idp.codeFlow(t, conf, "nonce-1")

	tok, err := conf.Exchange(idp.ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	rawID, _ := tok.Extra("id_token").(string)
	verifierOIDC := idp.provider.Verifier(&oidc.Config{ClientID: testClientID})
	idTok, err := verifierOIDC.Verify(idp.ctx, rawID)
	if err != nil {
		t.Fatalf("verify id token: %v", err)
	}
	if idTok.Issuer != idp.issuer || !slices.Equal(idTok.Audience, []string{testClientID}) || idTok.Nonce != "nonce-1" {
		t.Errorf("id token iss=%q aud=%q nonce=%q", idTok.Issuer, idTok.Audience, idTok.Nonce)
	}
	var claims testClaims
	if err := idTok.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	checkAlice(t, "id token", claims)

	// The code is single use.
	if _, err := conf.Exchange(idp.ctx, code, oauth2.VerifierOption(verifier)); retrieveErrorCode(err) != "invalid_grant" {
		t.Errorf("second exchange of a code: err = %v, want invalid_grant", err)
	}

	ui, err := idp.provider.UserInfo(idp.ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var uiClaims testClaims
	if err := ui.Claims(&uiClaims); err != nil {
		t.Fatal(err)
	}
	checkAlice(t, "userinfo", uiClaims)

	// Refresh: a new access token and ID token, same refresh token.
	refreshed, err := conf.TokenSource(idp.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if refreshed.AccessToken == "" || refreshed.AccessToken == tok.AccessToken {
		t.Error("refresh returned no new access token")
	}
	if refreshed.RefreshToken != tok.RefreshToken {
		t.Error("refresh token was rotated; it should stay the same")
	}
	rawID2, _ := refreshed.Extra("id_token").(string)
	idTok2, err := verifierOIDC.Verify(idp.ctx, rawID2)
	if err != nil {
		t.Fatalf("verify refreshed id token: %v", err)
	}
	var claims2 testClaims
	_ = idTok2.Claims(&claims2)
	checkAlice(t, "refreshed id token", claims2)
	if _, err := idp.provider.UserInfo(idp.ctx, oauth2.StaticTokenSource(refreshed)); err != nil {
		t.Errorf("userinfo with refreshed token: %v", err)
	}

	// Revoke the refresh token; refreshing then fails with invalid_grant,
	// and the access tokens it issued are dead too.
	req, _ := http.NewRequest(http.MethodPost, idp.meta.Revocation,
		strings.NewReader(url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(testClientID, testClientSecret)
	resp, err := idp.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revocation: status %d", resp.StatusCode)
	}
	_, err = conf.TokenSource(idp.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if retrieveErrorCode(err) != "invalid_grant" {
		t.Errorf("refresh after revocation: err = %v, want invalid_grant", err)
	}
	if _, err := idp.provider.UserInfo(idp.ctx, oauth2.StaticTokenSource(refreshed)); err == nil {
		t.Error("userinfo accepted an access token of a revoked refresh token")
	}

	// end_session redirects to a post_logout_redirect_uri on a redirect host.
	endURL := idp.meta.EndSession + "?" + url.Values{
		"id_token_hint":            {rawID},
		"post_logout_redirect_uri": {"https://app.example.com/signed-out?x=1"},
		"state":                    {"bye"},
	}.Encode()
	resp, err = idp.client.Get(endURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := resp.Location()
	if resp.StatusCode != http.StatusFound || loc == nil || loc.Host != "app.example.com" ||
		loc.Path != "/signed-out" || loc.Query().Get("state") != "bye" || loc.Query().Get("x") != "1" {
		t.Errorf("end_session: status %d, location %v", resp.StatusCode, loc)
	}
}

func TestWrongPKCEVerifier(t *testing.T) {
	idp := startIdP(t, Config{}, false)
	conf := idp.oauth2Config(testClientSecret)
	code, _ := idp.codeFlow(t, conf, "n")
	_, err := conf.Exchange(idp.ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
	if retrieveErrorCode(err) != "invalid_grant" {
		t.Errorf("exchange with a wrong verifier: err = %v, want invalid_grant", err)
	}
}

func TestMissingPKCEVerifier(t *testing.T) {
	idp := startIdP(t, Config{}, false)
	conf := idp.oauth2Config(testClientSecret)
	code, _ := idp.codeFlow(t, conf, "n")
	if _, err := conf.Exchange(idp.ctx, code); err == nil {
		t.Error("exchange without the verifier succeeded")
	}
}

func TestWrongClientSecret(t *testing.T) {
	idp := startIdP(t, Config{}, false)
	conf := idp.oauth2Config(testClientSecret)
	code, verifier := idp.codeFlow(t, conf, "n")
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		bad := idp.oauth2Config("wrong")
		bad.Endpoint.AuthStyle = style
		if _, err := bad.Exchange(idp.ctx, code, oauth2.VerifierOption(verifier)); retrieveErrorCode(err) != "invalid_client" {
			t.Errorf("auth style %d: exchange with a wrong secret: err = %v, want invalid_client", style, err)
		}
	}
	// The right secret in the form (client_secret_post) works.
	good := idp.oauth2Config(testClientSecret)
	good.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	if _, err := good.Exchange(idp.ctx, code, oauth2.VerifierOption(verifier)); err != nil {
		t.Errorf("client_secret_post exchange: %v", err)
	}
}

func TestPublicClientRequiresPKCE(t *testing.T) {
	idp := startIdP(t, Config{ClientID: "public-cli"}, false)
	var meta struct {
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := idp.provider.Claims(&meta); err != nil || !slices.Equal(meta.AuthMethods, []string{"none"}) {
		t.Errorf("token_endpoint_auth_methods_supported = %q, %v; want [none]", meta.AuthMethods, err)
	}
	conf := idp.oauth2Config("")
	// Without PKCE the code is refused.
	authURL := conf.AuthCodeURL("s")
	loc := idp.signIn(t, authURL, aliceForm())
	if _, err := conf.Exchange(idp.ctx, loc.Query().Get("code")); err == nil {
		t.Error("public client exchanged a code without PKCE")
	}
	code, verifier := idp.codeFlow(t, conf, "n")
	if _, err := conf.Exchange(idp.ctx, code, oauth2.VerifierOption(verifier)); err != nil {
		t.Errorf("public client with PKCE: %v", err)
	}
}

func TestTokenLifetimes(t *testing.T) {
	idp := startIdP(t, Config{AccessTokenTTL: 90 * time.Second, IDTokenTTL: 2 * time.Minute, RefreshTokenTTL: 10 * time.Minute}, false)
	conf := idp.oauth2Config(testClientSecret)
	code, verifier := idp.codeFlow(t, conf, "n")
	tok, err := conf.Exchange(idp.ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if in := time.Until(tok.Expiry); in < 80*time.Second || in > 91*time.Second {
		t.Errorf("access token expires in %v, want ~90s", in)
	}
	idTok, err := idp.provider.Verifier(&oidc.Config{ClientID: testClientID}).Verify(idp.ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	if d := idTok.Expiry.Sub(idTok.IssuedAt); d != 2*time.Minute {
		t.Errorf("id token lifetime %v, want 2m", d)
	}

	// Move the storage's clock: the access token dies, then the refresh token.
	st := idp.srv.storage
	clock := testutil.NewClock(time.Now())
	st.mu.Lock()
	st.now = clock.Now
	st.mu.Unlock()
	clock.Advance(5 * time.Minute)
	if _, err := idp.provider.UserInfo(idp.ctx, oauth2.StaticTokenSource(tok)); err == nil {
		t.Error("userinfo accepted an expired access token")
	}
	if _, err := conf.TokenSource(idp.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
		t.Errorf("refresh within the refresh TTL: %v", err)
	}
	clock.Advance(6 * time.Minute)
	_, err = conf.TokenSource(idp.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if retrieveErrorCode(err) != "invalid_grant" {
		t.Errorf("refresh after the refresh TTL: err = %v, want invalid_grant", err)
	}
}

func TestRejectRefreshes(t *testing.T) {
	idp := startIdP(t, Config{}, false)
	conf := idp.oauth2Config(testClientSecret)
	code, verifier := idp.codeFlow(t, conf, "n")
	tok, err := conf.Exchange(idp.ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	refresh := func() error {
		_, err := conf.TokenSource(idp.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		return err
	}
	switchURL := idp.issuer + "/dev/reject-refreshes"
	resp, err := idp.client.PostForm(switchURL, url.Values{"reject": {"true"}})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("switch on: %v %v", err, resp)
	}
	resp.Body.Close()
	if err := refresh(); retrieveErrorCode(err) != "invalid_grant" {
		t.Errorf("refresh while rejecting: err = %v, want invalid_grant", err)
	}
	idp.srv.RejectRefreshes(false)
	if err := refresh(); err != nil {
		t.Errorf("refresh after switching back: %v", err)
	}
}

func TestEndSession(t *testing.T) {
	idp := startIdP(t, Config{}, false)
	get := func(q url.Values) *http.Response {
		t.Helper()
		resp, err := idp.client.Get(idp.meta.EndSession + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	// No client, no hint, no post_logout_redirect_uri: the signed-out page.
	resp := get(url.Values{})
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/signed-out" {
		t.Errorf("bare end_session: status %d at %s", resp.StatusCode, resp.Request.URL)
	}
	// With only a post_logout_redirect_uri on a redirect host: followed.
	resp = get(url.Values{"post_logout_redirect_uri": {"https://app.example.com/"}})
	if loc, _ := resp.Location(); resp.StatusCode != http.StatusFound || loc == nil || loc.String() != "https://app.example.com/" {
		t.Errorf("end_session with post_logout_redirect_uri: status %d location %v", resp.StatusCode, loc)
	}
	// A foreign host is refused, never redirected to.
	resp = get(url.Values{"client_id": {testClientID}, "post_logout_redirect_uri": {"https://evil.example.net/"}})
	if loc, _ := resp.Location(); loc != nil && loc.Host == "evil.example.net" {
		t.Errorf("end_session redirected to a foreign host")
	}
	// The signed-out page says what happened.
	page, err := idp.client.Get(idp.issuer + "/signed-out")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if !strings.Contains(string(body), "Signed out") {
		t.Errorf("signed-out page: %s", body)
	}
}

func TestWildcardRedirectURI(t *testing.T) {
	idp := startIdP(t, Config{RedirectURIs: []string{testRedirectURI, "https://*.localhost.pomerium.io/oauth2/callback"}}, false)
	conf := idp.oauth2Config(testClientSecret)
	conf.RedirectURL = "https://authenticate.localhost.pomerium.io/oauth2/callback"
	code, verifier := idp.codeFlow(t, conf, "n")
	if _, err := conf.Exchange(idp.ctx, code, oauth2.VerifierOption(verifier)); err != nil {
		t.Errorf("exchange with a wildcard redirect URI: %v", err)
	}

	// An unregistered redirect URI never reaches the login page.
	conf.RedirectURL = "https://evil.example.net/oauth2/callback"
	resp, err := idp.client.Get(conf.AuthCodeURL("s"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, _ := resp.Location(); resp.StatusCode == http.StatusOK && strings.HasSuffix(resp.Request.URL.Path, "/login") ||
		loc != nil && loc.Host == "evil.example.net" {
		t.Errorf("unregistered redirect URI accepted: status %d at %s", resp.StatusCode, resp.Request.URL)
	}
}

func TestLoginForm(t *testing.T) {
	idp := startIdP(t, Config{}, false)
	conf := idp.oauth2Config(testClientSecret)
	resp, err := idp.client.Get(conf.AuthCodeURL("s", oauth2.SetAuthURLParam("login_hint", "bob@example.com")))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `value="bob@example.com"`) {
		t.Error("login_hint does not prefill the email field")
	}
	id := resp.Request.URL.Query().Get("authRequestID")
	loginURL := idp.issuer + "/login"

	// A bad email re-shows the form with an error.
	resp, err = idp.client.PostForm(loginURL, url.Values{"authRequestID": {id}, "email": {"not an email"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "email must be") {
		t.Errorf("bad email: status %d: %s", resp.StatusCode, body)
	}
	// An unknown request id is refused.
	resp, err = idp.client.PostForm(loginURL, url.Values{"authRequestID": {"nope"}, "email": {"a@b.c"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown auth request: status %d", resp.StatusCode)
	}
	// Empty name and groups: name from the email, groups an empty list.
	resp, err = idp.client.PostForm(loginURL, url.Values{"authRequestID": {id}, "email": {"bob@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := resp.Location()
	if loc == nil {
		t.Fatalf("no redirect: status %d", resp.StatusCode)
	}
	tok, err := conf.Exchange(idp.ctx, loc.Query().Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	raw := tok.Extra("id_token").(string)
	idTok, err := idp.provider.Verifier(&oidc.Config{ClientID: testClientID}).Verify(idp.ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = idTok.Claims(&m)
	if g, ok := m["groups"].([]any); !ok || len(g) != 0 {
		t.Errorf("groups = %#v, want []", m["groups"])
	}
	if m["name"] != "bob" || m["sub"] != Subject("Bob@Example.com ") {
		t.Errorf("claims = %v", m)
	}
}

func TestIssuerWithPath(t *testing.T) {
	idp := startIdP(t, Config{Issuer: "/idp"}, false)
	if !strings.HasSuffix(idp.provider.Endpoint().TokenURL, "/idp/oauth/token") {
		t.Errorf("token URL %q", idp.provider.Endpoint().TokenURL)
	}
	conf := idp.oauth2Config(testClientSecret)
	code, verifier := idp.codeFlow(t, conf, "n")
	if _, err := conf.Exchange(idp.ctx, code, oauth2.VerifierOption(verifier)); err != nil {
		t.Fatal(err)
	}
}

func TestDiscovery(t *testing.T) {
	idp := startIdP(t, Config{}, false)
	var d struct {
		Issuer      string   `json:"issuer"`
		JWKS        string   `json:"jwks_uri"`
		Userinfo    string   `json:"userinfo_endpoint"`
		Grants      []string `json:"grant_types_supported"`
		Responses   []string `json:"response_types_supported"`
		PKCE        []string `json:"code_challenge_methods_supported"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
		Claims      []string `json:"claims_supported"`
		Device      string   `json:"device_authorization_endpoint"`
	}
	if err := idp.provider.Claims(&d); err != nil {
		t.Fatal(err)
	}
	if d.Issuer != idp.issuer || d.JWKS != idp.issuer+"/keys" || d.Userinfo != idp.issuer+"/userinfo" ||
		idp.meta.Revocation != idp.issuer+"/revoke" || idp.meta.EndSession != idp.issuer+"/end_session" {
		t.Errorf("endpoints: %+v %+v", d, idp.meta)
	}
	if !slices.Equal(d.Grants, []string{"authorization_code", "refresh_token"}) ||
		!slices.Equal(d.Responses, []string{"code"}) || !slices.Contains(d.PKCE, "S256") ||
		!slices.Equal(d.AuthMethods, []string{"client_secret_basic", "client_secret_post"}) ||
		!slices.Contains(d.Claims, "groups") || d.Device != "" {
		t.Errorf("discovery: %+v", d)
	}
}

func TestSubject(t *testing.T) {
	a, b := Subject("alice@example.com"), Subject(" Alice@Example.COM")
	if a != b || len(a) != 32 || a == Subject("bob@example.com") {
		t.Errorf("Subject: %q %q", a, b)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no redirect":  {},
		"port 0":       {Address: "127.0.0.1:0", RedirectURIs: []string{testRedirectURI}},
		"bad issuer":   {Issuer: "ftp://x", RedirectURIs: []string{testRedirectURI}},
		"relative uri": {RedirectURIs: []string{"/callback"}},
		"negative ttl": {RedirectURIs: []string{testRedirectURI}, IDTokenTTL: -1},
		"cert, no key": {RedirectURIs: []string{testRedirectURI}, CertFile: "c.pem"},
		"issuer query": {Issuer: "http://127.0.0.1:1/?a=b", RedirectURIs: []string{testRedirectURI}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	s, err := New(Config{RedirectURIs: []string{testRedirectURI}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Issuer() != "http://127.0.0.1:9000" || s.cfg.ClientID != DefaultClientID {
		t.Errorf("defaults: issuer %q client %q", s.Issuer(), s.cfg.ClientID)
	}
}

func TestRunCommand(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "http"
		if useTLS {
			name = "https"
		}
		t.Run(name, func(t *testing.T) { testRunCommand(t, useTLS) })
	}
	if err := RunCommand(t.Context(), []string{"--help"}, io.Discard); err != nil {
		t.Errorf("--help: %v", err)
	}
	if err := RunCommand(t.Context(), []string{"--address", "127.0.0.1:1"}, io.Discard); err == nil {
		t.Error("RunCommand without a redirect URI succeeded")
	}
}

func testRunCommand(t *testing.T, useTLS bool) {
	addr := freeLoopbackAddr(t)
	issuer := "http://" + addr
	args := []string{"--address", addr, "--client-id", "cli", "--client-secret", "s",
		"--redirect-uri", testRedirectURI, "--access-token-ttl", "5m"}
	httpClient := &http.Client{Timeout: 5 * time.Second}
	if useTLS {
		certFile, keyFile, pool := selfSignedCert(t, t.TempDir())
		issuer = "https://" + addr
		args = append(args, "--issuer", issuer, "--tls-cert", certFile, "--tls-key", keyFile)
		httpClient.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- RunCommand(ctx, args, out) }()

	octx := oidc.ClientContext(t.Context(), httpClient)
	var provider *oidc.Provider
	testutil.WaitFor(t, 5*time.Second, "discovery against RunCommand", func() error {
		var err error
		if provider, err = oidc.NewProvider(octx, issuer); err != nil {
			return fmt.Errorf("%w\n%s", err, out)
		}
		return nil
	})
	if provider.Endpoint().TokenURL != issuer+"/oauth/token" {
		t.Errorf("token URL %q", provider.Endpoint().TokenURL)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("RunCommand: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunCommand did not stop")
	}
	if !strings.Contains(out.String(), "FOR DEVELOPMENT ONLY") {
		t.Errorf("output lacks the warning:\n%s", out.String())
	}
}

// TestEndSessionForgetsTheLoginForm checks that a sign-out clears what the
// login form remembers, so the next sign-in at this browser starts empty.
func TestEndSessionForgetsTheLoginForm(t *testing.T) {
	idp := startIdP(t, Config{}, false)
	c := *idp.client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(idp.meta.EndSession + "?" + url.Values{"post_logout_redirect_uri": {"https://app.example.com/"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cleared bool
	for _, ck := range resp.Cookies() {
		if ck.Name == loginCookieName && ck.MaxAge < 0 && ck.Path == pathLogin {
			cleared = true
		}
	}
	if !cleared {
		t.Errorf("end_session does not clear the %s cookie: Set-Cookie %q", loginCookieName, resp.Header.Values("Set-Cookie"))
	}
}
