// Package proxy is gatehouse's proxy service: the reverse proxy that users
// and upstreams see. For each request it removes every X-Pomerium-* header
// the client sent, matches the route, asks authorize (one Envoy ext_authz
// Check) whether the request may pass, applies the identity headers
// authorize returned and forwards the request with net/http/httputil's
// ReverseProxy. It also serves the /.pomerium/ pages, /.well-known/pomerium
// and the JWKS on every route host.
//
// The service reads its configuration from a config.Source and recompiles
// it on every reload (build, then swap when every service of the process
// built it): new requests use the new routes, requests in flight finish
// on the old ones, and pooled upstream connections survive.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/cryptutil"
	"github.com/gatehouse/gatehouse/pkg/databroker"
	"github.com/gatehouse/gatehouse/pkg/handoff"
	"github.com/gatehouse/gatehouse/pkg/logging"
	"github.com/gatehouse/gatehouse/pkg/pages"
	"github.com/gatehouse/gatehouse/pkg/requestid"
	"github.com/gatehouse/gatehouse/pkg/routematch"
	"github.com/gatehouse/gatehouse/pkg/signingkey"
	"github.com/gatehouse/gatehouse/pkg/tracing"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
)

// DefaultCheckTimeout bounds one Check call to authorize when
// Options.CheckTimeout is zero (and the authorizer is not in process).
// Authorize answers from memory, so a Check
// that takes longer means it is unreachable or overloaded: the request
// fails closed with a 503.
const DefaultCheckTimeout = 5 * time.Second

// Options configure the proxy service.
type Options struct {
	// Source supplies the configuration. New builds from its current one
	// and adds the service to its Reloaders (see Prepare). Required.
	Source config.Source
	// Logger receives the access log and errors; nil means slog.Default().
	Logger *slog.Logger
	// Authorizer answers the Check for every request: a gRPC client of
	// the authorize service, or an in-process adapter. Required.
	Authorizer authv3.AuthorizationClient
	// InProcessAuthorizer says that Authorizer is the authorize service of
	// this process (extauthz.LocalClient), which bounds its own work: the
	// proxy then sets no deadline of its own on a Check (a deadline costs
	// a timer and a context per request) and CheckTimeout must be zero.
	InProcessAuthorizer bool
	// CheckTimeout bounds each Check to a remote Authorizer; zero means
	// DefaultCheckTimeout. It must not be negative.
	CheckTimeout time.Duration
	// TracerProvider traces every request (a server span continuing the
	// client's traceparent, the route match, the Check, the upstream
	// request, which gets the trace as traceparent); nil traces nothing
	// and adds nothing to the request path.
	TracerProvider trace.TracerProvider
	// Metrics receives the proxy's metrics (requests by route, status and
	// decision; Check and upstream latency; upstream errors); nil
	// registers none (they are still counted, unexported).
	Metrics prometheus.Registerer
	// DataBroker, with a remote Authorizer, lets the proxy follow the
	// databroker's changes of sessions and users and so reuse an allowed
	// answer of authorize's for the identical request until one of them
	// changes (see reuseSet). Nil: every request asks authorize.
	DataBroker databrokerv1.DataBrokerServiceClient
	// AuthorizerReady, with DataBroker, reports whether a replica of the
	// remote Authorizer is reachable. While none is, no answer is reused:
	// the proxy fails closed (503) as it would asking, rather than go on
	// with what authorize said before it went away.
	AuthorizerReady func() bool
}

// Service is the proxy service. Its methods are safe for concurrent use.
type Service struct {
	logger *slog.Logger
	authz  authv3.AuthorizationClient
	// checkTimeout bounds a Check; zero sets no deadline (in-process
	// authorizer).
	checkTimeout time.Duration
	now          func() time.Time

	transports *transportCache
	state      atomic.Pointer[state]

	// usedBindings holds the sign-in bindings whose callback was opened.
	usedBindings *handoff.UsedSet
	// checkErrors keeps a failing authorize from writing an error line
	// per request.
	checkErrors *logging.Limiter

	metrics *metrics

	// reuse keeps authorize's reusable answers, kept current by
	// reuseSync; both nil when answers are not reused.
	reuse      *reuseSet
	reuseSync  *databroker.Syncer
	authzReady func() bool // nil: always

	// tracer and tracerProvider are nil when tracing is off.
	tracer         trace.Tracer
	tracerProvider trace.TracerProvider
}

