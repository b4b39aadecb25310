package authenticate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/pkg/config"
)

// discoveryTimeout bounds one discovery attempt.
const discoveryTimeout = 10 * time.Second

// discoveryRetryInterval is the least time between two discovery attempts
// after a slow failure (a timeout): while the IdP does not answer, a burst of
// sign-ins fails fast with the last error instead of each waiting for a
// timeout. A fast failure (connection refused) is retried at once, so the
// first sign-in after the IdP is back succeeds.
const discoveryRetryInterval = 2 * time.Second

// slowFailure is how long a failed discovery must have taken to hold off
// retries for discoveryRetryInterval.
const slowFailure = time.Second

// ErrIdPUnavailable means the identity provider's discovery document could
// not be fetched; sign-ins get a 503 page until it can.
var ErrIdPUnavailable = errors.New("the identity provider is unavailable")

// idpSettings are the options that define the identity provider.
type idpSettings struct {
	provider     string // idp_provider, lower case
	issuer       string
	clientID     string
	clientSecret string
	scopes       []string
	params       map[string]string
	redirectURL  string
	caPool       *x509.CertPool // compared by identity
}

func idpSettingsFrom(cfg *config.Config, callback *url.URL) idpSettings {
	s := idpSettings{
		provider:     strings.ToLower(cfg.IDPProvider),
		issuer:       cfg.IDPProviderURL,
		clientID:     cfg.IDPClientID,
		clientSecret: cfg.IDPClientSecret,
		scopes:       slices.Clone([]string(cfg.IDPScopes)),
		params:       maps.Clone(map[string]string(cfg.IDPRequestParams)),
		redirectURL:  callback.String(),
	}
	s.caPool = cfg.CAPool
	if !slices.Contains(s.scopes, oidc.ScopeOpenID) {
		s.scopes = append([]string{oidc.ScopeOpenID}, s.scopes...)
	}
	switch s.provider {
	case "google":
		// Google refuses the offline_access scope; it issues refresh tokens
		// for access_type=offline, and again only with prompt=consent.
		s.scopes = slices.DeleteFunc(s.scopes, func(v string) bool { return v == oidc.ScopeOfflineAccess })
		if s.params == nil {
			s.params = map[string]string{}
		}
		if _, ok := s.params["access_type"]; !ok {
			s.params["access_type"] = "offline"
		}
		if _, ok := s.params["prompt"]; !ok {
			s.params["prompt"] = "select_account consent"
		}
	case "auth0":
		// Auth0's issuer is the tenant URL with a trailing slash.
		if !strings.HasSuffix(s.issuer, "/") {
			s.issuer += "/"
		}
	}
	return s
}

func (a idpSettings) equal(b idpSettings) bool {
	return a.provider == b.provider && a.issuer == b.issuer && a.clientID == b.clientID &&
		a.clientSecret == b.clientSecret && slices.Equal(a.scopes, b.scopes) &&
		maps.Equal(a.params, b.params) && a.redirectURL == b.redirectURL && a.caPool == b.caPool
}

// identityProvider is the OpenID Connect provider, discovered lazily: the
// first use fetches the discovery document, a failure is retried on a later
// use. It is safe for concurrent use.
type identityProvider struct {
	settings idpSettings
	client   *http.Client

	found atomic.Pointer[discovered] // nil until discovery succeeds

	mu       sync.Mutex // serialises discovery attempts
	lastErr  error
	lastTry  time.Time
	lastSlow bool // the last failed attempt took longer than slowFailure
}

// discovered is what the discovery document told.
type discovered struct {
	provider    *oidc.Provider
	verifier    *oidc.IDTokenVerifier
	oauth       *oauth2.Config
	endSession  string
	revocation  string
	userInfo    bool
	checkIssuer func(iss string, claims map[string]any) bool // nil: go-oidc checks it
	issuer      string                                       // the issuer as the provider spells it
}

func newIdentityProvider(s idpSettings) (*identityProvider, error) {
	if _, err := url.Parse(s.issuer); err != nil || s.issuer == "" {
		return nil, fmt.Errorf("idp_provider_url: %q is not a URL", s.issuer)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if s.caPool != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: s.caPool, MinVersion: tls.VersionTLS12}
	}
	return &identityProvider{
		settings: s,
		client:   &http.Client{Transport: tr, Timeout: 30 * time.Second},
	}, nil
}

// context returns ctx carrying the provider's HTTP client, for go-oidc and
// x/oauth2.
func (p *identityProvider) context(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, p.client)
}

// cached returns the discovered provider, or nil when discovery has not
// succeeded yet.
func (p *identityProvider) cached() *discovered { return p.found.Load() }

