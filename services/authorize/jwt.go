package authorize

import (
	"context"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/cryptutil"
	"github.com/gatehouse/gatehouse/pkg/extauthz"
	"github.com/gatehouse/gatehouse/pkg/policy"
	"github.com/gatehouse/gatehouse/pkg/signingkey"
)

// jwtRefreshBefore is how long before its expiry a cached identity JWT is
// replaced, so an upstream never receives one about to expire.
const jwtRefreshBefore = time.Minute

// maxCacheEntries bounds each per-configuration cache; past it, expired
// entries are dropped and, if that is not enough, the cache starts over.
const maxCacheEntries = 100_000

// internalKey stands in for the route id in the JWT cache key of
// internal (/.pomerium/ page) checks, whose answer carries no route headers.
const internalKey = "\x00internal"

// jwtKey identifies one cached identity answer: a session, on a route,
// for an audience. The identity pointer in the entry must also match, so
// a changed session or user never gets an answer built from old data.
type jwtKey struct {
	sessionID string
	routeID   string
	audience  string
	issuerURI bool // jwt_issuer_format uri, for internal answers (a route's own is in routeID)
}

type jwtEntry struct {
	ident     *identity
	refreshAt time.Time
	ans       *okAnswer // shared, read-only
}

// jwtCache holds signed identity answers per (session, route, audience).
// It is safe for concurrent use.
type jwtCache struct {
	mu sync.RWMutex
	m  map[jwtKey]*jwtEntry
}

func newJWTCache() *jwtCache { return &jwtCache{m: map[jwtKey]*jwtEntry{}} }

// get returns the cached answer for k built from ident, if still fresh.
// It does not allocate.
func (c *jwtCache) get(k jwtKey, ident *identity, now time.Time) *okAnswer {
	c.mu.RLock()
	e := c.m[k]
	c.mu.RUnlock()
	if e == nil || e.ident != ident || !now.Before(e.refreshAt) {
		return nil
	}
	return e.ans
}

