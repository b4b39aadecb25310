// Package authenticate is gatehouse's authenticate service: the OpenID
// Connect sign-in flow with the identity provider (authorization code with
// PKCE, sealed state bound to a CSRF cookie, nonce), the session and user
// records it writes to the databroker, sign-out, the refresher that keeps
// sessions' IdP tokens fresh, and the public signing keys
// (/.well-known/pomerium/jwks.json).
//
// Everything the service serves lives on the authenticate_service_url host:
//
//	/.pomerium/sign_in            start a sign-in (signed URL from a route host)
//	/oauth2/callback              the IdP's redirect (authenticate_callback_path), GET or POST
//	/.pomerium/sign_out           sign out (signed URL, or POST with a CSRF token)
//	/.pomerium/                   the signed-in user (HTML, or JSON for API clients)
//	/.well-known/pomerium         discovery document
//	/.well-known/pomerium/jwks.json  the identity JWT's public keys
//
// Every bad input gets a clear 4xx page (HTML for browsers, JSON for API
// clients), never a 500.
package authenticate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/cryptutil"
	"github.com/gatehouse/gatehouse/pkg/signingkey"
	"github.com/gatehouse/gatehouse/pkg/tracing"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
)

// CSRFCookieName is the short-lived cookie that binds an OAuth state to the
// browser that started the sign-in.
const CSRFCookieName = "_pomerium_csrf"

// MaxStateAge is how long a sign-in may take between the redirect to the IdP
// and the callback.
const MaxStateAge = 10 * time.Minute

// Options configures New.
type Options struct {
	// Source is the running configuration. New builds from its current one
	// and adds the service to its Reloaders (see Prepare). Required.
	Source config.Source
	// Logger receives the service's logs (default: discard).
	Logger *slog.Logger
	// DataBroker is a connection to the databroker service.
	DataBroker grpc.ClientConnInterface
	// TracerProvider traces every request to the service, the identity
	// provider's token exchange and the calls it makes to the IdP; nil
	// traces nothing.
	TracerProvider trace.TracerProvider
	// Metrics receives the service's metrics (sign-ins, refreshes,
	// sign-outs); nil registers none.
	Metrics prometheus.Registerer
}

// Service is the authenticate service. It is safe for concurrent use.
type Service struct {
	log        *slog.Logger
	databroker databrokerv1.DataBrokerServiceClient
	state      atomic.Pointer[state]
	states     *replayCache
	now        func() time.Time
	handler    http.Handler
	refresh    *refresher
	// revocations are the sign-outs not written to the databroker yet.
	revocations *revocationQueue
	metrics     *metrics
	// tracer and tracerProvider are nil when tracing is off.
	tracer         trace.Tracer
	tracerProvider trace.TracerProvider
}

// state is everything derived from one configuration. It is replaced, never
// modified, when the configuration changes.
type state struct {
	cfg         *config.Config
	cipher      *cryptutil.Cipher
	keys        *signingkey.KeySet
	idp         *identityProvider
	routes      hostMatcher
	authURL     *url.URL // authenticate_service_url
	callbackURL *url.URL // the redirect_uri registered with the IdP
	jwks        http.Handler
	wellKnown   http.Handler
	err         error // why this configuration cannot serve, nil when it can
}

// New builds the authenticate service from the current configuration and
// adds it to the Source's Reloaders. It starts no goroutine: Run does the
// background work.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.Source == nil {
		return nil, errors.New("authenticate: Options.Source is required")
	}
	if o.DataBroker == nil {
		return nil, errors.New("authenticate: Options.DataBroker is required")
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		log:        logger.With("service", "authenticate"),
		databroker: databrokerv1.NewDataBrokerServiceClient(o.DataBroker),
		states:     newReplayCache(),
		now:        time.Now,

		metrics:        newMetrics(o.Metrics),
		tracer:         tracing.Tracer(o.TracerProvider),
		tracerProvider: o.TracerProvider,
	}
	st := newState(o.Source.Current(), nil)
	if st.err != nil {
		return nil, fmt.Errorf("authenticate: %w", st.err)
	}
	s.traceIdP(st, nil)
	s.state.Store(st)
	// signout_queue_dir is read once: a change takes a restart.
	q, err := newRevocationQueue(st.cfg.SignOutQueueDir, s.log)
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	s.revocations = q
	s.refresh = newRefresher(s)
	s.handler = tracing.Handler(s.routes(), o.TracerProvider, "authenticate")
	o.Source.OnChange(config.ServiceAuthenticate, s)
	return s, nil
}

var _ config.Reloader = (*Service)(nil)

