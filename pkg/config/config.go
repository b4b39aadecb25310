package config

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"github.com/gatehouse/gatehouse/pkg/cryptutil"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/pkg/logging"
	"github.com/gatehouse/gatehouse/pkg/pathnorm"
	"github.com/gatehouse/gatehouse/pkg/signingkey"
)

// Service names accepted by the services option.
const (
	ServiceAuthenticate = "authenticate"
	ServiceAuthorize    = "authorize"
	ServiceProxy        = "proxy"
	ServiceDataBroker   = "databroker"
)

// AllServices lists the services in start order.
var AllServices = []string{ServiceDataBroker, ServiceAuthorize, ServiceAuthenticate, ServiceProxy}

// Config is a loaded, validated configuration: the options plus what was
// derived from them. A Config is never modified after Load; hot reload
// produces a new one.
type Config struct {
	Options
	// Path is the file the configuration came from ("" for environment only).
	Path string

	// ServiceSet holds the services this process runs.
	ServiceSet map[string]bool
	// SharedKey is the decoded shared_secret (32 bytes). It keys only the
	// gRPC service tokens (Pomerium's form) and the derived identity-JWT
	// key; every other credential has its own key below.
	SharedKey []byte
	// HandleKey signs session handles (HKDF of shared_secret).
	HandleKey []byte
	// URLKey signs the hand-off URLs between services (HKDF of shared_secret).
	URLKey []byte
	// CookieKey is the decoded cookie_secret (32 bytes); services derive
	// their own keys from it, never use it directly.
	CookieKey []byte
	// CookieSealKey keys the AEAD for sealed cookies and sealed URL values
	// (HKDF of cookie_secret).
	CookieSealKey []byte
	// AuthenticateURLParsed is authenticate_service_url, parsed.
	AuthenticateURLParsed *url.URL
	// AuthenticateInternalURLParsed is where services reach authenticate (defaults to the public URL).
	AuthenticateInternalURLParsed *url.URL
	// AuthorizeTargets and DataBrokerTargets are the gRPC replicas to dial.
	AuthorizeTargets  []*url.URL
	DataBrokerTargets []*url.URL
	// TLSCertificates are the server certificates (certificate plus certificates).
	TLSCertificates []tls.Certificate
	// CAPool trusts certificate_authority in addition to the system roots (nil when unset).
	CAPool *x509.CertPool
	// UnderscoreHeaders is headers_with_underscores_action.
	UnderscoreHeaders UnderscoreAction
	// PathNormalization is normalize_path, merge_slashes and
	// path_with_escaped_slashes_action: the rules the proxy and authorize
	// apply to every request path.
	PathNormalization pathnorm.Options
	// MTLS is downstream mTLS, derived from downstream_mtls and the
	// routes' tls_downstream_client_ca; nil when no client CA is set.
	MTLS *MTLS
	// Autocert is autocert (ACME), nil when off.
	Autocert *AutocertSettings
	// Tracing is what the otel_* and tracing_* options resolve to.
	Tracing TracingSettings
	// Metrics is the metrics listener's authentication and TLS.
	Metrics MetricsSettings

	lines    map[string]int
	warnings []string
	ignored  []ignoredKey       // Pomerium options accepted without effect
	keySet   *signingkey.KeySet // see KeySet
}

// IsAuthenticateHost reports whether a request's Host (with or without a
// port) names the authenticate service: the host of
// authenticate_service_url or of authenticate_internal_service_url (the
// name an internal load balancer or the other services use, as in
// Pomerium's split deployments).
func (c *Config) IsAuthenticateHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	for _, u := range []*url.URL{c.AuthenticateURLParsed, c.AuthenticateInternalURLParsed} {
		if u != nil && strings.EqualFold(host, u.Hostname()) {
			return true
		}
	}
	return false
}

// Runs reports whether this process runs the named service.
func (c *Config) Runs(service string) bool { return c.ServiceSet[service] }

// Warnings lists what this configuration allows that an operator should
// know about (a plaintext gRPC listener off loopback, generated secrets,
// weakened path rules), for start-up and `gatehouse validate` to print.
func (c *Config) Warnings() []string {
	return append(append([]string(nil), c.warnings...), c.PathNormalizationWarnings()...)
}

