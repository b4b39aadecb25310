package config

import "fmt"

// The jwt_issuer_format values, as Pomerium spells them.
const (
	// JWTIssuerHostOnly makes the identity JWT's iss the route's host
	// name ("app.example.com"), Pomerium's default.
	JWTIssuerHostOnly = "hostOnly"
	// JWTIssuerURI makes it a URI: "https://app.example.com/".
	JWTIssuerURI = "uri"
)

// checkJWTIssuerFormat reports a jwt_issuer_format value that is neither
// hostOnly nor uri ("" is unset).
func checkJWTIssuerFormat(errs *Errors, key string, line int, v string) {
	switch v {
	case "", JWTIssuerHostOnly, JWTIssuerURI:
	default:
		errs.add(key, line, fmt.Sprintf("expected hostOnly or uri, got %q", v))
	}
}

// JWTIssuerURIFor reports whether the identity JWT for a route carries
// its issuer in the uri form: the route's jwt_issuer_format, else the
// global one (r may be nil).
func (c *Config) JWTIssuerURIFor(r *Route) bool {
	if r != nil && r.JWTIssuerFormat != "" {
		return r.JWTIssuerFormat == JWTIssuerURI
	}
	return c.JWTIssuerFormat == JWTIssuerURI
}
