package config

import "fmt"

// whyIdPBearer is why bearer_token_format's IdP forms are refused.
const whyIdPBearer = "gatehouse accepts only its own session handles as bearer tokens (bearer_token_format: default): " +
	"reading an IdP's access or identity token as a session needs authorize to verify it with the IdP (keys, issuer, audience, " +
	"idp_access_token_allowed_audiences) and create a session from it, which it does not do; sign in with /.pomerium/api/v1/login " +
	"and send Authorization: Bearer Pomerium-<handle>"

// checkBearerTokenFormat accepts bearer_token_format default ("" is
// unset) and refuses Pomerium's other values with the reason.
func checkBearerTokenFormat(errs *Errors, key string, line int, v string) {
	switch v {
	case "", "default":
	case "idp_access_token", "idp_identity_token", "jwt":
		errs.add(key, line, fmt.Sprintf("%s is refused: %s", v, whyIdPBearer))
	default:
		errs.add(key, line, fmt.Sprintf("expected default, idp_access_token or idp_identity_token, got %q", v))
	}
}

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