// defaultGRPCAddress fills grpc_address: loopback in an all-in-one process,
// where no other process calls it, every interface otherwise.
func (c *Config) defaultGRPCAddress() {
	o := &c.Options
	if o.GRPCAddress == "" {
		if c.runsEveryService() {
			o.GRPCAddress = "127.0.0.1:5443"
		} else {
			o.GRPCAddress = ":5443"
		}
	}
}

// warnPlaintextGRPC warns about a plaintext gRPC listener that other hosts
// can reach: service tokens and session records would cross the network in
// the clear. It runs after the certificates are read (they decide TLS).
func (c *Config) warnPlaintextGRPC() {
	o := &c.Options
	if !(c.Runs(ServiceDataBroker) || c.Runs(ServiceAuthorize)) || !c.GRPCInsecureOrDefault() {
		return
	}
	if host, _, err := net.SplitHostPort(o.GRPCAddress); err == nil && !isLoopbackHost(host) {
		c.warnings = append(c.warnings, fmt.Sprintf("grpc_address %s serves plaintext gRPC beyond loopback: service tokens and session records "+
			"cross the network in the clear; bind it to 127.0.0.1, or set grpc_insecure: false with a certificate "+
			"(and https:// service URLs), or keep it on a private network you trust", o.GRPCAddress))
	}
}

// isLoopbackHost reports whether a listen host binds only loopback. The
// empty host and 0.0.0.0/:: bind every interface.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Line returns the file line where key was set, or 0.
func (c *Config) Line(key string) int { return c.lines[key] }

// GRPCInsecureOrDefault reports whether this process's gRPC server is
// plaintext. It serves TLS (with the server certificates) only when
// grpc_insecure is explicitly false; clients pick TLS from their service
// URL's scheme (https), so http:// service URLs mean plaintext gRPC, as in
// Pomerium's split-deployment examples.
func (c *Config) GRPCInsecureOrDefault() bool {
	if c.GRPCInsecure != nil && !*c.GRPCInsecure && len(c.TLSCertificates) > 0 {
		return false
	}
	return true
}

// PassIdentityHeadersFor reports pass_identity_headers for a route (route, else global).
func (c *Config) PassIdentityHeadersFor(r *Route) bool {
	if r.PassIdentityHeaders != nil {
		return *r.PassIdentityHeaders
	}
	return c.PassIdentityHeaders != nil && *c.PassIdentityHeaders
}

// CookieSameSiteMode returns cookie_same_site as an http.SameSite (lax
// unless strict or none).
func (c *Config) CookieSameSiteMode() http.SameSite {
	switch strings.ToLower(c.CookieSameSite) {
	case "strict":
		return http.SameSiteStrictMode
	case "none":
		return http.SameSiteNoneMode
	default:
		return http.SameSiteLaxMode
	}
}

// LogLevel returns log_level as a slog level.
func (c *Config) SlogLevel() slog.Level { return logging.Level(c.LogLevel) }

func (o *Options) setDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.Services, "all")
	if o.InsecureServer {
		def(&o.Address, ":80")
	}
	def(&o.Address, ":443")
	def(&o.HealthCheckAddr, "127.0.0.1:28080")
	def(&o.LogLevel, "info")
	def(&o.LogFormat, "json")
	def(&o.CookieName, "_pomerium")
	def(&o.CookieSameSite, "lax")
	def(&o.DataBrokerStorageType, "memory")
	def(&o.IDPProvider, "oidc")
	def(&o.AuthenticateCallbackPath, "/oauth2/callback")
	if o.CookieExpire == 0 {
		o.CookieExpire = Duration(14 * time.Hour)
	}
	if o.DefaultUpstreamTimeout == 0 {
		o.DefaultUpstreamTimeout = Duration(30 * time.Second)
	}
	if o.TimeoutRead == 0 {
		o.TimeoutRead = Duration(30 * time.Second)
	}
	if o.TimeoutIdle == 0 {
		o.TimeoutIdle = Duration(5 * time.Minute)
	}
	if o.GRPCClientTimeout == 0 {
		o.GRPCClientTimeout = Duration(10 * time.Second)
	}
	if len(o.IDPScopes) == 0 {
		o.IDPScopes = StringList{"openid", "profile", "email", "offline_access"}
	}
}