// state is everything compiled from one configuration. It is never
// modified once stored; a reload stores a new one.
type state struct {
	cfg       *config.Config
	table     *routematch.Table
	routes    map[*config.Route]*route
	cipher    *cryptutil.Cipher
	jwks      http.Handler
	keys      *signingkey.KeySet // verifies X-Pomerium-Jwt-Assertion-For
	wellKnown http.Handler
	hops      int
	// underscores is headers_with_underscores_action.
	underscores config.UnderscoreAction
	respHTTP    []headerKV // response headers of the proxy's own pages
	respHTTPS   []headerKV
	brand       pages.Branding // the look of the proxy's own pages
}

// New builds the proxy service from the current configuration and adds it
// to the Source's Reloaders. It starts no goroutines.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.Source == nil {
		return nil, errors.New("proxy: Options.Source is required")
	}
	if o.Authorizer == nil {
		return nil, errors.New("proxy: Options.Authorizer is required")
	}
	switch {
	case o.CheckTimeout < 0:
		return nil, errors.New("proxy: Options.CheckTimeout is negative")
	case o.InProcessAuthorizer && o.CheckTimeout != 0:
		return nil, errors.New("proxy: Options.CheckTimeout is set for an in-process authorizer, which bounds its own work")
	}
	s := &Service{
		logger:       o.Logger,
		authz:        o.Authorizer,
		checkTimeout: o.CheckTimeout,
		now:          time.Now,
		transports:   newTransportCache(),
		usedBindings: handoff.NewUsedSet(maxUsedBindings),
		checkErrors:  logging.NewLimiter(checkErrorLogInterval),

		metrics:        newMetrics(o.Metrics),
		tracer:         tracing.Tracer(o.TracerProvider),
		tracerProvider: o.TracerProvider,
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.checkTimeout == 0 && !o.InProcessAuthorizer {
		s.checkTimeout = DefaultCheckTimeout
	}
	if o.DataBroker != nil && !o.InProcessAuthorizer {
		s.reuse = newReuseSet()
		s.reuseSync = databroker.NewSyncer(o.DataBroker, "", s.reuse, databroker.SyncerOptions{
			Logger: s.logger, ChangesOnly: true, Disconnected: s.reuse.disconnected,
		})
		s.reuse.versions = s.reuseSync.Versions
		s.authzReady = o.AuthorizerReady
	}
	commit, err := s.build(o.Source.Current())
	if err != nil {
		return nil, err
	}
	commit()
	o.Source.OnChange(config.ServiceProxy, s)
	return s, nil
}

var _ config.Reloader = (*Service)(nil)

// Prepare compiles cfg (routes, upstream transports, keys) without
// serving it; commit makes it the running state and lets go of the
// upstream transports no route uses any more. It implements
// config.Reloader.
func (s *Service) Prepare(_ context.Context, cfg *config.Config) (commit func(), err error) {
	swap, err := s.build(cfg)
	if err != nil {
		return nil, err
	}
	return func() {
		swap()
		s.logger.Info("proxy: routes reloaded", "routes", len(cfg.Routes))
	}, nil
}

// build compiles cfg into a state and returns the commit that makes it the
// running one.
func (s *Service) build(cfg *config.Config) (commit func(), err error) {
	if cfg == nil {
		return nil, errors.New("proxy: no configuration")
	}
	st := &state{
		cfg:    cfg,
		table:  routematch.New(cfg.Routes),
		routes: make(map[*config.Route]*route, len(cfg.Routes)),
		hops:   cfg.XFFNumTrustedHops,

		underscores: cfg.UnderscoreHeaders,
	}
	keep := map[transportKey]bool{}
	claimHeaders := claimHeaderNames(cfg)
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		if r.FromURL == nil {
			continue
		}
		if r.Redirect != nil || r.Response != nil {
			st.routes[r] = s.newDirectRoute(cfg, r, claimHeaders)
			continue
		}
		if len(r.ToURLs) == 0 {
			continue
		}
		rt, key, err := s.newRoute(cfg, r, claimHeaders)
		if err != nil {
			return nil, fmt.Errorf("proxy: route %s: %w", r.ID, err)
		}
		st.routes[r] = rt
		keep[key] = true
	}
	if len(cfg.CookieSealKey) > 0 {
		c, err := cryptutil.NewCipher(cfg.CookieSealKey)
		if err != nil {
			return nil, fmt.Errorf("proxy: cookie_secret: %w", err)
		}
		st.cipher = c
	}
	if len(cfg.SharedKey) > 0 || cfg.SigningKey != "" {
		ks, err := cfg.KeySet()
		if err != nil {
			return nil, fmt.Errorf("proxy: signing key: %w", err)
		}
		st.jwks = ks.JWKSHandler()
		st.keys = ks
	}
	if cfg.AuthenticateURLParsed != nil {
		st.wellKnown = signingkey.WellKnownHandler(cfg.AuthenticateURLParsed, nil)
	}
	st.respHTTP, st.respHTTPS = responseHeaders(cfg, &config.Route{})
	st.brand = pages.BrandingFor(cfg)
	return func() {
		s.state.Store(st)
		if s.reuse != nil {
			// Answers were given under the old routes and policies.
			s.reuse.flush()
		}
		s.transports.retain(keep)
	}, nil
}

