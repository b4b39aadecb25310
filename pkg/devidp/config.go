package devidp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"
)

// Defaults applied by [Config.setDefaults] to fields left at their zero value.
const (
	// DefaultAddress is where Run listens when Config.Address is empty:
	// loopback only, so that a dev IdP is never reachable from elsewhere by
	// accident.
	DefaultAddress = "127.0.0.1:9000"
	// DefaultClientID is the client id when Config.ClientID is empty.
	DefaultClientID = "gatehouse"
	// DefaultAccessTokenTTL is the access token lifetime when
	// Config.AccessTokenTTL is zero.
	DefaultAccessTokenTTL = time.Hour
	// DefaultIDTokenTTL is the ID token lifetime when Config.IDTokenTTL is
	// zero.
	DefaultIDTokenTTL = time.Hour
	// DefaultRefreshTokenTTL is the refresh token lifetime when
	// Config.RefreshTokenTTL is zero.
	DefaultRefreshTokenTTL = 24 * time.Hour
)

// Config configures a development OpenID Connect provider serving one
// client. The zero value of every field but RedirectURIs has a usable
// default.
type Config struct {
	// Address is the TCP address Run listens on (default DefaultAddress,
	// loopback only). Handler ignores it.
	Address string
	// Issuer is the issuer URL, the base of every endpoint
	// (default "http://" + Address). It may carry a path, e.g.
	// "http://127.0.0.1:9000/idp". Plain http is allowed: this is a dev IdP.
	Issuer string
	// ClientID is the one registered client's id (default DefaultClientID).
	ClientID string
	// ClientSecret is the client's secret, accepted with
	// client_secret_basic or client_secret_post. When empty the client is
	// public (token endpoint auth method "none") and PKCE is required.
	ClientSecret string
	// RedirectURIs are the client's registered redirect URIs, matched
	// exactly. An entry containing "*" is a glob (a "*" matches any run of
	// characters without "/"), e.g. "https://*.localhost.pomerium.io/oauth2/callback".
	// At least one is required.
	RedirectURIs []string
	// AccessTokenTTL is the lifetime of access tokens (default 1h).
	AccessTokenTTL time.Duration
	// IDTokenTTL is the lifetime of ID tokens (default 1h).
	IDTokenTTL time.Duration
	// RefreshTokenTTL is the lifetime of a refresh token, counted from the
	// sign-in that issued it; refreshing does not extend it (default 24h).
	RefreshTokenTTL time.Duration
	// Logger receives structured request and sign-in logs (default: discard).
	// Tokens and secrets are never logged.
	Logger *slog.Logger

	// CertFile and KeyFile, when both set, make Run serve HTTPS with this
	// certificate and key (PEM files). Handler ignores them.
	CertFile, KeyFile string
}

// setDefaults fills zero fields with their defaults.
func (c *Config) setDefaults() {
	if c.Address == "" {
		c.Address = DefaultAddress
	}
	if c.Issuer == "" {
		c.Issuer = issuerFromAddress(c.Address)
	}
	c.Issuer = strings.TrimSuffix(c.Issuer, "/")
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.AccessTokenTTL == 0 {
		c.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if c.IDTokenTTL == 0 {
		c.IDTokenTTL = DefaultIDTokenTTL
	}
	if c.RefreshTokenTTL == 0 {
		c.RefreshTokenTTL = DefaultRefreshTokenTTL
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// issuerFromAddress derives "http://host:port" from a listen address,
// using 127.0.0.1 for an empty or unspecified host. It returns "" when the
// address has no fixed port.
func issuerFromAddress(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Validate reports the first problem with c, after defaults are applied.
func (c Config) Validate() error {
	c.setDefaults()
	if c.Issuer == "" {
		return errors.New("devidp: issuer is required when the address has no fixed port")
	}
	u, err := url.Parse(c.Issuer)
	if err != nil {
		return fmt.Errorf("devidp: issuer %q: %w", c.Issuer, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("devidp: issuer %q must be an http(s) URL without query or fragment", c.Issuer)
	}
	if len(c.RedirectURIs) == 0 {
		return errors.New("devidp: at least one redirect URI is required")
	}
	for _, ru := range c.RedirectURIs {
		u, err := url.Parse(ru)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("devidp: redirect URI %q must be an absolute URL", ru)
		}
	}
	for name, d := range map[string]time.Duration{
		"access token TTL": c.AccessTokenTTL, "ID token TTL": c.IDTokenTTL, "refresh token TTL": c.RefreshTokenTTL,
	} {
		if d < 0 {
			return fmt.Errorf("devidp: %s must not be negative", name)
		}
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("devidp: set both the TLS certificate and key files, or neither")
	}
	return nil
}