// Prepare derives the service's state from cfg (keys, identity provider,
// route hosts) without serving it; commit swaps it in. It implements
// config.Reloader.
func (s *Service) Prepare(_ context.Context, cfg *config.Config) (commit func(), err error) {
	prev := s.state.Load()
	next := newState(cfg, prev)
	if next.err != nil {
		return nil, fmt.Errorf("authenticate: %w", next.err)
	}
	s.traceIdP(next, prev)
	return func() { s.state.Store(next) }, nil
}

// newState derives the service's state from cfg, reusing prev's identity
// provider (and so its discovery) when the IdP settings did not change.
func newState(cfg *config.Config, prev *state) *state {
	st := &state{cfg: cfg}
	if len(cfg.SharedKey) < cryptutil.SecretSize {
		st.err = errors.New("shared_secret is required by the authenticate service (it signs session handles and hand-off URLs)")
		return st
	}
	if len(cfg.CookieKey) < cryptutil.SecretSize {
		st.err = errors.New("cookie_secret is required by the authenticate service (it seals the OAuth state)")
		return st
	}
	if cfg.AuthenticateURLParsed == nil {
		st.err = errors.New("authenticate_service_url is required")
		return st
	}
	var err error
	if st.cipher, err = cryptutil.NewCipher(cfg.CookieSealKey); err != nil {
		st.err = fmt.Errorf("cookie_secret: %w", err)
		return st
	}
	if st.keys, err = cfg.KeySet(); err != nil {
		st.err = fmt.Errorf("signing keys: %w", err)
		return st
	}
	st.authURL = cfg.AuthenticateURLParsed
	cb := *st.authURL
	cb.Path, cb.RawPath, cb.RawQuery, cb.Fragment = cfg.AuthenticateCallbackPath, "", "", ""
	st.callbackURL = &cb
	st.routes = routeHosts(cfg)
	settings := idpSettingsFrom(cfg, st.callbackURL)
	if prev != nil && prev.idp != nil && prev.idp.settings.equal(settings) {
		st.idp = prev.idp
	} else if st.idp, err = newIdentityProvider(settings); err != nil {
		st.err = err
		return st
	}
	st.jwks = st.keys.JWKSHandler()
	authRoot := *st.authURL
	authRoot.Path, authRoot.RawPath, authRoot.RawQuery = "", "", ""
	st.wellKnown = signingkey.WellKnownHandler(&authRoot, &authRoot)
	return st
}

// traceIdP traces the calls to the identity provider of st when tracing
// is on and st's provider is a new one (not yet used, not prev's).
func (s *Service) traceIdP(st, prev *state) {
	if s.tracerProvider == nil || st.idp == nil || (prev != nil && prev.idp == st.idp) {
		return
	}
	st.idp.client.Transport = tracing.Transport(st.idp.client.Transport, s.tracerProvider, "idp")
}

// Handler returns the HTTP handler for everything served on the
// authenticate_service_url host.
func (s *Service) Handler() http.Handler { return s.handler }

// Ready reports whether the service can serve: nil once its configuration
// is usable. It does not wait for the identity provider, whose discovery is
// lazy and retried: a sign-in while the IdP is down gets a clear 503 page.
func (s *Service) Ready() error {
	if st := s.state.Load(); st == nil || st.err != nil {
		return errors.New("authenticate: not configured")
	}
	return nil
}

// Run runs the service's background work until ctx ends: it warms up the
// identity provider's discovery, retries the pending sign-outs (see
// revocationQueue) and runs the session refresher (one per deployment,
// elected with the databroker lease "authenticate-refresher"). It returns
// nil when ctx ends.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.warmUp(ctx) }()
	go func() { defer wg.Done(); s.revocations.run(ctx, s.completeSignOut) }()
	err := s.refresh.run(ctx)
	wg.Wait()
	return err
}

// PendingSignOuts reports nil when every sign-out has been written to the
// databroker, else how many are still pending (for health detail: a
// pending sign-out does not make the service unready).
func (s *Service) PendingSignOuts() error {
	if n := s.revocations.len(); n > 0 {
		return fmt.Errorf("%d sign-out(s) not written to the databroker yet; retrying", n)
	}
	return nil
}

// warmUp discovers the identity provider in the background, retrying with
// backoff, so the first sign-in does not wait for it.
func (s *Service) warmUp(ctx context.Context) {
	delay := time.Second
	for {
		st := s.state.Load()
		_, err := st.idp.discover(ctx)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("identity provider discovery failed; retrying", "issuer", st.idp.settings.issuer, "error", err, "retry_in", delay.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 30*time.Second)
	}
}
