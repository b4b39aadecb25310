package proxy

import (
	"net/http"
	"net/textproto"
	"strings"
)

// Header names the proxy reads or writes.
const (
	headerPomeriumAuthorization = "X-Pomerium-Authorization"
	headerJWTAssertion          = "X-Pomerium-Jwt-Assertion"
	headerClaimPrefix           = "X-Pomerium-Claim-"
	headerRequestID             = "X-Request-Id"
	lowerJWTAssertion           = "x-pomerium-jwt-assertion"
)

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

// removeSessionCredentials removes gatehouse's own session credential
// from a request about to go upstream: the session cookie (by name, other
// cookies stay) and an Authorization header in Pomerium's form ("Pomerium
// <handle>" or "Bearer Pomerium-<handle>"). An upstream that got the
// handle could replay it against every other route, so, as Pomerium does,
// it never sees it.
func removeSessionCredentials(h http.Header, cookieName string) {
	if vs := h["Authorization"]; len(vs) > 0 {
		kept := vs[:0]
		for _, v := range vs {
			if !isPomeriumAuthorization(v) {
				kept = append(kept, v)
			}
		}
		if len(kept) == 0 {
			delete(h, "Authorization")
		} else {
			h["Authorization"] = kept
		}
	}
	vs := h["Cookie"]
	if len(vs) == 0 || cookieName == "" {
		return
	}
	changed := false
	for _, v := range vs {
		if strings.Contains(v, cookieName) {
			changed = true
			break
		}
	}
	if !changed {
		return // the common case: no allocation
	}
	// Rewrite in place: the slice is the request's own.
	kept := vs[:0]
	for _, v := range vs {
		if out := removeCookie(v, cookieName); out != "" {
			kept = append(kept, out)
		}
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
	} else {
		h["Cookie"] = kept
	}
}

// removeCookie returns the Cookie header value without the cookies named
// name, keeping the others byte for byte.
func removeCookie(v, name string) string {
	// Fast path: one cookie of that name, cut out with one allocation.
	if start, end, ok := findCookie(v, name); ok {
		if _, _, again := findCookie(v[end:], name); !again {
			before := strings.TrimRight(v[:start], "; ")
			after := strings.TrimLeft(v[end:], "; ")
			switch {
			case before == "":
				return after
			case after == "":
				return before
			default:
				return before + "; " + after
			}
		}
	}
	var b strings.Builder
	for part := range strings.SplitSeq(v, ";") {
		p := strings.TrimSpace(part)
		if p == "" {
			continue
		}
		n, _, _ := strings.Cut(p, "=")
		if strings.TrimSpace(n) == name {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p)
	}
	return b.String()
}

// findCookie finds the first "name=value" pair in a Cookie header value:
// its start and the end of its value (before the next ';').
func findCookie(v, name string) (start, end int, ok bool) {
	for i := 0; i < len(v); {
		// Skip separators and spaces before a pair.
		for i < len(v) && (v[i] == ' ' || v[i] == ';' || v[i] == '\t') {
			i++
		}
		j := strings.IndexByte(v[i:], ';')
		pairEnd := len(v)
		if j >= 0 {
			pairEnd = i + j
		}
		pair := v[i:pairEnd]
		if n, _, _ := strings.Cut(pair, "="); strings.TrimSpace(n) == name {
			return i, pairEnd, true
		}
		i = pairEnd
	}
	return 0, 0, false
}

// isPomeriumAuthorization reports whether an Authorization value carries
// a gatehouse session handle. It matches at least every form authorize
// accepts (its prefixes compare without case), and more: extra spaces
// after "Bearer" are a credential too, since stripping more than
// authorize reads is safe and stripping less is not.
func isPomeriumAuthorization(v string) bool {
	const scheme, bearer, handle = "pomerium ", "bearer ", "pomerium-"
	if len(v) >= len(scheme) && strings.EqualFold(v[:len(scheme)], scheme) {
		return true
	}
	if len(v) >= len(bearer) && strings.EqualFold(v[:len(bearer)], bearer) {
		rest := strings.TrimLeft(v[len(bearer):], " \t")
		return len(rest) >= len(handle) && strings.EqualFold(rest[:len(handle)], handle)
	}
	return false
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
