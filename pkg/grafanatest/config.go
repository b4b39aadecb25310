package grafanatest

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"
)

// Defaults Grafana applies to [auth.jwt], [users] and [security].
const (
	// DefaultCacheTTL is Grafana's default cache_ttl for a jwk_set_url.
	DefaultCacheTTL = 60 * time.Minute
	// DefaultAutoAssignOrgRole is Grafana's default auto_assign_org_role.
	DefaultAutoAssignOrgRole = "Viewer"
	// DefaultAdminUser and DefaultAdminPassword are Grafana's built-in admin.
	DefaultAdminUser     = "admin"
	DefaultAdminPassword = "admin"
	// Leeway is how far exp, nbf and iat may be off, as Grafana allows.
	Leeway = 60 * time.Second
)

// Config is the part of grafana.ini that decides what Grafana does with a
// JWT: the [auth.jwt] section, the [users] auto-assignment and the
// built-in admin of [security]. ParseINI reads it from a grafana.ini.
type Config struct {
	// HeaderName is [auth.jwt] header_name: the request header holding the
	// JWT (a leading "Bearer " is stripped). Required.
	HeaderName string
	// EmailClaim is [auth.jwt] email_claim: the claim holding the email.
	EmailClaim string
	// UsernameClaim is [auth.jwt] username_claim: the claim holding the
	// login. When empty, a signed-up user's login is their email.
	UsernameClaim string
	// JWKSetURL is [auth.jwt] jwk_set_url: fetched lazily over https (http
	// only with AllowInsecureJWKSURL) and cached for CacheTTL.
	JWKSetURL string
	// JWKSetFile is [auth.jwt] jwk_set_file: a JWKS read once by New.
	JWKSetFile string
	// CacheTTL is [auth.jwt] cache_ttl (default DefaultCacheTTL). A shorter
	// Cache-Control max-age on the JWKS response wins.
	CacheTTL time.Duration
	// AutoSignUp is [auth.jwt] auto_sign_up: create unknown users.
	AutoSignUp bool
	// ExpectClaims is [auth.jwt] expect_claims (a JSON object): iss and sub
	// must equal, every expected aud must be in the token's aud (a string
	// or a list), any other claim must equal.
	ExpectClaims map[string]any
	// RootCAs is [auth.jwt] tls_client_ca, loaded: the roots trusted for
	// jwk_set_url. Nil means the system roots (or TLSClientCA when set).
	RootCAs *x509.CertPool
	// TLSClientCA is [auth.jwt] tls_client_ca as a file path; New loads it
	// into RootCAs when RootCAs is nil.
	TLSClientCA string
	// AllowInsecureJWKSURL allows an http jwk_set_url, as Grafana does only
	// with app_mode = development.
	AllowInsecureJWKSURL bool

	// AutoAssignOrg is [users] auto_assign_org (nil means Grafana's default,
	// true): new users join the main org (id 1) with AutoAssignOrgRole;
	// when false each new user gets an org of their own as Admin.
	AutoAssignOrg *bool
	// AutoAssignOrgRole is [users] auto_assign_org_role (default Viewer).
	AutoAssignOrgRole string

	// AdminUser and AdminPassword are [security] admin_user and
	// admin_password (default admin/admin): basic auth for /api/admin/users.
	AdminUser, AdminPassword string

	// Now is the clock (default time.Now), for tests of exp, nbf and iat.
	Now func() time.Time
	// Logger receives one line per refused JWT with the reason (default:
	// discard). Tokens are never logged.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.CacheTTL == 0 {
		c.CacheTTL = DefaultCacheTTL
	}
	if c.AutoAssignOrgRole == "" {
		c.AutoAssignOrgRole = DefaultAutoAssignOrgRole
	}
	if c.AdminUser == "" {
		c.AdminUser = DefaultAdminUser
	}
	if c.AdminPassword == "" {
		c.AdminPassword = DefaultAdminPassword
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first problem with c, as Grafana refuses to start
// with it.
func (c Config) Validate() error {
	if c.HeaderName == "" {
		return errors.New("grafanatest: [auth.jwt] header_name is required")
	}
	if c.EmailClaim == "" && c.UsernameClaim == "" {
		return errors.New("grafanatest: [auth.jwt] needs email_claim or username_claim")
	}
	switch {
	case c.JWKSetURL != "" && c.JWKSetFile != "":
		return errors.New("grafanatest: [auth.jwt] set only one of jwk_set_url and jwk_set_file")
	case c.JWKSetURL == "" && c.JWKSetFile == "":
		return errors.New("grafanatest: [auth.jwt] needs jwk_set_url or jwk_set_file")
	}
	if c.JWKSetURL != "" {
		u, err := url.Parse(c.JWKSetURL)
		if err != nil || u.Host == "" {
			return fmt.Errorf("grafanatest: [auth.jwt] jwk_set_url %q is not an absolute URL", c.JWKSetURL)
		}
		switch u.Scheme {
		case "https":
		case "http":
			if !c.AllowInsecureJWKSURL {
				return fmt.Errorf("grafanatest: [auth.jwt] jwk_set_url %q must use https (http only in development mode)", c.JWKSetURL)
			}
		default:
			return fmt.Errorf("grafanatest: [auth.jwt] jwk_set_url %q must use https", c.JWKSetURL)
		}
	}
	if c.CacheTTL < 0 {
		return errors.New("grafanatest: [auth.jwt] cache_ttl must not be negative")
	}
	switch c.AutoAssignOrgRole {
	case "", "Viewer", "Editor", "Admin":
	default:
		return fmt.Errorf("grafanatest: [users] auto_assign_org_role %q: expected Viewer, Editor or Admin", c.AutoAssignOrgRole)
	}
	return nil
}
