package devidp

import (
	"net/url"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// maxLogoutPathDepth bounds the post-logout globs generated per redirect
// host: path.Match's "*" does not cross "/", so one glob per depth is needed.
const maxLogoutPathDepth = 12

// client is the single registered OIDC client. It is immutable after New.
type client struct {
	id, secret   string
	loginURL     string // absolute URL of the login page, without query
	exact, globs []string
	logoutExact  []string
	logoutGlobs  []string
	idTokenTTL   time.Duration
	publicClient bool
}

var _ op.HasRedirectGlobs = (*client)(nil)

func newClient(cfg *Config, loginURL string) *client {
	c := &client{
		id:           cfg.ClientID,
		secret:       cfg.ClientSecret,
		loginURL:     loginURL,
		idTokenTTL:   cfg.IDTokenTTL,
		publicClient: cfg.ClientSecret == "",
	}
	origins := map[string]bool{}
	for _, ru := range cfg.RedirectURIs {
		if strings.Contains(ru, "*") {
			c.globs = append(c.globs, ru)
		} else {
			c.exact = append(c.exact, ru)
		}
		u, err := url.Parse(ru)
		if err != nil {
			continue // Validate rejected it already
		}
		origin := u.Scheme + "://" + u.Host
		if origins[origin] {
			continue
		}
		origins[origin] = true
		// Dev permissiveness: any post_logout_redirect_uri on a redirect
		// URI's scheme and host is allowed.
		if strings.Contains(origin, "*") {
			c.logoutGlobs = append(c.logoutGlobs, origin, origin+"/")
		} else {
			c.logoutExact = append(c.logoutExact, origin, origin+"/")
		}
		glob := origin
		for range maxLogoutPathDepth {
			glob += "/*"
			c.logoutGlobs = append(c.logoutGlobs, glob)
		}
	}
	return c
}

func (c *client) GetID() string                    { return c.id }
func (c *client) RedirectURIs() []string           { return c.exact }
func (c *client) RedirectURIGlobs() []string       { return c.globs }
func (c *client) PostLogoutRedirectURIs() []string { return c.logoutExact }
func (c *client) PostLogoutRedirectURIGlobs() []string {
	return c.logoutGlobs
}
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }

func (c *client) AuthMethod() oidc.AuthMethod {
	if c.publicClient {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic // client_secret_post is accepted too
}

func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}

func (c *client) LoginURL(authRequestID string) string {
	return c.loginURL + "?" + url.Values{loginFieldAuthRequestID: {authRequestID}}.Encode()
}

func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration      { return c.idTokenTTL }

// DevMode allows http redirect URIs on any host.
func (c *client) DevMode() bool { return true }

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}

// IsScopeAllowed admits "groups" beyond the standard OIDC scopes; the
// groups claim is sent whether or not it is asked for.
func (c *client) IsScopeAllowed(scope string) bool { return scope == "groups" }

// IDTokenUserinfoClaimsAssertion puts the profile and email claims in the ID
// token even though an access token is issued too, as most relying parties
// (Pomerium, go-oidc users) expect.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }
