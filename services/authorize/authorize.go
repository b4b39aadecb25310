// Package authorize is gatehouse's authorize service: it answers Envoy's
// ext_authz Check (envoy.service.auth.v3.Authorization) for every request
// the proxy (or an Envoy) receives. It finds the route, reads the session
// handle, looks the session and its user up in a local copy of the
// databroker kept current by a Sync stream, evaluates the route's compiled
// policy and answers: allowed with the signed identity JWT and claim
// headers, a redirect to sign in (or 401), or a 403/404 page.
//
// Nothing on the Check path calls the databroker, parses policy or
// allocates more than the response itself when the JWT cache is warm.
package authorize

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/databroker"
	"github.com/gatehouse/gatehouse/pkg/extauthz"
	"github.com/gatehouse/gatehouse/pkg/policy"
	"github.com/gatehouse/gatehouse/pkg/requestid"
	"github.com/gatehouse/gatehouse/pkg/tracing"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
)

// SessionWait bounds how long Check waits for this replica's copy of the
// databroker to catch up with a session handle written after the copy's
// latest record (the browser may arrive right after sign-in, before the
// session reached this replica).
const SessionWait = 3 * time.Second

// ErrNotSynced is returned by Ready until the session and user caches
// have been loaded from the databroker once.
var ErrNotSynced = errors.New("authorize: session and user caches not synced from the databroker yet")

// Options configures New.
type Options struct {
	// Source is the configuration. New builds from its current one and
	// adds the service to its Reloaders (see Prepare). Required.
	Source config.Source
	// Logger receives the service's logs and the decision log; nil uses
	// slog.Default().
	Logger *slog.Logger
	// DataBroker is the connection to the databroker service, whose
	// session and user records Run keeps a local copy of. Nil runs
	// without one (the caches stay empty: every request is anonymous).
	DataBroker grpc.ClientConnInterface
	// DecisionLogLevel is the level of the one decision line logged per
	// allowed Check; the zero value is slog.LevelInfo. Denials are logged
	// at info or above whatever this says.
	DecisionLogLevel slog.Level
	// TracerProvider adds the decision to each Check's span (the gRPC
	// server's, or the in-process call's) and records the signing of
	// identity JWTs; nil traces nothing.
	TracerProvider trace.TracerProvider
	// Metrics receives the service's metrics (Checks by decision, the
	// synced copy's record counts, the Sync stream's version and lag);
	// nil registers none.
	Metrics prometheus.Registerer
}

// Service is the authorize service. It is safe for concurrent use.
type Service struct {
	logger   *slog.Logger
	logLevel slog.Level
	store    *store
	// syncer keeps store current (nil without a databroker).
	syncer *databroker.Syncer
	state  atomic.Pointer[state]
	// sessionWait is SessionWait; tests shorten it.
	sessionWait time.Duration
	// lookupMissed, when set (tests), runs when a Check does not find its
	// session at the first lookup, before it reads the store's versions.
	lookupMissed func()
	// tracer is nil when tracing is off.
	tracer  trace.Tracer
	metrics *metrics
}

var _ authv3.AuthorizationServer = (*Service)(nil)

// New builds the service from the current configuration and adds it to
// the Source's Reloaders. It starts no goroutines: call Run.
func New(_ context.Context, o Options) (*Service, error) {
	if o.Source == nil {
		return nil, errors.New("authorize: Options.Source is required")
	}
	s := &Service{
		logger:   o.Logger,
		logLevel: o.DecisionLogLevel,
		store:    newStore(),

		sessionWait: SessionWait,
		tracer:      tracing.Tracer(o.TracerProvider),
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	s.logger = s.logger.With("service", "authorize")
	s.metrics = newMetrics(o.Metrics, s.store)
	if o.DataBroker != nil {
		client := databrokerv1.NewDataBrokerServiceClient(o.DataBroker)
		// Every type in one stream: see store.
		s.syncer = databroker.NewSyncer(client, "", syncHandler{s.store}, databroker.SyncerOptions{Logger: s.logger, Metrics: o.Metrics})
		s.store.src = s.syncer
	}
	st, err := compile(o.Source.Current())
	if err != nil {
		return nil, err
	}
	st.tracer = s.tracer
	s.state.Store(st)
	o.Source.OnChange(config.ServiceAuthorize, s)
	return s, nil
}

var _ config.Reloader = (*Service)(nil)

// Prepare compiles cfg (routes, policies, keys) without serving it; commit
// swaps it in. The JWT and handle caches start empty with it, so no
// answer built for the old configuration (other keys, claims or headers)
// is served. It implements config.Reloader.
func (s *Service) Prepare(_ context.Context, cfg *config.Config) (commit func(), err error) {
	st, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	st.tracer = s.tracer
	return func() {
		s.state.Store(st)
		s.logger.Info("authorize: configuration applied", "routes", len(st.routes))
	}, nil
}

// Register registers the Authorization service on r.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	authv3.RegisterAuthorizationServer(r, s)
}

// Run keeps the session and user caches synced from the databroker until
// ctx ends, with a pkg/databroker Syncer (SyncLatest, then Sync; start
// over on Aborted; reconnect with backoff). While the databroker is
// unreachable the caches keep what they have, so Checks go on. Without a
// databroker Run only waits for ctx.
func (s *Service) Run(ctx context.Context) error {
	if s.syncer == nil {
		s.store.markSynced(0, 0)
		<-ctx.Done()
		return nil
	}
	return s.syncer.Run(ctx)
}

// Ready reports nil once the session and user caches have been loaded
// from the databroker at least once, ErrNotSynced before.
func (s *Service) Ready() error {
	if !s.store.isSynced() {
		return ErrNotSynced
	}
	return nil
}

// checkState is the per-request memory of Check, pooled: policy.Input
// escapes to the heap, so keeping it in a pooled object saves an
// allocation per request.
type checkState struct {
	in policy.Input
}

var checkStates = sync.Pool{New: func() any { return new(checkState) }}

// decision names for the decision log.
const (
	decisionAllow = "allow"
	decisionDeny  = "deny"
)

// Check implements envoy.service.auth.v3.Authorization/Check. It never
// returns an error for a bad request: bad input gets a 4xx (or a redirect
// to sign in) in the response, as Envoy passes it to the client. An error
// is returned only when the answer cannot be built (signing failed).
func (s *Service) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	now := time.Now()
	st := s.state.Load()

	h := extauthz.HTTPRequest(req)
	requestID := h.GetId()
	if requestID == "" {
		requestID = extauthz.Header(req, "x-request-id")
		if requestID == "" {
			requestID = requestid.New()
		}
	}
	if h == nil {
		s.logDecision(ctx, requestID, "", "", "", "", nil, decisionDeny, 0, "bad-request")
		return badRequest(requestID), nil
	}
	host := h.GetHost()
	if host == "" {
		host = extauthz.Header(req, ":authority")
		if host == "" {
			host = extauthz.Header(req, "host")
		}
	}
	// The path is matched and evaluated in its normal form only, with the
	// function and options the proxy applies (pkg/pathnorm): a Check may
	// come from any Envoy or gRPC client, and /open/%73ecret must meet the
	// rules written for /open/secret. Normalize is idempotent and does not
	// allocate for the proxy's already-normal paths. The query stays out.
	rawPath, _, _ := strings.Cut(h.GetPath(), "?")
	path, _, err := st.cfg.PathNormalization.Normalize(rawPath)
	if err != nil {
		// Envoy would have answered 400 itself; refuse what it never sends.
		s.logDecision(ctx, requestID, "", h.GetMethod(), h.GetHost(), rawPath, nil, decisionDeny, 0, "bad-path")
		return badRequest(requestID), nil
	}
	audience, _ := splitHost(host)
	internal := extauthz.ContextExtension(req, extauthz.ContextInternal) == "true"

	var r *route
	if id := extauthz.ContextExtension(req, extauthz.ContextRouteID); id != "" {
		r = st.byID[id]
	}
	if r == nil {
		r = st.match(host, path)
	}
	if r == nil && !internal {
		s.logDecision(ctx, requestID, "", h.GetMethod(), host, path, nil, decisionDeny, 0, "no-route")
		return st.forbidden(req, http.StatusNotFound, host, requestID, nil, nil, policy.Decision{}), nil
	}
	routeID := ""
	if r != nil {
		routeID = r.id
	}

	ident, at, fromAuthorization := s.identity(ctx, st, req, now)

	if internal {
		if ident == nil {
			s.logDecision(ctx, requestID, routeID, h.GetMethod(), host, path, nil, decisionDeny, 0, "user-unauthenticated")
			return st.signIn(req, host, requestID, now), nil
		}
		ans, err := st.identityOK(ctx, r, true, ident, audience, now)
		if err != nil {
			return nil, s.signError(err)
		}
		s.logDecision(ctx, requestID, routeID, h.GetMethod(), host, path, ident, decisionAllow, 0, "internal")
		return ans.pick(fromAuthorization), nil
	}

	cs := checkStates.Get().(*checkState)
	cs.in = policy.Input{
		Method: h.GetMethod(),
		Path:   path,
		Host:   host,
		Now:    now,
	}
	if ident != nil {
		cs.in.Session = &ident.subject
	}
	if addr := req.GetAttributes().GetSource().GetAddress().GetSocketAddress().GetAddress(); addr != "" {
		if ip, err := netip.ParseAddr(addr); err == nil {
			cs.in.SourceIP = ip.Unmap()
		}
	}
	// The client certificate, verified here against the route's client
	// CA (cached by certificate).
	cert, certReason := clientCertificate(r, req, now)
	cs.in.ClientCert = cert
	if cs.in.Method == http.MethodOptions {
		// Only cors_preflight reads headers; build them only for the
		// requests it can match.
		cs.in.Headers = corsHeaders(req)
	}
	var d policy.Decision
	if r.cfg.Evaluator != nil {
		d = r.cfg.Evaluator.Evaluate(&cs.in)
	} else {
		d.Reasons = policy.ReasonUserUnauthorized
	}
	cs.in = policy.Input{}
	checkStates.Put(cs)

	switch {
	case d.Allow:
		ans := r.okPlain
		if ident != nil && r.passIdentity {
			var err error
			ans, err = st.identityOK(ctx, r, false, ident, audience, now)
			if err != nil {
				return nil, s.signError(err)
			}
		}
		if len(r.dynHeaders) > 0 {
			var err error
			ans, err = st.withDynamicHeaders(ctx, r, ans, ident, req, cert, audience, now)
			if err != nil {
				return nil, s.signError(err)
			}
		}
		if r.k8s != nil {
			ans = st.withKubernetesHeaders(r, ans, ident, now)
		}
		s.logDecision(ctx, requestID, routeID, h.GetMethod(), host, path, ident, decisionAllow, d.Reasons, "")
		if at.ok && r.reusable && extauthz.ContextExtension(req, extauthz.ContextReuse) == "true" &&
			req.GetAttributes().GetSource().GetCertificate() == "" {
			return extauthz.WithReuse(ans.pick(fromAuthorization), reuseOf(ident, at, now)), nil
		}
		return ans.pick(fromAuthorization), nil
	case certDenied(&d):
		// Before sign-in: no session makes up for a missing certificate.
		reason := d.DenyResult.Reasons.String()
		if certReason != "" {
			reason += ": " + certReason
		}
		s.logDecision(ctx, requestID, routeID, h.GetMethod(), host, path, ident, decisionDeny, 0, reason)
		return st.invalidClientCertificate(req, host, requestID, d.DenyResult.Reasons), nil
	case d.NeedsSignIn || (ident == nil && d.Reasons.Has(policy.ReasonUserUnauthenticated)):
		s.logDecision(ctx, requestID, routeID, h.GetMethod(), host, path, ident, decisionDeny, d.Reasons, "")
		return st.signIn(req, host, requestID, now), nil
	default:
		s.logDecision(ctx, requestID, routeID, h.GetMethod(), host, path, ident, decisionDeny, d.Reasons, "")
		return st.forbidden(req, http.StatusForbidden, host, requestID, r, ident, d), nil
	}
}

// okAnswer is an allowed answer built once and shared, read-only, by every
// Check it fits: as it is, and with the Authorization header removed for
// requests whose session handle came in it. Check allocates no response.
type okAnswer struct {
	plain, fromAuthorization *authv3.CheckResponse
}

func newOKAnswer(ok *authv3.OkHttpResponse) *okAnswer {
	remove := make([]string, 0, len(ok.HeadersToRemove)+1)
	remove = append(remove, ok.HeadersToRemove...)
	setsAuthorization := false
	for _, h := range ok.Headers {
		if strings.EqualFold(h.GetHeader().GetKey(), "authorization") {
			setsAuthorization = true // it replaces the client's, handle and all
		}
	}
	if !setsAuthorization {
		remove = append(remove, "authorization")
	}
	wrap := func(ok *authv3.OkHttpResponse) *authv3.CheckResponse {
		return &authv3.CheckResponse{
			Status:       extauthz.StatusOK,
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
		}
	}
	return &okAnswer{
		plain:             wrap(ok),
		fromAuthorization: wrap(&authv3.OkHttpResponse{Headers: ok.Headers, HeadersToRemove: remove}),
	}
}

// pick returns the response for a request whose handle came in the
// Authorization header (fromAuthorization) or not.
func (a *okAnswer) pick(fromAuthorization bool) *authv3.CheckResponse {
	if fromAuthorization {
		return a.fromAuthorization
	}
	return a.plain
}