// Handler returns the HTTP handler serving every route host.
func (s *Service) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Run follows the databroker's changes for answer reuse, when the proxy
// reuses answers, until ctx ends, then closes idle upstream connections.
// Reloads arrive through Prepare.
func (s *Service) Run(ctx context.Context) error {
	if s.reuseSync != nil {
		_ = s.reuseSync.Run(ctx) // returns when ctx ends
	}
	<-ctx.Done()
	s.transports.closeIdle()
	return nil
}

// Ready reports nil once routes are compiled.
func (s *Service) Ready() error {
	if s.state.Load() == nil {
		return errors.New("proxy: not configured")
	}
	return nil
}

// recorder notes the status and size of a response for the access log.
// It unwraps for http.ResponseController, so flushing and hijacking
// (ReverseProxy's streaming and upgrades) reach the real writer.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	brand  *pages.Branding // the running configuration's, for error pages
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Flush implements http.Flusher for callers that assert it directly.
func (w *recorder) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// Unwrap returns the wrapped writer (for http.ResponseController).
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var recorderPool = sync.Pool{New: func() any { return new(recorder) }}

func (s *Service) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if s.tracer != nil {
		s.serveTraced(w, r)
		return
	}
	s.serveLogged(w, r)
}

// serveLogged serves a request and writes its access log line. It returns
// what the log line says, for the request's span.
func (s *Service) serveLogged(w http.ResponseWriter, r *http.Request) (routeID string, d decision, status int) {
	start := time.Now()
	// 1. Header safety before anything else.
	assertion := incomingAssertion(r.Header)
	credential := stripPomeriumHeaders(r.Header)
	reqID := requestID(r.Header)

	rec := recorderPool.Get().(*recorder)
	rec.ResponseWriter, rec.status, rec.bytes = w, 0, 0
	rec.brand = &s.state.Load().brand
	routeID, d = s.serve(rec, r, credential, assertion, reqID)
	status = rec.status
	if status == 0 && d == decisionAllow && isUpgrade(r) {
		status = http.StatusSwitchingProtocols
	}
	elapsed := time.Since(start)
	s.metrics.route(routeID).observe(status, d, elapsed)

	// Requests that went through are logged at debug: a JSON line costs
	// microseconds, more than the rest of gatehouse's work on a request.
	// Denials and failures are logged at info.
	level := slog.LevelDebug
	if d != decisionAllow || rec.status >= http.StatusInternalServerError {
		level = slog.LevelInfo
	}
	if s.logger.Enabled(r.Context(), level) {
		s.logger.LogAttrs(r.Context(), level, "http request",
			slog.String("request_id", reqID),
			slog.String("route", routeID),
			slog.String("decision", string(d)),
			slog.String("method", r.Method),
			slog.String("host", r.Host),
			slog.String("path", requestPath(r)),
			slog.Int("status", status),
			slog.Int64("bytes", rec.bytes),
			slog.Duration("duration", elapsed),
		)
	}
	rec.ResponseWriter, rec.brand = nil, nil
	recorderPool.Put(rec)
	return routeID, d, status
}