func (c *Config) validate(errs *Errors) {
	o := &c.Options
	at := func(key string) int { return c.lines[key] }

	c.warnIgnored()
	c.ServiceSet = map[string]bool{}
	for _, s := range splitList(o.Services) {
		switch s {
		case "all":
			for _, name := range AllServices {
				c.ServiceSet[name] = true
			}
		case ServiceAuthenticate, ServiceAuthorize, ServiceProxy, ServiceDataBroker:
			c.ServiceSet[s] = true
		default:
			errs.add("services", at("services"), fmt.Sprintf("unknown service %q: expected all or a comma list of authenticate, authorize, proxy, databroker", s))
		}
	}

	c.SharedKey = c.secret(errs, "shared_secret", o.SharedSecret, true)
	c.CookieKey = c.secret(errs, "cookie_secret", o.CookieSecret, c.Runs(ServiceAuthenticate) || c.Runs(ServiceProxy))
	if c.SharedKey != nil && bytes.Equal(c.SharedKey, c.CookieKey) {
		errs.add("cookie_secret", c.secretLine("cookie_secret"), "must differ from shared_secret: every service holds shared_secret, while cookie_secret keys what browsers carry; make another with: head -c32 /dev/urandom | base64")
	}
	c.HandleKey = cryptutil.PurposeKey(c.SharedKey, cryptutil.PurposeSessionHandle)
	c.URLKey = cryptutil.PurposeKey(c.SharedKey, cryptutil.PurposeSignedURL)
	c.CookieSealKey = cryptutil.PurposeKey(c.CookieKey, cryptutil.PurposeCookieSealing)

	c.AuthenticateURLParsed = c.httpURL(errs, "authenticate_service_url", o.AuthenticateURL, false)
	if o.AuthenticateURL == "" && (c.Runs(ServiceAuthenticate) || c.Runs(ServiceProxy) || c.Runs(ServiceAuthorize)) {
		errs.add("authenticate_service_url", 0, "required: gatehouse has no hosted authenticate service (Pomerium's default when this is unset); "+
			"set it to the public URL where gatehouse's authenticate service answers, such as https://authenticate.example.com, "+
			"and register https://<that host>/oauth2/callback with your identity provider")
	}
	c.AuthenticateInternalURLParsed = c.httpURL(errs, "authenticate_internal_service_url", o.AuthenticateInternalURL, false)
	if c.AuthenticateInternalURLParsed == nil {
		c.AuthenticateInternalURLParsed = c.AuthenticateURLParsed
	}
	c.AuthorizeTargets = c.grpcTargets(errs, "authorize_service_url", o.AuthorizeInternalURL, o.AuthorizeURL, o.AuthorizeURLs,
		c.Runs(ServiceProxy) && !c.Runs(ServiceAuthorize))
	c.DataBrokerTargets = c.grpcTargets(errs, "databroker_service_url", o.DataBrokerInternalURL, o.DataBrokerURL, o.DataBrokerURLs,
		(c.Runs(ServiceAuthorize) || c.Runs(ServiceAuthenticate)) && !c.Runs(ServiceDataBroker))

	c.defaultGRPCAddress()
	for _, a := range []struct{ key, val string }{
		{"address", o.Address}, {"grpc_address", o.GRPCAddress}, {"health_check_addr", o.HealthCheckAddr},
		{"metrics_address", o.MetricsAddr}, {"http_redirect_addr", o.HTTPRedirectAddr},
	} {
		if a.val == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(a.val); err != nil || port == "" {
			errs.add(a.key, at(a.key), fmt.Sprintf("expected host:port (such as :443 or 127.0.0.1:5443), got %q", a.val))
		}
	}

	c.validateStorage(errs)

	switch strings.ToLower(o.CookieSameSite) {
	case "", "lax", "strict", "none":
	default:
		errs.add("cookie_same_site", at("cookie_same_site"), fmt.Sprintf("expected lax, strict or none, got %q", o.CookieSameSite))
	}
	switch strings.ToLower(o.LogLevel) {
	case "trace", "debug", "info", "warn", "warning", "error", "fatal", "panic", "off", "disabled":
	default:
		errs.add("log_level", at("log_level"), fmt.Sprintf("expected trace, debug, info, warn, error, fatal or off, got %q", o.LogLevel))
	}
	switch o.LogFormat {
	case "json", "text":
	default:
		errs.add("log_format", at("log_format"), fmt.Sprintf("expected json or text, got %q", o.LogFormat))
	}

	if c.Runs(ServiceAuthenticate) {
		c.validateIDP(errs)
	}
	if o.SignOutRedirectURL != "" {
		c.httpURL(errs, "signout_redirect_url", o.SignOutRedirectURL, false)
	}
	c.validateProgrammaticWhitelist(errs)
	if o.XFFNumTrustedHops < 0 {
		errs.add("xff_num_trusted_hops", at("xff_num_trusted_hops"), "expected a number of hops, 0 or more")
	}
	c.validatePathNormalization(errs)
	c.validateUnderscoreHeaders(errs)
	checkJWTIssuerFormat(errs, "jwt_issuer_format", at("jwt_issuer_format"), o.JWTIssuerFormat)
	checkBearerTokenFormat(errs, "bearer_token_format", at("bearer_token_format"), o.BearerTokenFormat)
	c.validateTracing(errs)
	c.validateMetrics(errs)
	c.validateCertificates(errs)
	c.warnPlaintextGRPC()
	c.deriveKeySet(errs)
	c.validateDownstreamMTLS(errs)
	c.validateAutocert(errs)
	for i := range o.Routes {
		c.validateRoute(errs, i, &o.Routes[i])
	}
}

