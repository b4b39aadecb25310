package proxy

import (
	"context"
	"net/http"
	"net/textproto"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/handoff"
	"github.com/gatehouse/gatehouse/pkg/sessionhandle"
)

// The request an upstream receives is built in one place, route.rewrite,
// which httputil.ReverseProxy calls on its own copy of the request after
// it removed the hop-by-hop headers (those of the fixed list and those
// the client named in Connection). There, in this order:
//
//  1. every header gatehouse may write is removed, in any spelling the
//     client chose (stripGatehouseHeaders), whatever authorize answered:
//     X-Pomerium-*, jwt_claims_headers, set_request_headers, X-Forwarded-*,
//     Forwarded, X-Request-Id;
//  2. gatehouse's session credential is removed (the session cookie and
//     Authorization in Pomerium's forms, as Pomerium's clean-upstream
//     filter does, and the pomerium_jwt query parameter);
//  3. X-Request-Id is set (the client's when sane, see requestID);
//  4. authorize's headers are set, then its headers_to_remove removed;
//     X-Pomerium-Jwt-Assertion-For is set when serve verified the JWT the
//     client passed on (signed by this deployment's key, unexpired);
//  5. the route's static set_request_headers are set (those with
//     ${pomerium.*} values came expanded from authorize in step 4), its
//     remove_request_headers removed (in every spelling);
//  6. rewrite sets X-Forwarded-For, -Proto and -Host.
//
// The '_' folding goes further than Pomerium (Envoy passes X_Role by
// default, headers_with_underscores_action ALLOW) and matches what nginx
// guards against by dropping such names: an upstream behind CGI, WSGI or
// PHP reads X_Role as X-Role.
//
// Because nothing is written before the hop-by-hop removal, a client that
// names X-Pomerium-Jwt-Assertion in Connection cannot make the upstream
// lose it; because the strip runs on every forwarded request, a client
// cannot supply a header gatehouse would have written for a user who
// lacks the claim.

// maxFoldedName bounds the header names headerSet folds on the stack;
// longer configured names are compared one by one (they are rare).
const maxFoldedName = 128

// headerSet is a set of header names compared as an upstream may compare
// them: without case, and with '_' equal to '-' (CGI, WSGI and PHP map
// X_Role and X-Role to the same HTTP_X_ROLE). It is built once per
// configuration and read-only after: safe for concurrent use.
type headerSet struct {
	folded map[string]struct{} // names of at most maxFoldedName bytes, folded
	long   []string            // longer names, as configured
	minLen int
	maxLen int
}

// foldByte lower-cases c and turns '_' into '-'.
func foldByte(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	case c == '_':
		return '-'
	}
	return c
}

// fold writes name folded into buf (len(buf) >= len(name)).
func fold(buf []byte, name string) []byte {
	buf = buf[:len(name)]
	for i := 0; i < len(name); i++ {
		buf[i] = foldByte(name[i])
	}
	return buf
}

// foldEqual compares two names as headerSet does.
func foldEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if foldByte(a[i]) != foldByte(b[i]) {
			return false
		}
	}
	return true
}

func newHeaderSet(names ...string) headerSet {
	s := headerSet{folded: make(map[string]struct{}, len(names))}
	for _, n := range names {
		if n == "" {
			continue
		}
		if len(n) > maxFoldedName {
			s.long = append(s.long, n)
		} else {
			var buf [maxFoldedName]byte
			s.folded[string(fold(buf[:], n))] = struct{}{}
		}
		if s.minLen == 0 || len(n) < s.minLen {
			s.minLen = len(n)
		}
		s.maxLen = max(s.maxLen, len(n))
	}
	return s
}

// has reports whether name is in the set. It does not allocate.
func (s *headerSet) has(name string) bool {
	if len(name) < s.minLen || len(name) > s.maxLen {
		return false // also the empty set
	}
	if len(name) <= maxFoldedName {
		var buf [maxFoldedName]byte
		if _, ok := s.folded[string(fold(buf[:], name))]; ok { // no allocation: the compiler looks up []byte keys in place
			return true
		}
	}
	for _, l := range s.long {
		if foldEqual(l, name) {
			return true
		}
	}
	return false
}

// forwardingHeaders are written by rewrite on every request (X-Request-Id
// from the client's when sane); ReverseProxy removes only their canonical
// spelling, so X_Forwarded_For would otherwise reach a CGI-style upstream
// as the client address.
var forwardingHeaders = []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", headerRequestID}

// protectedHeaders returns the header names gatehouse may write on a
// route's requests, besides every X-Pomerium-* name: the
// jwt_claims_headers (both forms; the list form's names are
// X-Pomerium-Claim-*), the route's set_request_headers and the
// forwarding headers.
func protectedHeaders(cfg *config.Config, r *config.Route) headerSet {
	names := make([]string, 0, len(cfg.JWTClaimsHeaders)+len(r.SetRequestHeaders)+len(forwardingHeaders))
	names = append(names, forwardingHeaders...)
	for k := range cfg.JWTClaimsHeaders {
		names = append(names, k)
	}
	for k := range r.SetRequestHeaders {
		names = append(names, k)
	}
	if r.IsForKubernetes() {
		// authorize writes the service account's token; the client's
		// credential for the Kubernetes API never passes.
		names = append(names, "Authorization")
	}
	return newHeaderSet(names...)
}