// serve handles one request and returns the route id and decision for the
// access log.
func (s *Service) serve(w http.ResponseWriter, r *http.Request, credential, assertion, reqID string) (routeID string, d decision) {
	st := s.state.Load()
	// 1a. headers_with_underscores_action, as Envoy's codec applies it.
	if st.underscores != config.UnderscoresAllow && !underscoreHeaders(w, r, st.underscores, reqID) {
		return "", decisionInvalid
	}
	// 1b. One normal path for everything below (see normalizeRequestPath).
	p, refused := normalizeRequestPath(w, r, st.cfg.PathNormalization, reqID)
	if p == "" {
		return "", refused
	}

	// 2. The proxy's own endpoints.
	switch {
	case p == "/ping" || p == "/healthz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte("OK\n"))
		return "", decisionInternal
	case p == "/robots.txt" && st.servesRobots(r.Host):
		// Pomerium answers a route host's robots.txt itself, unless a
		// public route serves it: no crawler indexes what sits behind
		// sign-in.
		st.setResponseHeaders(w, r)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("User-agent: *\nDisallow: /\n"))
		return "", decisionInternal
	case p == signingkey.WellKnownPath || p == signingkey.JWKSPath:
		if st.table.MatchHost(r.Host) == nil {
			writeError(w, r, http.StatusNotFound, msgNotFound, reqID)
			return "", decisionNoRoute
		}
		h := st.wellKnown
		if p == signingkey.JWKSPath {
			h = st.jwks
		}
		if h == nil {
			writeError(w, r, http.StatusNotFound, msgNotFound, reqID)
			return "", decisionNoRoute
		}
		h.ServeHTTP(w, r)
		return "", decisionInternal
	case p == "/.pomerium" || strings.HasPrefix(p, "/.pomerium/"):
		return s.servePomerium(w, r, st, credential, reqID)
	}

	// No hand-off value or session handle in a URL (pomerium_jwt,
	// pomerium_session_encrypted…) goes past the proxy: authorize and the
	// upstream see the query without them.
	r.URL.RawQuery, _ = handoff.StripReservedQuery(r.URL.RawQuery)

	// 3. Route.
	var cr *config.Route
	if s.tracer != nil {
		cr = s.tracedMatch(r, st, p)
	} else {
		cr = st.table.Match(r.Host, p)
	}
	var rt *route
	if cr != nil {
		rt = st.routes[cr]
	}
	if rt == nil {
		st.setResponseHeaders(w, r)
		writeError(w, r, http.StatusNotFound, msgNotFound, reqID)
		return "", decisionNoRoute
	}
	if !rt.admitUpgrade(r) {
		rt.setResponseHeaders(w, r, st.hops)
		writeError(w, r, http.StatusForbidden, msgUpgradeRefused, reqID)
		return rt.cfg.ID, decisionUpgradeRefused
	}

	// 4. Authorization: one Check, fail closed.
	ok, d := s.checkRequest(w, r, st, rt.cfg, rt, &checkInput{r: r, requestID: reqID, credential: credential, routeID: rt.cfg.ID, extraHeaders: rt.templateHeaders})
	if d != decisionAllow {
		return rt.cfg.ID, d
	}
	if hs := ok.GetResponseHeadersToAdd(); len(hs) > 0 {
		for _, o := range hs {
			if key := canonicalHeaderName(o.GetHeader().GetKey()); key != "" {
				applyHeaderOption(w.Header(), o, key)
			}
		}
	}

	// 5. A redirect or a fixed response, once the policy allowed it.
	if rt.proxy == nil {
		rt.serveDirect(w, r)
		return rt.cfg.ID, decisionAllow
	}

	// 6. Forward. The upstream request's headers (authorize's, the
	// route's, the strip of the client's) are written in rt.rewrite,
	// after ReverseProxy removed the hop-by-hop headers.
	if ok != nil {
		r = withOK(r, ok)
	}
	if assertion != "" && rt.passIdentity && st.keys != nil && st.keys.Verify(assertion, s.now()) == nil {
		// Pomerium's X-Pomerium-Jwt-Assertion-For, for a service that
		// calls another on its user's behalf; only an identity JWT this
		// deployment signed, unexpired, is passed on.
		r = withAssertionFor(r, assertion)
	}
	rt.proxy.ServeHTTP(w, r)
	return rt.cfg.ID, decisionAllow
}

// servesRobots reports whether the proxy answers /robots.txt on host
// itself: the host has a route, and no route open to the public serves
// /robots.txt there.
func (st *state) servesRobots(host string) bool {
	if st.table.MatchHost(host) == nil {
		return false
	}
	cr := st.table.Match(host, "/robots.txt")
	return cr == nil || !cr.AllowPublicUnauthenticatedAccess
}

// setResponseHeaders sets the route's response headers on a response the
// proxy writes itself (denials, error pages).
func (rt *route) setResponseHeaders(w http.ResponseWriter, r *http.Request, hops int) {
	hs := rt.respHTTP
	if requestScheme(r, hops) == "https" {
		hs = rt.respHTTPS
	}
	for _, kv := range hs {
		setHeader(w.Header(), kv.key, kv.value)
	}
}

func (st *state) setResponseHeaders(w http.ResponseWriter, r *http.Request) {
	hs := st.respHTTP
	if requestScheme(r, st.hops) == "https" {
		hs = st.respHTTPS
	}
	for _, kv := range hs {
		setHeader(w.Header(), kv.key, kv.value)
	}
}

// requestID returns the request's X-Request-Id when the client sent a
// sane one, else a new one (requestid's format, shared by every service),
// and makes sure the header carries it (so the upstream gets it too).
func requestID(h http.Header) string {
	if vs := h[headerRequestID]; len(vs) == 1 && requestid.Valid(vs[0]) {
		return vs[0]
	}
	id := requestid.New()
	h[headerRequestID] = []string{id}
	return id
}