// secret decodes and checks shared_secret or cookie_secret. Unset in a
// process that runs every service, it is generated (as Pomerium's
// all-in-one does): nothing outside the process needs it then, but sessions
// and the identity-JWT key do not survive a restart, which a warning says.
func (c *Config) secret(errs *Errors, key, val string, required bool) []byte {
	line := c.secretLine(key)
	if val == "" {
		switch {
		case c.runsEveryService():
			c.warnings = append(c.warnings, fmt.Sprintf("%s is not set: using a random one for this process; sessions end at every restart and, "+
				"unless signing_key is set, upstreams must fetch the JWKS again (set %s or %s_file to keep them)", key, key, key))
			return processSecret(key)
		case required:
			errs.add(key, line, fmt.Sprintf("required: 32 random bytes in base64 (make one with: head -c32 /dev/urandom | base64), or %s_file", key))
		}
		return nil
	}
	b, err := cryptutil.DecodeSecret(val)
	if err == nil {
		err = cryptutil.CheckSecret(b)
	}
	if err != nil {
		errs.add(key, line, err.Error())
		return nil
	}
	return b
}

// secretLine is the file line of key, or of its _file form.
func (c *Config) secretLine(key string) int {
	if line := c.lines[key]; line != 0 {
		return line
	}
	return c.lines[key+"_file"]
}

// runsEveryService reports whether this process is an all-in-one.
func (c *Config) runsEveryService() bool {
	for _, name := range AllServices {
		if !c.Runs(name) {
			return false
		}
	}
	return true
}

var (
	processSecretsMu sync.Mutex
	processSecrets   = map[string][]byte{}
)

// processSecret returns the random secret generated for key in this
// process, the same for every load, so a hot reload keeps every key.
func processSecret(key string) []byte {
	processSecretsMu.Lock()
	defer processSecretsMu.Unlock()
	if b, ok := processSecrets[key]; ok {
		return b
	}
	b := cryptutil.RandomBytes(cryptutil.SecretSize)
	processSecrets[key] = b
	return b
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("not base64")
}

func (c *Config) httpURL(errs *Errors, key, val string, required bool) *url.URL {
	if val == "" {
		if required {
			errs.add(key, c.lines[key], "required: an absolute https:// (or http://) URL")
		}
		return nil
	}
	u, err := url.Parse(val)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs.add(key, c.lines[key], fmt.Sprintf("expected an absolute http:// or https:// URL, got %q", val))
		return nil
	}
	return u
}

// grpcTargets gathers a service's replicas from its internal, singular and
// plural URL options.
func (c *Config) grpcTargets(errs *Errors, key, internal, single string, many []string, required bool) []*url.URL {
	var raw []string
	switch {
	case internal != "":
		raw = []string{internal}
	case len(many) > 0:
		raw = append(raw, many...)
	case single != "":
		raw = []string{single}
	}
	var out []*url.URL
	for _, s := range raw {
		if u := c.httpURL(errs, key, s, false); u != nil {
			out = append(out, u)
		}
	}
	if required && len(raw) == 0 {
		errs.add(key, 0, "required when this process does not run that service itself: set "+key+" or "+key+"s")
	}
	return out
}

var knownProviders = map[string]string{
	"oidc":   "",
	"google": "https://accounts.google.com",
	"auth0":  "", "okta": "", "onelogin": "", "ping": "", "cognito": "", "gitlab": "https://gitlab.com", "azure": "",
}