// discover returns the discovered provider, fetching the discovery document
// when it has not been fetched yet.
func (p *identityProvider) discover(ctx context.Context) (*discovered, error) {
	if d := p.found.Load(); d != nil {
		return d, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := p.found.Load(); d != nil {
		return d, nil
	}
	if p.lastErr != nil && p.lastSlow && time.Since(p.lastTry) < discoveryRetryInterval {
		return nil, p.lastErr
	}
	p.lastTry = time.Now()
	d, err := p.fetch(ctx)
	if err != nil {
		p.lastErr = fmt.Errorf("%w: %v", ErrIdPUnavailable, err)
		p.lastSlow = time.Since(p.lastTry) > slowFailure
		return nil, p.lastErr
	}
	p.found.Store(d)
	p.lastErr = nil
	return d, nil
}

func (p *identityProvider) fetch(ctx context.Context) (*discovered, error) {
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	ctx = p.context(ctx)
	s := p.settings
	issuer := s.issuer
	var checkIssuer func(string, map[string]any) bool
	if s.provider == "azure" && azureMultiTenant(issuer) {
		// Multi-tenant Azure AD publishes an issuer template
		// ("https://login.microsoftonline.com/{tenantid}/v2.0"): every
		// token's iss names the user's tenant, checked below instead.
		ctx = oidc.InsecureIssuerURLContext(ctx, issuer)
		checkIssuer = func(iss string, claims map[string]any) bool {
			tid, _ := claims["tid"].(string)
			return tid != "" && iss == "https://login.microsoftonline.com/"+tid+"/v2.0"
		}
	}
	provider, err := oidc.NewProvider(ctx, issuer)
	var mismatch *oidc.IssuerMismatchError
	if errors.As(err, &mismatch) && strings.TrimSuffix(mismatch.Discovered, "/") == strings.TrimSuffix(mismatch.Provided, "/") {
		// The same issuer up to a trailing slash: use the provider's spelling,
		// which its tokens carry.
		issuer = mismatch.Discovered
		provider, err = oidc.NewProvider(ctx, issuer)
	}
	if err != nil {
		return nil, err
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
		Revocation string `json:"revocation_endpoint"`
	}
	_ = provider.Claims(&meta)
	vc := &oidc.Config{ClientID: s.clientID, SkipIssuerCheck: checkIssuer != nil}
	return &discovered{
		provider: provider,
		verifier: provider.Verifier(vc),
		oauth: &oauth2.Config{
			ClientID:     s.clientID,
			ClientSecret: s.clientSecret,
			Endpoint:     provider.Endpoint(),
			RedirectURL:  s.redirectURL,
			Scopes:       s.scopes,
		},
		endSession:  meta.EndSession,
		revocation:  meta.Revocation,
		userInfo:    provider.UserInfoEndpoint() != "",
		checkIssuer: checkIssuer,
		issuer:      issuer,
	}, nil
}

func azureMultiTenant(issuer string) bool {
	for _, t := range []string{"/common/", "/organizations/", "/consumers/"} {
		if strings.Contains(issuer+"/", t) {
			return true
		}
	}
	return false
}

// authCodeURL returns the IdP's authorization URL for a sign-in.
func (d *discovered) authCodeURL(settings idpSettings, state, nonce, verifier string) string {
	opts := []oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	for _, k := range slices.Sorted(maps.Keys(settings.params)) {
		switch k {
		case "state", "nonce", "code_challenge", "code_challenge_method", "redirect_uri", "client_id", "response_type", "scope":
			continue // ours; a request param must not override the protocol
		}
		opts = append(opts, oauth2.SetAuthURLParam(k, settings.params[k]))
	}
	return d.oauth.AuthCodeURL(state, opts...)
}

// tokenResult is what a code exchange or a refresh yields.
type tokenResult struct {
	token   *oauth2.Token
	idToken *oidc.IDToken // nil when a refresh returned none
	rawID   string
	claims  map[string]any // ID token claims merged with userinfo
}

// errNoIDToken means the token response carried no ID token.
var errNoIDToken = errors.New("the identity provider's token response has no id_token")

// verify checks a token response's ID token (issuer, audience, expiry,
// signature; the nonce when wantNonce is set) and merges its claims with
// userinfo. requireID makes a missing ID token an error.
func (p *identityProvider) verify(ctx context.Context, d *discovered, tok *oauth2.Token, wantNonce string, requireID bool) (*tokenResult, error) {
	ctx = p.context(ctx)
	res := &tokenResult{token: tok, claims: map[string]any{}}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		if requireID {
			return nil, errNoIDToken
		}
	} else {
		idt, err := d.verifier.Verify(ctx, raw)
		if err != nil {
			return nil, fmt.Errorf("verify id_token: %w", err)
		}
		if wantNonce != "" && idt.Nonce != wantNonce {
			return nil, errors.New("verify id_token: nonce does not match the sign-in")
		}
		if err := idt.Claims(&res.claims); err != nil {
			return nil, fmt.Errorf("id_token claims: %w", err)
		}
		if d.checkIssuer != nil && !d.checkIssuer(idt.Issuer, res.claims) {
			return nil, fmt.Errorf("verify id_token: issuer %q is not the configured provider", idt.Issuer)
		}
		res.idToken, res.rawID = idt, raw
	}
	for _, k := range []string{"nonce", "at_hash", "c_hash"} {
		delete(res.claims, k)
	}
	if d.userInfo && tok.AccessToken != "" {
		ui, err := d.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err == nil {
			var extra map[string]any
			if ui.Claims(&extra) == nil {
				sub, _ := res.claims["sub"].(string)
				if s2, _ := extra["sub"].(string); sub == "" || s2 == sub {
					for k, v := range extra {
						res.claims[k] = v
					}
				}
			}
		}
	}
	return res, nil
}

// revoke revokes a token at the IdP's revocation_endpoint (RFC 7009).
func (p *identityProvider) revoke(ctx context.Context, d *discovered, token, hint string) error {
	if d.revocation == "" || token == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	form := url.Values{"token": {token}, "token_type_hint": {hint}}
	if p.settings.clientSecret == "" {
		form.Set("client_id", p.settings.clientID) // a public client names itself
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.revocation, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if p.settings.clientSecret != "" {
		req.SetBasicAuth(url.QueryEscape(p.settings.clientID), url.QueryEscape(p.settings.clientSecret))
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("revocation endpoint answered %s", resp.Status)
	}
	return nil
}
