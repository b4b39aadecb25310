package proxy

import (
	"net/http"
	"net/textproto"
	"strings"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/sessionhandle"
)

// Header names the proxy reads or writes.
const (
	headerPomeriumAuthorization = sessionhandle.HeaderPomeriumAuthorization
	headerJWTAssertion          = "X-Pomerium-Jwt-Assertion"
	headerJWTAssertionFor       = "X-Pomerium-Jwt-Assertion-For"
	headerClaimPrefix           = "X-Pomerium-Claim-"
	headerRequestID             = "X-Request-Id"
	lowerJWTAssertion           = "x-pomerium-jwt-assertion"
)

// incomingAssertion returns the identity JWT a request carries for
// Pomerium's X-Pomerium-Jwt-Assertion-For: that header's value, else
// X-Pomerium-Jwt-Assertion's (a service passing on the JWT it received),
// as Pomerium carries it over. Only the exact names count; the caller
// must verify the token before passing it on.
func incomingAssertion(h http.Header) string {
	if vs := h[headerJWTAssertionFor]; len(vs) == 1 && vs[0] != "" {
		return vs[0]
	}
	if vs := h[headerJWTAssertion]; len(vs) == 1 {
		return vs[0]
	}
	return ""
}

// stripPomeriumHeaders removes every X-Pomerium-* header the client sent
// and returns the value of X-Pomerium-Authorization (a session credential
// for authorize), if any.
//
// The comparison is case-insensitive and treats '_' as '-': a
// CGI/WSGI-style upstream maps X_Pomerium_Jwt_Assertion and
// X-Pomerium-Jwt-Assertion to the same variable, so a forged header
// spelled with underscores must go too.
func stripPomeriumHeaders(h http.Header) (credential string) {
	for k, vs := range h {
		if !isPomeriumHeader(k) {
			continue
		}
		if k == headerPomeriumAuthorization && len(vs) > 0 {
			credential = vs[0]
		}
		delete(h, k)
	}
	return credential
}

// isPomeriumHeader reports whether name starts with "x-pomerium-" ignoring
// case and treating '_' as '-'. It does not allocate.
func isPomeriumHeader(name string) bool {
	const prefix = "x-pomerium-"
	if len(name) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		} else if c == '_' {
			c = '-'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// commonCanonical maps the lower-case names authorize usually returns to
// their canonical form, sparing textproto.CanonicalMIMEHeaderKey's
// allocation on every request.
var commonCanonical = map[string]string{
	lowerJWTAssertion:         headerJWTAssertion,
	"x-pomerium-claim-email":  "X-Pomerium-Claim-Email",
	"x-pomerium-claim-name":   "X-Pomerium-Claim-Name",
	"x-pomerium-claim-groups": "X-Pomerium-Claim-Groups",
	"x-pomerium-claim-user":   "X-Pomerium-Claim-User",
	"x-pomerium-claim-sub":    "X-Pomerium-Claim-Sub",
	"authorization":           "Authorization",
	"cookie":                  "Cookie",
	"location":                "Location",
	"content-type":            "Content-Type",
	"set-cookie":              "Set-Cookie",
	"www-authenticate":        "Www-Authenticate",
	"cache-control":           "Cache-Control",
}

func canonicalHeaderName(k string) string {
	if c, ok := commonCanonical[k]; ok {
		return c
	}
	return textproto.CanonicalMIMEHeaderKey(k)
}

// setHeader sets h[k] = v, reusing the existing one-element slice when
// there is one (the request is ours to modify).
func setHeader(h http.Header, k, v string) {
	if vs := h[k]; len(vs) == 1 {
		vs[0] = v
		return
	}
	h[k] = []string{v}
}

// isIdentityHeader reports whether a header set by authorize carries the
// user's identity: the JWT assertion, a claim header, or one of the
// jwt_claims_headers names.
func isIdentityHeader(canonical string, claimHeaders map[string]string) bool {
	if canonical == headerJWTAssertion || strings.HasPrefix(canonical, headerClaimPrefix) {
		return true
	}
	_, ok := claimHeaders[canonical]
	return ok
}

// underscoreHeaders applies headers_with_underscores_action (drop or
// reject) to a request: it drops every header whose name has an
// underscore, or answers 400 and returns false when there is one.
func underscoreHeaders(w http.ResponseWriter, r *http.Request, action config.UnderscoreAction, reqID string) bool {
	for k := range r.Header {
		if !strings.Contains(k, "_") {
			continue
		}
		if action == config.UnderscoresRejectRequest {
			writeError(w, r, http.StatusBadRequest, "Header names with underscores are not accepted.", reqID)
			return false
		}
		delete(r.Header, k)
	}
	return true
}