// unsupportedProviders use OAuth2 without OpenID Connect.
var unsupportedProviders = map[string]bool{"github": true, "apple": true}

func (c *Config) validateIDP(errs *Errors) {
	o := &c.Options
	p := strings.ToLower(o.IDPProvider)
	if unsupportedProviders[p] {
		errs.add("idp_provider", c.lines["idp_provider"], fmt.Sprintf("%q is not an OpenID Connect provider and is not supported yet; supported: oidc, google, okta, auth0, azure, gitlab, cognito, onelogin, ping", o.IDPProvider))
		return
	}
	def, ok := knownProviders[p]
	if !ok {
		errs.add("idp_provider", c.lines["idp_provider"], fmt.Sprintf("unknown provider %q; supported: oidc, google, okta, auth0, azure, gitlab, cognito, onelogin, ping", o.IDPProvider))
		return
	}
	if o.IDPProviderURL == "" && def != "" {
		o.IDPProviderURL = def
	}
	c.httpURL(errs, "idp_provider_url", o.IDPProviderURL, true)
	if o.IDPClientID == "" {
		errs.add("idp_client_id", c.lines["idp_client_id"], "required: the OAuth client id registered with the identity provider")
	}
	if o.IDPClientSecret == "" {
		errs.add("idp_client_secret", c.lines["idp_client_secret"], "required: the OAuth client secret, or idp_client_secret_file")
	}
}

func (c *Config) validateCertificates(errs *Errors) {
	o := &c.Options
	add := func(key, cert, key2 string) {
		if cert == "" && key2 == "" {
			return
		}
		crt, err := tls.X509KeyPair([]byte(maybeBase64PEM(cert)), []byte(maybeBase64PEM(key2)))
		if err != nil {
			errs.add(key, c.lines[key], fmt.Sprintf("bad certificate or key: %v", err))
			return
		}
		c.TLSCertificates = append(c.TLSCertificates, crt)
	}
	add("certificate", o.Certificate, o.CertificateKey)
	for i, crt := range o.Certificates {
		add(fmt.Sprintf("certificates[%d]", i), crt.Cert, crt.Key)
	}
	if !o.InsecureServer && c.Runs(ServiceProxy) && len(c.TLSCertificates) == 0 && len(o.Certificates) == 0 && o.Certificate == "" && !o.Autocert {
		errs.add("certificate", 0, "required unless insecure_server is true: set certificate_file and certificate_key_file, or certificates")
	}
	if o.CertificateAuthority != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM([]byte(maybeBase64PEM(o.CertificateAuthority))) {
			errs.add("certificate_authority", c.lines["certificate_authority"], "expected PEM certificates")
		}
		c.CAPool = pool
	}
}

// maybeBase64PEM accepts PEM or base64 of PEM, as Pomerium does.
func maybeBase64PEM(s string) string {
	if strings.Contains(s, "-----BEGIN") {
		return s
	}
	if b, err := decodeBase64(strings.TrimSpace(s)); err == nil {
		return string(b)
	}
	return s
}

