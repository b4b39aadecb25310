package sessionhandle

import (
	"net/http"
	"strings"
)

// HeaderPomeriumAuthorization is the header in which a programmatic client
// may send its session handle, as Pomerium reads it.
const HeaderPomeriumAuthorization = "X-Pomerium-Authorization"

// Where a request carries its session handle, in the order FromHeaders
// reads them: Authorization in one of Pomerium's two forms,
// X-Pomerium-Authorization, then the session cookie.
//
// The Authorization forms are "Pomerium <handle>" and
// "Bearer Pomerium-<handle>". Schemes compare without case (RFC 7235), and
// so does the "Pomerium-" prefix; spaces and tabs may follow "Bearer". The
// rule that reads a credential (FromHeaders) and the one that strips it
// before a request goes upstream (StripCredentials) are the same rule, so
// nothing authorize accepted can reach an upstream.

// FromAuthorization returns the session handle an Authorization header
// value carries in one of Pomerium's forms. ok reports that the value is
// in such a form (the handle may still be empty); a value in another form
// (Basic, a plain Bearer token) is the upstream's own and is not touched.
// It does not allocate.
func FromAuthorization(v string) (handle string, ok bool) {
	const scheme, bearer, prefix = "pomerium ", "bearer ", "pomerium-"
	if hasPrefixFold(v, scheme) {
		return strings.TrimSpace(v[len(scheme):]), true
	}
	if hasPrefixFold(v, bearer) {
		rest := strings.TrimLeft(v[len(bearer):], " \t")
		if hasPrefixFold(rest, prefix) {
			return strings.TrimSpace(rest[len(prefix):]), true
		}
	}
	return "", false
}

// FromPomeriumAuthorization returns the session handle of an
// X-Pomerium-Authorization value: the handle, optionally after "Pomerium ".
func FromPomeriumAuthorization(v string) string {
	v = strings.TrimSpace(v)
	if hasPrefixFold(v, "pomerium ") {
		v = strings.TrimSpace(v[len("pomerium "):])
	}
	return v
}

// FromHeaders returns the session handle a request carries, given its
// Authorization, X-Pomerium-Authorization and Cookie header values ("" when
// absent; several Cookie lines joined with "; "): the first non-empty one
// of Authorization (Pomerium's forms, see FromAuthorization),
// X-Pomerium-Authorization and the cookie called cookieName.
// fromAuthorization reports that it came from the Authorization header,
// which must then not reach the upstream. It does not allocate.
func FromHeaders(authorization, pomeriumAuthorization, cookie, cookieName string) (handle string, fromAuthorization bool) {
	if h, ok := FromAuthorization(authorization); ok && h != "" {
		return h, true
	}
	if h := FromPomeriumAuthorization(pomeriumAuthorization); h != "" {
		return h, false
	}
	return CookieValue(cookie, cookieName), false
}

// FromRequest is FromHeaders for an HTTP request's headers.
func FromRequest(h http.Header, cookieName string) (handle string, fromAuthorization bool) {
	for _, v := range h["Authorization"] {
		if hd, ok := FromAuthorization(v); ok && hd != "" {
			return hd, true
		}
	}
	if hd := FromPomeriumAuthorization(h.Get(HeaderPomeriumAuthorization)); hd != "" {
		return hd, false
	}
	return CookieFromHeader(h, cookieName), false
}

// CookieFromHeader returns the value of the first cookie called name in
// h's Cookie lines, or "".
func CookieFromHeader(h http.Header, name string) string {
	for _, line := range h["Cookie"] {
		if v := CookieValue(line, name); v != "" {
			return v
		}
	}
	return ""
}

// CookieValue returns the value of the first cookie called name in a
// Cookie header value ("a=1; name=v; b=2"), without the quotes RFC 6265
// allows around it, or "". It does not allocate.
func CookieValue(header, name string) string {
	for header != "" {
		start, end, ok := findCookie(header, name)
		if !ok {
			return ""
		}
		if _, v, hasValue := strings.Cut(header[start:end], "="); hasValue {
			v = strings.TrimSpace(v)
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v
		}
		header = header[end:] // a bare name, no value: look further
	}
	return ""
}

// StripCredentials removes every session credential from a request about
// to go upstream: the Authorization values in Pomerium's forms (others
// stay), X-Pomerium-Authorization, and the cookies called cookieName (other
// cookies stay, byte for byte). An upstream that got the handle could
// replay it against every other route, so, as Pomerium does, it never
// sees it. It does not allocate unless there is a cookie to cut out.
func StripCredentials(h http.Header, cookieName string) {
	if vs := h["Authorization"]; len(vs) > 0 {
		kept := vs[:0]
		for _, v := range vs {
			if _, ok := FromAuthorization(v); !ok {
				kept = append(kept, v)
			}
		}
		if len(kept) == 0 {
			delete(h, "Authorization")
		} else {
			h["Authorization"] = kept
		}
	}
	delete(h, HeaderPomeriumAuthorization)
	vs := h["Cookie"]
	if len(vs) == 0 || cookieName == "" {
		return
	}
	changed := false
	for _, v := range vs {
		if _, _, ok := findCookie(v, cookieName); ok {
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
// its start and the end of its value (before the next ';'); a bare name
// without '=' counts. Names compare exactly, after trimming spaces.
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
		if n, _, _ := strings.Cut(v[i:pairEnd], "="); strings.TrimSpace(n) == name {
			return i, pairEnd, true
		}
		i = pairEnd
	}
	return 0, 0, false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