func (c *jwtCache) put(k jwtKey, e *jwtEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCacheEntries {
		for k, old := range c.m {
			if !now.Before(old.refreshAt) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxCacheEntries {
			c.m = map[jwtKey]*jwtEntry{}
		}
	}
	c.m[k] = e
}

// identityOK returns the allowed answer that tells the upstream who the
// user is, for a route that passes identity headers: the route's
// set_request_headers, X-Pomerium-Jwt-Assertion and the claim headers.
// internal answers (the proxy's own pages; r may be nil) carry the JWT
// alone. The answer comes from the JWT cache when it can.
func (st *state) identityOK(ctx context.Context, r *route, internal bool, ident *identity, audience string, now time.Time) (*okAnswer, error) {
	var cr *config.Route
	if r != nil {
		cr = r.cfg
	}
	k := jwtKey{sessionID: ident.subject.SessionID, audience: audience, routeID: internalKey, issuerURI: st.cfg.JWTIssuerURIFor(cr)}
	if !internal {
		k.routeID = r.id
	}
	if ans := st.jwts.get(k, ident, now); ans != nil {
		return ans, nil
	}
	claims := st.identityClaims(ident, audience, now)
	if k.issuerURI {
		// jwt_issuer_format: uri, as Pomerium writes it.
		claims.Issuer = "https://" + audience + "/"
	}
	jwt, err := st.sign(ctx, claims)
	if err != nil {
		return nil, err
	}
	var headers []*corev3.HeaderValueOption
	if !internal {
		headers = append(headers, r.setHeaders...)
	}
	headers = append(headers, extauthz.NewHeader(headerJWTAssertion, jwt))
	var remove []string
	if !internal {
		for _, ch := range st.claimHeaders {
			v := claimString(&ident.subject, ch.claim, audience)
			if ch.claim == "iss" {
				v = claims.Issuer
			}
			if v != "" {
				headers = append(headers, extauthz.NewHeader(ch.header, v))
			} else if !r.setsHeader(ch.header) {
				// No value to write: whatever the client sent under this
				// name must not reach the upstream either (an Envoy in
				// front of authorize applies headers_to_remove; gatehouse's
				// proxy strips the name regardless).
				remove = append(remove, ch.header)
			}
		}
	}
	ans := newOKAnswer(&authv3.OkHttpResponse{Headers: headers, HeadersToRemove: remove})
	exp := time.Unix(claims.Expiry, 0)
	st.jwts.put(k, &jwtEntry{ident: ident, refreshAt: exp.Add(-jwtRefreshBefore), ans: ans}, now)
	return ans, nil
}

// namedClaims are the identity JWT's own claims; jwt_claims_headers cannot
// add a second value for them.
var namedClaims = map[string]bool{
	"iss": true, "aud": true, "sub": true, "user": true, "email": true, "name": true,
	"groups": true, "sid": true, "jti": true, "iat": true, "exp": true,
}

// identityClaims returns the identity JWT's claims for ident.
func (st *state) identityClaims(ident *identity, audience string, now time.Time) *signingkey.IdentityClaims {
	s := &ident.subject
	c := &signingkey.IdentityClaims{
		Issuer:    audience,
		Audience:  audience,
		Subject:   s.UserID,
		User:      s.UserID,
		Email:     s.Email,
		Name:      s.Name,
		Groups:    s.Groups,
		SessionID: s.SessionID,
		ID:        cryptutil.RandomToken(16),
	}
	c.SetTimes(now)
	for _, ch := range st.claimHeaders {
		if namedClaims[ch.claim] {
			continue
		}
		vals, ok := s.Claims[ch.claim]
		if !ok {
			continue
		}
		if c.Extra == nil {
			c.Extra = map[string]any{}
		}
		// as strings, as before claims were typed
		if len(vals) == 1 {
			c.Extra[ch.claim] = vals[0].Text
		} else {
			c.Extra[ch.claim] = claimTexts(vals)
		}
	}
	return c
}

// claimString returns the value of a claim for an X-Pomerium-Claim-*
// header: lists comma-joined, "" when the user has no such claim.
func claimString(s *policy.Subject, claim, audience string) string {
	switch claim {
	case "email":
		return s.Email
	case "name":
		return s.Name
	case "groups":
		return strings.Join(s.Groups, ",")
	case "sub", "user":
		return s.UserID
	case "sid":
		return s.SessionID
	case "iss", "aud":
		return audience
	}
	vals := s.Claims[claim]
	if len(vals) == 1 {
		return vals[0].Text // no allocation for the common single value
	}
	return strings.Join(claimTexts(vals), ",")
}

// withDynamicHeaders returns base with the route's set_request_headers
// that name ${pomerium.*} values added, expanded for this request: the
// identity provider's tokens of the session, the identity JWT, request
// headers. Without a session the session's values are empty. The answer
// is built per request (these values are the user's or the request's), so
// only routes that use such values pay for it.
func (st *state) withDynamicHeaders(ctx context.Context, r *route, base *okAnswer, ident *identity, req *authv3.CheckRequest, cert *policy.ClientCertificate, audience string, now time.Time) (*okAnswer, error) {
	var jwt string
	for _, d := range r.dynHeaders {
		if ident == nil || !d.tmpl.Uses(config.VarJWT) {
			continue
		}
		ans, err := st.identityOK(ctx, r, true, ident, audience, now)
		if err != nil {
			return nil, err
		}
		for _, o := range ans.plain.GetOkResponse().GetHeaders() {
			if o.GetHeader().GetKey() == headerJWTAssertion {
				jwt = o.GetHeader().GetValue()
			}
		}
		break
	}
	value := func(name string) string {
		if h, ok := strings.CutPrefix(name, config.VarRequestHeaderPrefix); ok {
			return extauthz.Header(req, strings.ToLower(h))
		}
		if name == config.VarClientCertFingerprint {
			// From the TLS handshake, as the proxy forwarded it.
			return certFingerprint(cert, req)
		}
		if ident == nil {
			return ""
		}
		switch name {
		case config.VarIDToken:
			return ident.idToken
		case config.VarAccessToken:
			return ident.accessToken
		case config.VarJWT:
			return jwt
		}
		return ""
	}
	ok := base.plain.GetOkResponse()
	headers := make([]*corev3.HeaderValueOption, 0, len(ok.GetHeaders())+len(r.dynHeaders))
	headers = append(headers, ok.GetHeaders()...)
	for _, d := range r.dynHeaders {
		headers = append(headers, extauthz.NewHeader(d.name, d.tmpl.Expand(value)))
	}
	return newOKAnswer(&authv3.OkHttpResponse{Headers: headers, HeadersToRemove: ok.GetHeadersToRemove()}), nil
}