func (c *Config) validateRoute(errs *Errors, i int, r *Route) {
	where := r.where
	if where == "" {
		where = fmt.Sprintf("routes[%d]", i)
	}
	key := func(k string) string { return where + "." + k }
	line := func(k string) int {
		if l := c.lines[key(k)]; l > 0 {
			return l
		}
		return c.lines[where]
	}
	if r.From == "" {
		errs.add(key("from"), line("from"), "required: the external URL of the route, such as https://app.example.com")
	} else if u, err := url.Parse(r.From); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs.add(key("from"), line("from"), fmt.Sprintf("expected an http:// or https:// URL with a host, got %q", r.From))
	} else if u.Path != "" && u.Path != "/" {
		errs.add(key("from"), line("from"), "must not have a path; use prefix, path or regex")
	} else {
		r.FromURL = u
	}
	switch {
	case r.Redirect != nil:
		c.validateRedirect(errs, r.Redirect, key, line)
		if len(r.To) > 0 || r.Response != nil {
			c.warnings = append(c.warnings, fmt.Sprintf("line %d: %s: has redirect and also to or response; redirect wins, as in Pomerium", line("redirect"), where))
		}
	case r.Response != nil:
		if r.Response.Status < 200 || r.Response.Status > 599 {
			errs.add(key("response.status"), line("response"), fmt.Sprintf("expected an HTTP status from 200 to 599, got %d", r.Response.Status))
		}
		if len(r.To) > 0 {
			c.warnings = append(c.warnings, fmt.Sprintf("line %d: %s: has response and also to; response wins, as in Pomerium", line("response"), where))
		}
	case len(r.To) == 0:
		errs.add(key("to"), line("to"), "required: the upstream URL (or a list of them), or a redirect or response")
	}
	for _, t := range r.To {
		raw, weight := t, 1
		if u, w, ok := strings.Cut(t, ","); ok {
			n, err := strconv.Atoi(strings.TrimSpace(w))
			if err != nil || n < 1 {
				errs.add(key("to"), line("to"), fmt.Sprintf("expected url,weight with a positive weight, got %q", t))
				continue
			}
			raw, weight = strings.TrimSpace(u), n
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "h2c") || u.Host == "" {
			errs.add(key("to"), line("to"), fmt.Sprintf("expected an http://, https:// or h2c:// URL, got %q", raw))
			continue
		}
		r.ToURLs = append(r.ToURLs, WeightedURL{URL: u, Weight: weight})
	}
	h2c := 0
	for _, w := range r.ToURLs {
		if w.URL.Scheme == "h2c" {
			h2c++
		}
	}
	if h2c > 0 && h2c < len(r.ToURLs) {
		errs.add(key("to"), line("to"), "h2c:// upstreams cannot be mixed with http:// or https:// ones in one route")
	}
	n := 0
	for _, v := range []string{r.Prefix, r.Path, r.Regex} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		errs.add(key("prefix"), line("prefix"), "set only one of prefix, path and regex")
	}
	if r.Prefix != "" && !strings.HasPrefix(r.Prefix, "/") {
		errs.add(key("prefix"), line("prefix"), fmt.Sprintf("must start with /, got %q", r.Prefix))
	}
	if r.Path != "" && !strings.HasPrefix(r.Path, "/") {
		errs.add(key("path"), line("path"), fmt.Sprintf("must start with /, got %q", r.Path))
	}
	if r.Regex != "" {
		re, err := regexp.Compile("^(?:" + r.Regex + ")$")
		if err != nil {
			errs.add(key("regex"), line("regex"), fmt.Sprintf("not a valid regular expression: %v", err))
		}
		r.RegexRE = re
	}
	if r.RegexRewritePattern != "" {
		re, err := regexp.Compile(r.RegexRewritePattern)
		if err != nil {
			errs.add(key("regex_rewrite_pattern"), line("regex_rewrite_pattern"), fmt.Sprintf("not a valid regular expression: %v", err))
		}
		r.RewriteRE = re
	}
	checkJWTIssuerFormat(errs, key("jwt_issuer_format"), line("jwt_issuer_format"), r.JWTIssuerFormat)
	checkBearerTokenFormat(errs, key("bearer_token_format"), line("bearer_token_format"), r.BearerTokenFormat)
	switch {
	case r.KubernetesServiceAccountToken != "" && r.KubernetesServiceAccountTokenFile != "":
		errs.add(key("kubernetes_service_account_token"), line("kubernetes_service_account_token"),
			"set kubernetes_service_account_token or kubernetes_service_account_token_file, not both")
	case r.KubernetesServiceAccountTokenFile != "":
		if _, err := os.ReadFile(r.KubernetesServiceAccountTokenFile); err != nil {
			errs.add(key("kubernetes_service_account_token_file"), line("kubernetes_service_account_token_file"), fmt.Sprintf("cannot read file: %v", err))
		}
	}
	if _, err := parseLBPolicy(r.LoadBalancingPolicy); err != nil {
		errs.add(key("load_balancing_policy"), line("load_balancing_policy"), err.Error())
	}
	if r.HostPathRegexRewritePattern != "" {
		re, err := regexp.Compile(r.HostPathRegexRewritePattern)
		if err != nil {
			errs.add(key("host_path_regex_rewrite_pattern"), line("host_path_regex_rewrite_pattern"), fmt.Sprintf("not a valid regular expression: %v", err))
		}
		r.HostPathRE = re
	}
	if r.TLSCustomCA != "" {
		if !x509.NewCertPool().AppendCertsFromPEM([]byte(maybeBase64PEM(r.TLSCustomCA))) {
			errs.add(key("tls_custom_ca"), line("tls_custom_ca"), "expected PEM certificates (or base64 of PEM)")
		}
	}
	if (r.TLSClientCert == "") != (r.TLSClientKey == "") {
		errs.add(key("tls_client_cert"), line("tls_client_cert"), "tls_client_cert and tls_client_key go together")
	} else if r.TLSClientCert != "" {
		if _, err := tls.X509KeyPair([]byte(maybeBase64PEM(r.TLSClientCert)), []byte(maybeBase64PEM(r.TLSClientKey))); err != nil {
			errs.add(key("tls_client_cert"), line("tls_client_cert"), fmt.Sprintf("bad client certificate or key: %v", err))
		}
	}
	for name, v := range r.SetRequestHeaders {
		if _, err := ParseHeaderTemplate(v); err != nil {
			errs.add(key("set_request_headers."+name), line("set_request_headers"), err.Error())
		}
	}
	c.validatePolicy(errs, i, r, key, line)
}

