// Package browser answers the one question every service asks of a
// request it refuses: is this a browser navigating, which is sent to sign
// in with a redirect and shown HTML pages, or an API client (XHR, JSON,
// gRPC, a script), which gets a status code and JSON?
//
// Proxy, authorize and authenticate all ask it here, so that a request is
// never redirected by one service and answered 401 by another.
package browser

import (
	"net/http"
	"strings"
)

// offers are the media types gatehouse could answer a refused request
// with, in Pomerium's order of preference (authorize's shouldRedirect).
// A wildcard Accept range picks the first one it covers.
var offers = [...]string{
	"text/html",
	"application/json",
	"text/plain",
	"application/grpc-web-text",
	"application/grpc-web+proto",
	"application/grpc+proto",
}

// Is reports whether a request with these header values (Accept,
// Content-Type, X-Requested-With; "" when absent) comes from a browser
// navigating. It follows Pomerium's rule (authorize's shouldRedirect):
//
//   - X-Requested-With: XMLHttpRequest is an API client (script code
//     cannot follow a redirect to an identity provider's page);
//   - a gRPC (application/grpc, grpc-web) or JSON request body is an API
//     client;
//   - otherwise the Accept header decides: absent, "*/*", or preferring
//     text/html over application/json, text/plain and the gRPC-web types
//     is a browser, and so is an Accept that covers none of those (an
//     image, say): only a client that says it would rather have JSON,
//     plain text or gRPC-web is an API client.
//
// Preference follows RFC 7231: each type takes the q of the most
// specific range that covers it (type/subtype over type/* over */*), and
// q=0 means "not acceptable"; among equals the more specific range, then
// the earlier one, wins. It does not allocate.
func Is(accept, contentType, requestedWith string) bool {
	if strings.EqualFold(strings.TrimSpace(requestedWith), "XMLHttpRequest") {
		return false
	}
	ct := strings.TrimSpace(contentType)
	if hasPrefixFold(ct, "application/grpc") || hasPrefixFold(ct, "application/json") {
		return false
	}
	best, ok := mostAcceptable(accept)
	return !ok || best == 0
}

// Request reports Is for an HTTP request.
func Request(r *http.Request) bool {
	h := r.Header
	return Is(h.Get("Accept"), h.Get("Content-Type"), h.Get("X-Requested-With"))
}

// mostAcceptable returns the index in offers of the media type the Accept
// header prefers, or false when it is empty or accepts none of them.
//
// Each offer takes the q of the most specific range that covers it (the
// earliest among equals), so "text/html;q=0, */*" refuses HTML while
// accepting the rest. The offer with the highest q wins, then the one
// named by the more specific range, then the one whose range comes first,
// then the earlier offer.
func mostAcceptable(accept string) (int, bool) {
	var q, spec, pos [len(offers)]int
	for i := range spec {
		spec[i] = -1
	}
	for p := 0; accept != ""; p++ {
		var elem string
		elem, accept, _ = strings.Cut(accept, ",")
		mediaRange, params, _ := strings.Cut(elem, ";")
		typ, sub, ok := strings.Cut(strings.TrimSpace(mediaRange), "/")
		if !ok || typ == "" || sub == "" || (typ == "*" && sub != "*") {
			continue // not a media range
		}
		s := 2
		switch {
		case typ == "*":
			s = 0
		case sub == "*":
			s = 1
		}
		rq := -1 // read only when the range covers an offer
		for i, o := range offers {
			if s <= spec[i] || !covers(typ, sub, o) {
				continue
			}
			if rq < 0 {
				rq = quality(params)
			}
			q[i], spec[i], pos[i] = rq, s, p
		}
	}
	best := -1
	for i := range offers {
		if q[i] == 0 {
			continue
		}
		if best < 0 || q[i] > q[best] ||
			(q[i] == q[best] && (spec[i] > spec[best] || (spec[i] == spec[best] && pos[i] < pos[best]))) {
			best = i
		}
	}
	return best, best >= 0
}

// covers reports whether the media range typ/sub covers the media type o.
func covers(typ, sub, o string) bool {
	if typ == "*" {
		return true
	}
	ot, os, _ := strings.Cut(o, "/")
	if !strings.EqualFold(typ, ot) {
		return false
	}
	return sub == "*" || strings.EqualFold(sub, os)
}

// quality returns the q parameter of a media range's parameters in
// thousandths (1000 when absent or unreadable, 0 for q=0).
func quality(params string) int {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, ok := strings.Cut(p, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		return parseQ(strings.TrimSpace(v))
	}
	return 1000
}

// parseQ reads a qvalue ("0", "0.5", "1.000"); anything else counts as 1.
func parseQ(v string) int {
	if v == "" || (v[0] != '0' && v[0] != '1') {
		return 1000
	}
	n := int(v[0]-'0') * 1000
	if len(v) > 1 {
		if v[1] != '.' || len(v) > 5 {
			return 1000
		}
		scale := 100
		for _, c := range v[2:] {
			if c < '0' || c > '9' {
				return 1000
			}
			n += int(c-'0') * scale
			scale /= 10
		}
	}
	return min(n, 1000)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
