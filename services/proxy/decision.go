package proxy

import (
	"net/http"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse/gatehouse/pkg/config"
)

// checkErrorLogInterval is how often an identical authorize failure is
// logged; the access log still has a line for every refused request.
const checkErrorLogInterval = 5 * time.Second

// decision is what the proxy did with a request, for the access log's
// "decision" key.
type decision string

// The decisions of the access log.
const (
	decisionAllow          decision = "allow"           // authorize allowed it; it went upstream or to a user page
	decisionDeny           decision = "deny"            // authorize refused it (403, 401, or a sign-in redirect)
	decisionError          decision = "error"           // authorize could not be asked (503, fail closed), or a page failed
	decisionClientGone     decision = "client-gone"     // the client left before authorize answered
	decisionInternal       decision = "internal"        // a page of the proxy's own (/ping, JWKS, /.pomerium/…)
	decisionNoRoute        decision = "no-route"        // no route serves the host and path (404)
	decisionInvalid        decision = "invalid"         // a malformed request (400, 405)
	decisionRedirect       decision = "redirect"        // sent to the normal spelling of its path (307)
	decisionUpgradeRefused decision = "upgrade-refused" // asked for an Upgrade its route does not allow
)

// checkRequest asks authorize about a request that matched route and
// answers the client itself when the request may not go on: 503 when
// authorize cannot be asked (fail closed: never allow on no answer), or
// authorize's denial as it is (a browser's sign-in redirect bound to it
// first). rt is the route whose response headers such an answer carries,
// or nil when the caller has set them already. checkRequest fills in the
// scheme and the client IP.
//
// It returns decisionAllow and authorize's OK answer (which may be nil)
// when the request may go on, otherwise the decision for the access log.
func (s *Service) checkRequest(w http.ResponseWriter, r *http.Request, st *state, route *config.Route, rt *route, in *checkInput) (*authv3.OkHttpResponse, decision) {
	in.scheme = requestScheme(r, st.hops)
	in.clientIP, _ = clientIP(r, st.hops)
	in.clientCert = clientCertificate(r)
	resp, err := s.check(r.Context(), in)
	if err != nil {
		if r.Context().Err() != nil {
			return nil, decisionClientGone
		}
		if ok, held := s.checkErrors.Allow(err.Error()); ok {
			// One line per kind of failure per interval: under load a
			// down authorize would otherwise log every request twice.
			s.logger.Error("authorize check failed; refusing the request", "route", route.ID, "request_id", in.requestID,
				"error", err.Error(), "identical_errors_not_logged", held)
		}
		if rt != nil {
			rt.setResponseHeaders(w, r, st.hops)
		}
		writeError(w, r, http.StatusServiceUnavailable, msgAuthUnavailable, in.requestID)
		return nil, decisionError
	}
	if !allowed(resp) {
		if rt != nil {
			rt.setResponseHeaders(w, r, st.hops)
		}
		d := resp.GetDeniedResponse()
		if d == nil {
			d = resp.GetErrorResponse()
		}
		writeDenied(w, r, s.bindSignIn(w, st, route, d), in.requestID)
		return nil, decisionDeny
	}
	return resp.GetOkResponse(), decisionAllow
}