func (s *Service) signError(err error) error {
	s.logger.Error("authorize: signing the identity JWT failed", "error", err.Error())
	return status.Error(codes.Internal, "authorize: cannot sign the identity JWT")
}

// identity returns the live session the request carries, or nil when it
// carries none, a bad or expired handle, or one whose session is missing,
// deleted or expired. When the handle was written after the latest record
// this replica has seen, it waits (up to SessionWait) for the Sync stream
// to catch up before deciding the session is missing. at is where in the
// change log the identity was read, when it was read at once (ok).
func (s *Service) identity(ctx context.Context, st *state, req *authv3.CheckRequest, now time.Time) (ident *identity, at readPoint, fromAuthorization bool) {
	token, fromAuthorization := sessionToken(req, st.cookieName)
	if token == "" {
		return nil, at, false
	}
	hd, err := st.handles.decode(st.handleKey, token, now)
	if err != nil {
		return nil, at, fromAuthorization
	}
	ident, at.serverVersion, at.recordVersion = s.store.getAt(hd.ID)
	at.ok = ident != nil
	if ident == nil {
		if s.lookupMissed != nil {
			s.lookupMissed()
		}
		// Not here (yet): look again with the store's versions, in one
		// read. Checking only the versions now would call unknown a
		// session the Sync stream applied since the lookup above.
		ident = s.store.waitFor(ctx, hd.ID, hd.DatabrokerServerVersion, hd.DatabrokerRecordVersion, s.sessionWait)
	}
	if ident == nil || ident.expired(now) {
		return nil, readPoint{}, fromAuthorization
	}
	if hd.UserID != "" && hd.UserID != ident.subject.UserID {
		// The handle names another user than its session: refuse it.
		return nil, readPoint{}, fromAuthorization
	}
	if !hd.Expiry.IsZero() && (ident.expiresAt.IsZero() || hd.Expiry.Before(ident.expiresAt)) {
		at.handleExpiry = hd.Expiry
	}
	return ident, at, fromAuthorization
}

// readPoint is where in the databroker's change log an identity was read.
type readPoint struct {
	ok                           bool
	serverVersion, recordVersion uint64
	handleExpiry                 time.Time // zero: the handle does not expire before its session
}

// corsHeaders returns the request headers cors_preflight reads.
func corsHeaders(req *authv3.CheckRequest) http.Header {
	hd := http.Header{}
	for _, k := range []string{"origin", "access-control-request-method", "access-control-request-headers"} {
		if v := extauthz.Header(req, k); v != "" {
			hd[http.CanonicalHeaderKey(k)] = []string{v}
		}
	}
	return hd
}

// logDecision writes the decision log line, when its level is enabled.
// reasons are the policy's; reason, when set, explains a decision taken
// without the policy instead.
func (s *Service) logDecision(ctx context.Context, requestID, routeID, method, host, path string, ident *identity, decision string, reasons policy.Reasons, reason string) {
	s.metrics.count(decision)
	if s.tracer != nil {
		annotateCheck(ctx, routeID, ident != nil, decision, reasons, reason)
	}
	level := s.logLevel
	if decision != decisionAllow && level < slog.LevelInfo {
		// Denials stay visible at info whatever level allows go to.
		level = slog.LevelInfo
	}
	if !s.logger.Enabled(ctx, level) {
		return
	}
	if reason == "" {
		reason = reasons.String()
	}
	var user, email string
	if ident != nil {
		user, email = ident.subject.UserID, ident.subject.Email
	}
	s.logger.LogAttrs(ctx, level, "authorize check",
		slog.String("request_id", requestID),
		slog.String("route", routeID),
		slog.String("method", method),
		slog.String("host", host),
		slog.String("path", path),
		slog.String("user", user),
		slog.String("email", email),
		slog.String("decision", decision),
		slog.String("reason", reason),
	)
}
