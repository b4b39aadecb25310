package authorize

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/extauthz"
	"github.com/gatehouse/gatehouse/pkg/pages"
	"github.com/gatehouse/gatehouse/pkg/routematch"
	"github.com/gatehouse/gatehouse/pkg/signingkey"
)

// Identity header names, lower-case as Envoy carries them.
const (
	headerJWTAssertion = "x-pomerium-jwt-assertion"
)

// state is everything Check needs from one configuration, compiled once
// when the configuration is loaded. It is immutable; a configuration change
// builds a new one (with empty caches) and swaps it in atomically.
type state struct {
	// tracer records JWT signing; nil when tracing is off. Set by the
	// Service once compiled.
	tracer     trace.Tracer
	cfg        *config.Config
	keys       *signingkey.KeySet
	handleKey  []byte // verifies session handles
	urlKey     []byte // signs sign-in URLs
	cookieName string
	authURL    *url.URL

	routes  []*route                 // config order
	byID    map[string]*route        // route id → route
	byRoute map[*config.Route]*route // table's routes → ours
	table   *routematch.Table        // shared with the proxy: both pick the same route

	claimHeaders []claimHeader // jwt_claims_headers, sorted by header
	// identityHeaders are the header names authorize writes about the
	// user: the JWT assertion and the claim headers.
	identityHeaders []string

	jwts    *jwtCache
	handles *handleCache

	brand pages.Branding // the look of the 403 and 404 pages
}

// claimHeader is one jwt_claims_headers entry.
type claimHeader struct {
	header string // lower-case header name
	claim  string
}

// route is one configured route, ready for Check.
type route struct {
	cfg          *config.Route
	id           string
	passIdentity bool
	// setHeaders are the route's static set_request_headers, sorted by name.
	setHeaders []*corev3.HeaderValueOption
	// dynHeaders are the set_request_headers that name ${pomerium.*}
	// values, expanded for each request.
	dynHeaders []dynHeader
	// okPlain is the allowed answer without identity headers, shared by
	// every such response (read-only).
	okPlain *okAnswer
	// k8s is the service account token of a Kubernetes API route, or nil.
	k8s *k8sToken
	// reusable: an allowed answer may be reused by a proxy (see reuse.go);
	// not for Kubernetes API routes, whose token rotates outside the
	// databroker's change log.
	reusable bool
}

// setsHeader reports whether the route's set_request_headers writes the
// header name (lower-case).
func (r *route) setsHeader(name string) bool {
	for _, o := range r.setHeaders {
		if o.GetHeader().GetKey() == name {
			return true
		}
	}
	for _, d := range r.dynHeaders {
		if d.name == name {
			return true
		}
	}
	return false
}

// dynHeader is one set_request_headers entry with ${pomerium.*} values.
type dynHeader struct {
	name string // lower-case
	tmpl config.HeaderTemplate
}

// compile builds the state for cfg.
func compile(cfg *config.Config) (*state, error) {
	keys, err := cfg.KeySet()
	if err != nil {
		return nil, fmt.Errorf("authorize: %w", err)
	}
	st := &state{
		cfg:        cfg,
		keys:       keys,
		handleKey:  cfg.HandleKey,
		urlKey:     cfg.URLKey,
		cookieName: cfg.CookieName,
		authURL:    cfg.AuthenticateURLParsed,
		byID:       make(map[string]*route, len(cfg.Routes)),
		byRoute:    make(map[*config.Route]*route, len(cfg.Routes)),
		table:      routematch.New(cfg.Routes),
		jwts:       newJWTCache(),
		handles:    newHandleCache(),
		brand:      pages.BrandingFor(cfg),
	}
	if st.cookieName == "" {
		st.cookieName = "_pomerium"
	}
	for _, h := range sortedKeys(cfg.JWTClaimsHeaders) {
		st.claimHeaders = append(st.claimHeaders, claimHeader{header: strings.ToLower(h), claim: cfg.JWTClaimsHeaders[h]})
	}
	st.identityHeaders = append(st.identityHeaders, headerJWTAssertion)
	for _, ch := range st.claimHeaders {
		if ch.header != headerJWTAssertion {
			st.identityHeaders = append(st.identityHeaders, ch.header)
		}
	}
	for i := range cfg.Routes {
		cr := &cfg.Routes[i]
		r := &route{cfg: cr, id: cr.ID, passIdentity: cfg.PassIdentityHeadersFor(cr), k8s: newK8sToken(cr)}
		r.reusable = r.k8s == nil
		names := make([]string, 0, len(cr.SetRequestHeaders))
		for k := range cr.SetRequestHeaders {
			names = append(names, k)
		}
		sort.Strings(names)
		templates := cr.HeaderTemplates()
		for _, k := range names {
			if t := templates[k]; !t.Static() {
				r.dynHeaders = append(r.dynHeaders, dynHeader{name: strings.ToLower(k), tmpl: t})
				continue
			}
			r.setHeaders = append(r.setHeaders, extauthz.NewHeader(strings.ToLower(k), templates[k].Literal()))
		}
		r.okPlain = newOKAnswer(&authv3.OkHttpResponse{Headers: r.setHeaders, HeadersToRemove: st.identityHeaders})
		st.routes = append(st.routes, r)
		st.byRoute[cr] = r
		if _, dup := st.byID[r.id]; !dup && r.id != "" {
			st.byID[r.id] = r
		}
	}
	return st, nil
}

// match returns the first route, in config order, whose host and path
// match, or nil.
func (st *state) match(host, path string) *route {
	if cr := st.table.Match(host, path); cr != nil {
		return st.byRoute[cr]
	}
	return nil
}