// isImpersonateHeader reports whether name is one of Kubernetes'
// impersonation headers (Impersonate-User, -Group, -Uid, -Extra-*), in
// any case and with '_' for '-'. On a Kubernetes API route only
// authorize's Impersonate-User and -Group may reach the upstream: a
// client's would act as anyone with the service account's rights.
func isImpersonateHeader(name string) bool {
	const prefix = "impersonate-"
	return len(name) >= len(prefix) && foldEqual(name[:len(prefix)], prefix)
}

// isGatehouseHeader reports whether a client-sent header carries a name
// gatehouse may write to the upstream on this route.
func isGatehouseHeader(name string, protected *headerSet) bool {
	return isPomeriumHeader(name) || protected.has(name)
}

// stripGatehouseHeaders removes from h every header whose name gatehouse
// may write (see isGatehouseHeader), in whatever spelling it came.
func stripGatehouseHeaders(h http.Header, protected *headerSet) {
	for k := range h {
		if isGatehouseHeader(k, protected) {
			delete(h, k)
		}
	}
}

// okKey is the context key under which serve hands rewrite authorize's
// allowed answer for the request.
type okKey struct{}

// withOK returns r carrying ok for rewrite. It costs a context and a
// shallow copy of the request: the price of writing the upstream's
// headers after ReverseProxy's hop-by-hop removal, where no client
// header can undo them.
func withOK(r *http.Request, ok *authv3.OkHttpResponse) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), okKey{}, ok))
}

// assertionForKey is the context key of a verified identity JWT to pass
// on as X-Pomerium-Jwt-Assertion-For.
type assertionForKey struct{}

func withAssertionFor(r *http.Request, jwt string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), assertionForKey{}, jwt))
}

// okFrom returns the answer withOK attached, or nil.
func okFrom(r *http.Request) *authv3.OkHttpResponse {
	ok, _ := r.Context().Value(okKey{}).(*authv3.OkHttpResponse)
	return ok
}

// setUpstreamHeaders writes the headers of the request going upstream
// (out, ReverseProxy's copy of in, already without hop-by-hop headers);
// see the comment at the top of this file.
func (rt *route) setUpstreamHeaders(in, out *http.Request) {
	h := out.Header
	rid := h[headerRequestID] // ReverseProxy's copy of the id serve chose, unless Connection named it
	stripGatehouseHeaders(h, &rt.protected)
	if rt.kubernetes {
		for k := range h {
			if isImpersonateHeader(k) {
				delete(h, k)
			}
		}
	}
	sessionhandle.StripCredentials(h, rt.cookieName)
	// serve already took the reserved pomerium_* parameters out of the
	// query; this is the last line before the upstream.
	out.URL.RawQuery, _ = handoff.StripReservedQuery(out.URL.RawQuery)
	// The request id serve chose (the client's, when sane) goes upstream,
	// whatever the client named in Connection. The copy is reused when
	// there is one, sparing an allocation per request.
	if len(rid) == 1 {
		h[headerRequestID] = rid
	} else if vs := in.Header[headerRequestID]; len(vs) > 0 {
		h[headerRequestID] = []string{vs[0]}
	}
	if ok := okFrom(in); ok != nil {
		for _, o := range ok.GetHeaders() {
			key := canonicalHeaderName(o.GetHeader().GetKey())
			if key == "" || (!rt.passIdentity && isIdentityHeader(key, rt.claimHeaders)) {
				continue
			}
			applyHeaderOption(h, o, key)
		}
		for _, k := range ok.GetHeadersToRemove() {
			delete(h, canonicalHeaderName(k))
		}
	}
	if jwt, _ := in.Context().Value(assertionForKey{}).(string); jwt != "" {
		h[headerJWTAssertionFor] = []string{jwt} // verified in serve
	}
	for _, kv := range rt.setRequest {
		setHeader(h, kv.key, kv.value)
	}
	if len(rt.removeReq) > 0 {
		// remove_request_headers, in every spelling too: the operator
		// means the header, whatever its case or '_'.
		for k := range h {
			if rt.removeSet.has(k) {
				delete(h, k)
			}
		}
	}
}

// claimHeaderNames returns the canonical names of jwt_claims_headers, for
// isIdentityHeader.
func claimHeaderNames(cfg *config.Config) map[string]string {
	m := make(map[string]string, len(cfg.JWTClaimsHeaders))
	for k, claim := range cfg.JWTClaimsHeaders {
		m[textproto.CanonicalMIMEHeaderKey(k)] = claim
	}
	return m
}
