package config

import (
	"fmt"
	"strings"
)

// UnderscoreAction is what the proxy does with request headers whose
// names have an underscore (headers_with_underscores_action, Envoy's
// setting under Pomerium's name). Whatever it says, a header that names
// one gatehouse writes in any spelling (X_Pomerium_Jwt_Assertion, a
// jwt_claims_headers or set_request_headers name with '_' for '-') never
// reaches the upstream: the proxy strips those first.
type UnderscoreAction int

// The headers_with_underscores_action values.
const (
	// UnderscoresAllow passes such headers on (Envoy's default).
	UnderscoresAllow UnderscoreAction = iota
	// UnderscoresDropHeader removes them from the request.
	UnderscoresDropHeader
	// UnderscoresRejectRequest answers 400 to a request that has one.
	UnderscoresRejectRequest
)

// validateUnderscoreHeaders reads headers_with_underscores_action, in
// Pomerium's lower-case spelling or Envoy's upper-case one.
func (c *Config) validateUnderscoreHeaders(errs *Errors) {
	switch strings.ToLower(c.HeadersWithUnderscoresAction) {
	case "", "allow":
		c.UnderscoreHeaders = UnderscoresAllow
	case "drop_header":
		c.UnderscoreHeaders = UnderscoresDropHeader
	case "reject_request":
		c.UnderscoreHeaders = UnderscoresRejectRequest
	default:
		errs.add("headers_with_underscores_action", c.lines["headers_with_underscores_action"],
			fmt.Sprintf("expected allow, drop_header or reject_request, got %q", c.HeadersWithUnderscoresAction))
	}
}