// validateRedirect checks a route's redirect as Pomerium does.
func (c *Config) validateRedirect(errs *Errors, rr *RouteRedirect, key func(string) string, line func(string) int) {
	if rr.ResponseCode != nil {
		switch *rr.ResponseCode {
		case 301, 302, 303, 307, 308:
		default:
			errs.add(key("redirect.response_code"), line("redirect"), fmt.Sprintf("unsupported redirect response code %d (supported values: 301, 302, 303, 307, 308)", *rr.ResponseCode))
		}
	}
	if rr.PortRedirect != nil && (*rr.PortRedirect == 0 || *rr.PortRedirect > 65535) {
		errs.add(key("redirect.port_redirect"), line("redirect"), fmt.Sprintf("expected a port from 1 to 65535, got %d", *rr.PortRedirect))
	}
	if rr.SchemeRedirect != nil && *rr.SchemeRedirect != "http" && *rr.SchemeRedirect != "https" {
		errs.add(key("redirect.scheme_redirect"), line("redirect"), fmt.Sprintf("expected http or https, got %q", *rr.SchemeRedirect))
	}
	if rr.PathRedirect != nil && !strings.HasPrefix(*rr.PathRedirect, "/") {
		errs.add(key("redirect.path_redirect"), line("redirect"), fmt.Sprintf("must start with /, got %q", *rr.PathRedirect))
	}
	if rr.HostRedirect != nil && (*rr.HostRedirect == "" || strings.ContainsAny(*rr.HostRedirect, "/?#@ ")) {
		errs.add(key("redirect.host_redirect"), line("redirect"), fmt.Sprintf("expected a host name (with an optional port), got %q", *rr.HostRedirect))
	}
}

// IsForKubernetes reports whether the route sends a Kubernetes service
// account token upstream (kubernetes_service_account_token or _file).
func (r *Route) IsForKubernetes() bool {
	return r.KubernetesServiceAccountToken != "" || r.KubernetesServiceAccountTokenFile != ""
}

// H2C reports whether the route's upstreams are h2c:// (HTTP/2 without
// TLS, with prior knowledge: gRPC servers and other HTTP/2-only upstreams).
// A route's upstreams are all h2c or none.
func (r *Route) H2C() bool {
	return len(r.ToURLs) > 0 && r.ToURLs[0].URL.Scheme == "h2c"
}

// UpstreamServerName is the TLS server name for the route's https
// upstreams: tls_upstream_server_name, else tls_server_name, else ""
// (the upstream URL's host).
func (r *Route) UpstreamServerName() string {
	if r.TLSUpstreamServerName != "" {
		return r.TLSUpstreamServerName
	}
	return r.TLSServerName
}

// TLSClientCertificate returns the route's client certificate for mTLS upstreams.
func (r *Route) TLSClientCertificate() (*tls.Certificate, error) {
	if r.TLSClientCert == "" {
		return nil, nil
	}
	crt, err := tls.X509KeyPair([]byte(maybeBase64PEM(r.TLSClientCert)), []byte(maybeBase64PEM(r.TLSClientKey)))
	if err != nil {
		return nil, err
	}
	return &crt, nil
}

// TLSCustomCAPool returns the pool trusting tls_custom_ca, or nil.
func (r *Route) TLSCustomCAPool() *x509.CertPool {
	if r.TLSCustomCA == "" {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(maybeBase64PEM(r.TLSCustomCA)))
	return pool
}
