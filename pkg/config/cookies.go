package config

import "net/url"

// CookieSecureFor reports whether a cookie set for a browser that reaches
// gatehouse at browserURL gets the Secure attribute: authenticate_service_url
// for the authenticate host's cookies, the route's from URL for a route
// host's. It follows the scheme the browser sees, not insecure_server: with
// insecure_server gatehouse sits behind a TLS-terminating load balancer and
// the browser still speaks https, so its cookies must never travel in clear
// text; a development set-up on http:// URLs gets cookies without Secure,
// which browsers would otherwise drop.
//
// cookie_secure: true forces Secure everywhere; cookie_secure: false no
// longer takes it away from an https URL, where it could only leak the
// session over plain HTTP (Pomerium has made its cookies always Secure).
func (c *Config) CookieSecureFor(browserURL *url.URL) bool {
	if c.CookieSecure != nil && *c.CookieSecure {
		return true
	}
	return browserURL != nil && browserURL.Scheme == "https"
}
