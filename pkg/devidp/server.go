// Package devidp is a small, standards-following OpenID Connect provider for
// local development, demos, docker-compose and tests. It is built on
// github.com/zitadel/oidc/v3/pkg/op and keeps everything in memory.
//
// It serves one client (configured by Config) and a login form on which a
// person — or a test — signs in as anyone: email, name and groups are typed
// in, with no password. It is for development only.
//
// Endpoints, relative to the issuer URL:
//
//	/.well-known/openid-configuration   discovery
//	/keys                               JWKS (one RS256 key, generated at start)
//	/authorize                          authorization code flow, PKCE S256 or plain
//	/login                              the login form (GET) and its submission (POST)
//	/oauth/token                        authorization_code and refresh_token grants
//	/userinfo                           userinfo
//	/revoke                             token revocation (RFC 7009)
//	/oauth/introspect                   token introspection (RFC 7662)
//	/end_session                        RP-initiated logout
//	/signed-out                         the page shown after logout without a redirect
//	/dev/reject-refreshes               POST reject=true|false: make every refresh fail
//	/healthz, /ready                    probes
//
// The "sub" of a user is Subject(email). Refresh tokens are issued on every
// sign-in and are not rotated.
package devidp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// shutdownTimeout bounds the graceful shutdown of Run.
const shutdownTimeout = 5 * time.Second

// Server is a development OpenID Connect provider. Its methods are safe for
// concurrent use.
type Server struct {
	cfg      Config
	prefix   string // the issuer's path, "" or "/something"
	storage  *storage
	provider *op.Provider
	handler  http.Handler
	log      *slog.Logger
}

// New validates cfg, fills its defaults, generates the signing key and builds
// the provider. It starts no goroutine and opens no listener.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	cfg.RedirectURIs = slices.Clone(cfg.RedirectURIs)
	iss, err := url.Parse(cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("devidp: issuer: %w", err)
	}
	s := &Server{cfg: cfg, prefix: strings.TrimSuffix(iss.Path, "/"), log: cfg.Logger}

	c := newClient(&s.cfg, cfg.Issuer+pathLogin)
	s.storage, err = newStorage(c, &s.cfg)
	if err != nil {
		return nil, err
	}

	var cryptoKey [32]byte
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		return nil, fmt.Errorf("devidp: generate token encryption key: %w", err)
	}
	opCfg := &op.Config{
		CryptoKey:                cryptoKey,
		CryptoKeyId:              "devidp",
		DefaultLogoutRedirectURI: cfg.Issuer + pathSignedOut,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedClaims:          append(slices.Clone(op.DefaultSupportedClaims), "groups"),
		SupportedScopes:          append(slices.Clone(op.DefaultSupportedScopes), "groups"),
	}
	var opts []op.Option
	if iss.Scheme == "http" {
		opts = append(opts, op.WithAllowInsecure()) // dev only: http issuers
	}
	s.provider, err = op.NewProvider(opCfg, s.storage, op.StaticIssuer(cfg.Issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("devidp: %w", err)
	}
	s.handler = s.routes()
	return s, nil
}

// Issuer returns the issuer URL, without a trailing slash.
func (s *Server) Issuer() string { return s.cfg.Issuer }

// RejectRefreshes makes every refresh_token grant fail with invalid_grant
// while reject is true, for tests of session expiry. The same switch is
// served at POST {issuer}/dev/reject-refreshes with form value reject=true
// or reject=false.
func (s *Server) RejectRefreshes(reject bool) { s.storage.rejectRefresh.Store(reject) }

// Handler returns the provider's HTTP handler, rooted at "/" (the issuer's
// path, if any, is part of every route).
func (s *Server) Handler() http.Handler { return s.handler }

const (
	pathLogin          = "/login"
	pathSignedOut      = "/signed-out"
	pathRejectRefresh  = "/dev/reject-refreshes"
	pathEndSession     = "/end_session"
	loginCookieName    = "devidp_last_login"
	loginCookieMaxAge  = 30 * 24 * 60 * 60
	requestBodyMaxSize = 1 << 20
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	issuerCtx := op.NewIssuerInterceptor(s.provider.IssuerFromRequest)
	mux.Handle("GET "+s.prefix+oidc.DiscoveryEndpoint, issuerCtx.HandlerFunc(s.handleDiscovery))
	mux.Handle(s.prefix+pathLogin, issuerCtx.HandlerFunc(s.handleLogin))
	mux.HandleFunc(s.prefix+pathSignedOut, s.handleSignedOut)
	mux.HandleFunc("POST "+s.prefix+pathRejectRefresh, s.handleRejectRefresh)
	mux.HandleFunc("GET "+s.prefix+"/{$}", s.handleIndex)
	var provider http.Handler = s.provider
	if s.prefix != "" {
		provider = http.StripPrefix(s.prefix, provider)
	}
	mux.Handle(s.prefix+"/", s.permissiveEndSession(provider))
	return s.logRequests(mux)
}

// permissiveEndSession lets an end_session request name a
// post_logout_redirect_uri without client_id or id_token_hint: with one
// client there is no doubt which client it is, and a dev IdP should not stand
// in the way of a sign-out. Every end_session also clears the login form's
// remembered values.
func (s *Server) permissiveEndSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == s.prefix+pathEndSession {
			// A sign-out forgets the values the login form remembered:
			// the next person at this browser starts from an empty form.
			http.SetCookie(w, &http.Cookie{Name: loginCookieName, Value: "", Path: s.prefix + pathLogin, MaxAge: -1,
				HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
			r.Body = http.MaxBytesReader(w, r.Body, requestBodyMaxSize)
			if err := r.ParseForm(); err == nil &&
				r.Form.Get("post_logout_redirect_uri") != "" &&
				r.Form.Get("client_id") == "" && r.Form.Get("id_token_hint") == "" {
				r.Form.Set("client_id", s.cfg.ClientID)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// handleDiscovery serves op's discovery document, trimmed to what this
// provider really does: op advertises every flow it could support (implicit,
// device code, JWT bearer), this provider has one client doing the
// authorization code flow.
func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	d := op.CreateDiscoveryConfig(r.Context(), s.provider, s.storage)
	d.DeviceAuthorizationEndpoint = ""
	d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	d.ResponseModesSupported = []string{string(oidc.ResponseModeQuery), string(oidc.ResponseModeFormPost)}
	d.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
	d.ScopesSupported = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess, "groups"}
	d.ClaimsSupported = []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp",
		"at_hash", "c_hash", "email", "email_verified", "name", "groups"}
	methods := []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost}
	if s.storage.client.publicClient {
		methods = []oidc.AuthMethod{oidc.AuthMethodNone}
	}
	d.TokenEndpointAuthMethodsSupported = methods
	d.RevocationEndpointAuthMethodsSupported = methods
	d.IntrospectionEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic}
	d.TokenEndpointAuthSigningAlgValuesSupported = nil
	d.RevocationEndpointAuthSigningAlgValuesSupported = nil
	d.IntrospectionEndpointAuthSigningAlgValuesSupported = nil
	w.Header().Set("Access-Control-Allow-Origin", "*")
	op.Discover(w, d)
}

func (s *Server) handleRejectRefresh(w http.ResponseWriter, r *http.Request) {
	reject, err := strconv.ParseBool(r.FormValue("reject"))
	if err != nil {
		http.Error(w, "reject must be true or false", http.StatusBadRequest)
		return
	}
	s.RejectRefreshes(reject)
	s.log.Info("devidp: refresh rejection switched", "reject", reject)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"reject_refreshes":%t}`+"\n", reject)
}

// statusRecorder remembers the status code written, for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests logs method, path and status of every request; never the
// query, which carries codes and tokens.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "devidp: http request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Duration("duration", time.Since(start)))
	})
}

// Run serves the provider on cfg.Address (HTTPS when cfg.CertFile and
// cfg.KeyFile are set) until ctx ends, then shuts down gracefully. It
// returns nil after a shutdown caused by ctx, else the serving error.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Address)
	if err != nil {
		return fmt.Errorf("devidp: listen: %w", err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.log.Warn("devidp: development OpenID provider listening; FOR DEVELOPMENT ONLY, anyone can sign in as anyone",
		"address", ln.Addr().String(), "issuer", s.cfg.Issuer, "client_id", s.cfg.ClientID)
	errc := make(chan error, 1)
	go func() {
		if s.cfg.CertFile != "" {
			errc <- srv.ServeTLS(ln, s.cfg.CertFile, s.cfg.KeyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("devidp: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) && serveErr != nil {
		return fmt.Errorf("devidp: serve: %w", serveErr)
	}
	if err != nil {
		return fmt.Errorf("devidp: shutdown: %w", err)
	}
	s.log.Info("devidp: stopped")
	return nil
}
