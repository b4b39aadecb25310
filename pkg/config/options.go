package config

import (
	"net/url"
	"regexp"

	"gopkg.in/yaml.v3"

	"github.com/gatehouse/gatehouse/pkg/clientcert"
	"github.com/gatehouse/gatehouse/pkg/policy"
)

// Options holds every configuration option by its Pomerium name. Fields are
// filled from the YAML file and then from environment variables named after
// the option in upper case (SHARED_SECRET, JWT_CLAIMS_HEADERS, ...).
type Options struct {
	// Services is "all" or a comma list of authenticate, authorize, proxy, databroker.
	Services string `yaml:"services"`
	// Address is the HTTP(S) listener of the proxy and authenticate services.
	Address string `yaml:"address"`
	// GRPCAddress is the gRPC listener of the authorize and databroker services.
	GRPCAddress string `yaml:"grpc_address"`
	// InsecureServer serves plain HTTP (behind a TLS-terminating load balancer).
	InsecureServer bool `yaml:"insecure_server"`
	// GRPCInsecure makes gRPC servers and clients use plaintext.
	GRPCInsecure *bool `yaml:"grpc_insecure"`
	// HealthCheckAddr serves /healthz, /readyz and /startupz.
	HealthCheckAddr string `yaml:"health_check_addr"`
	// MetricsAddr serves Prometheus /metrics when set.
	MetricsAddr string `yaml:"metrics_address"`
	// MetricsBasicAuth is base64 of "user:password" that /metrics
	// requires (HTTP basic authentication), as in Pomerium.
	MetricsBasicAuth string `yaml:"metrics_basic_auth"`
	// The metrics listener's TLS certificate and key (PEM, or base64 PEM,
	// or files) and the CA its clients' certificates must chain to
	// (mutual TLS).
	MetricsCertificate        string `yaml:"metrics_certificate"`
	MetricsCertificateFile    string `yaml:"metrics_certificate_file"`
	MetricsCertificateKey     string `yaml:"metrics_certificate_key"`
	MetricsCertificateKeyFile string `yaml:"metrics_certificate_key_file"`
	MetricsClientCA           string `yaml:"metrics_client_ca"`
	MetricsClientCAFile       string `yaml:"metrics_client_ca_file"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// LogFormat is json (default) or text.
	LogFormat string `yaml:"log_format"`
	// HTTPRedirectAddr, when set, redirects plain HTTP to HTTPS.
	HTTPRedirectAddr string `yaml:"http_redirect_addr"`

	AuthenticateURL          string     `yaml:"authenticate_service_url"`
	AuthenticateInternalURL  string     `yaml:"authenticate_internal_service_url"`
	AuthenticateCallbackPath string     `yaml:"authenticate_callback_path"`
	AuthorizeURL             string     `yaml:"authorize_service_url"`
	AuthorizeURLs            StringList `yaml:"authorize_service_urls"`
	AuthorizeInternalURL     string     `yaml:"authorize_internal_service_url"`
	DataBrokerURL            string     `yaml:"databroker_service_url"`
	DataBrokerURLs           StringList `yaml:"databroker_service_urls"`
	DataBrokerInternalURL    string     `yaml:"databroker_internal_service_url"`

	DataBrokerStorageType                 string `yaml:"databroker_storage_type"`
	DataBrokerStorageConnectionString     string `yaml:"databroker_storage_connection_string"`
	DataBrokerStorageConnectionStringFile string `yaml:"databroker_storage_connection_string_file"`

	SharedSecret     string   `yaml:"shared_secret"`
	SharedSecretFile string   `yaml:"shared_secret_file"`
	CookieSecret     string   `yaml:"cookie_secret"`
	CookieSecretFile string   `yaml:"cookie_secret_file"`
	CookieName       string   `yaml:"cookie_name"`
	CookieDomain     string   `yaml:"cookie_domain"`
	CookieExpire     Duration `yaml:"cookie_expire"`
	CookieSameSite   string   `yaml:"cookie_same_site"`
	CookieHTTPOnly   *bool    `yaml:"cookie_http_only"`
	CookieSecure     *bool    `yaml:"cookie_secure"`

	SigningKey     string `yaml:"signing_key"`
	SigningKeyFile string `yaml:"signing_key_file"`

	IDPProvider         string     `yaml:"idp_provider"`
	IDPProviderURL      string     `yaml:"idp_provider_url"`
	IDPClientID         string     `yaml:"idp_client_id"`
	IDPClientSecret     string     `yaml:"idp_client_secret"`
	IDPClientSecretFile string     `yaml:"idp_client_secret_file"`
	IDPScopes           StringList `yaml:"idp_scopes"`
	IDPRequestParams    StringMap  `yaml:"idp_request_params"`

	SignOutRedirectURL                  string     `yaml:"signout_redirect_url"`
	ProgrammaticRedirectDomainWhitelist StringList `yaml:"programmatic_redirect_domain_whitelist"`

	JWTClaimsHeaders    ClaimsHeaders `yaml:"jwt_claims_headers"`
	PassIdentityHeaders *bool         `yaml:"pass_identity_headers"`
	SetResponseHeaders  StringMap     `yaml:"set_response_headers"`
	XFFNumTrustedHops   int           `yaml:"xff_num_trusted_hops"`
	// SkipXFFAppend leaves the TCP peer's address out of the
	// X-Forwarded-For the upstream gets.
	SkipXFFAppend bool `yaml:"skip_xff_append"`
	// BearerTokenFormat is how Authorization: Bearer is read: default (the
	// only value gatehouse accepts) passes a plain bearer token to the
	// upstream uninterpreted and reads "Bearer Pomerium-<handle>" as the
	// session. A route's own bearer_token_format wins.
	BearerTokenFormat string `yaml:"bearer_token_format"`
	// JWTIssuerFormat is the identity JWT's iss: hostOnly (the route's
	// host name, the default) or uri (https://<host>/). A route's own
	// jwt_issuer_format wins.
	JWTIssuerFormat string `yaml:"jwt_issuer_format"`
	// HeadersWithUnderscoresAction is what the proxy does with a request
	// header whose name has an underscore: allow (the default), drop_header
	// or reject_request (400). See UnderscoreHeaders.
	HeadersWithUnderscoresAction string `yaml:"headers_with_underscores_action"`

	// Request path normalization (Pomerium's names for Envoy's settings;
	// see pkg/pathnorm and the README). Unset means true, true,
	// reject_request.
	NormalizePath                *bool  `yaml:"normalize_path"`
	MergeSlashes                 *bool  `yaml:"merge_slashes"`
	PathWithEscapedSlashesAction string `yaml:"path_with_escaped_slashes_action"`

	Certificate              string        `yaml:"certificate"`
	CertificateFile          string        `yaml:"certificate_file"`
	CertificateKey           string        `yaml:"certificate_key"`
	CertificateKeyFile       string        `yaml:"certificate_key_file"`
	Certificates             []Certificate `yaml:"certificates"`
	CertificateAuthority     string        `yaml:"certificate_authority"`
	CertificateAuthorityFile string        `yaml:"certificate_authority_file"`

	TimeoutRead            Duration `yaml:"timeout_read"`
	TimeoutWrite           Duration `yaml:"timeout_write"`
	TimeoutIdle            Duration `yaml:"timeout_idle"`
	DefaultUpstreamTimeout Duration `yaml:"default_upstream_timeout"`
	GRPCClientTimeout      Duration `yaml:"grpc_client_timeout"`

	// Branding of gatehouse's pages (Pomerium's names; see pkg/pages).
	// LogoURL and FaviconURL are http(s) or data:image URLs; the colors
	// are #rgb/#rrggbb or CSS color names; ErrorMessageFirstParagraph is
	// shown first on every error page.
	LogoURL                    string `yaml:"logo_url"`
	FaviconURL                 string `yaml:"favicon_url"`
	PrimaryColor               string `yaml:"primary_color"`
	SecondaryColor             string `yaml:"secondary_color"`
	DarkmodePrimaryColor       string `yaml:"darkmode_primary_color"`
	DarkmodeSecondaryColor     string `yaml:"darkmode_secondary_color"`
	ErrorMessageFirstParagraph string `yaml:"error_message_first_paragraph"`

	// Tracing: Pomerium's otel_* options, whose upper-cased names are the
	// standard OpenTelemetry environment variables (OTEL_TRACES_EXPORTER,
	// OTEL_EXPORTER_OTLP_ENDPOINT, ...), and the older tracing_* names.
	// See TracingSettings for what they resolve to; durations are whole
	// milliseconds as in Pomerium (or Go duration text).
	OtelTracesExporter             string        `yaml:"otel_traces_exporter"`
	OtelTracesSamplerArg           *float64      `yaml:"otel_traces_sampler_arg"`
	OtelResourceAttributes         StringList    `yaml:"otel_resource_attributes"`
	OtelLogLevel                   string        `yaml:"otel_log_level"`
	OtelAttributeValueLengthLimit  *int          `yaml:"otel_attribute_value_length_limit"`
	OtelExporterOTLPEndpoint       string        `yaml:"otel_exporter_otlp_endpoint"`
	OtelExporterOTLPTracesEndpoint string        `yaml:"otel_exporter_otlp_traces_endpoint"`
	OtelExporterOTLPProtocol       string        `yaml:"otel_exporter_otlp_protocol"`
	OtelExporterOTLPTracesProtocol string        `yaml:"otel_exporter_otlp_traces_protocol"`
	OtelExporterOTLPHeaders        StringList    `yaml:"otel_exporter_otlp_headers"`
	OtelExporterOTLPTracesHeaders  StringList    `yaml:"otel_exporter_otlp_traces_headers"`
	OtelExporterOTLPTimeout        *Milliseconds `yaml:"otel_exporter_otlp_timeout"`
	OtelExporterOTLPTracesTimeout  *Milliseconds `yaml:"otel_exporter_otlp_traces_timeout"`
	OtelBSPScheduleDelay           *Milliseconds `yaml:"otel_bsp_schedule_delay"`
	OtelBSPMaxExportBatchSize      *int          `yaml:"otel_bsp_max_export_batch_size"`
	TracingProvider                string        `yaml:"tracing_provider"`
	TracingSampleRate              *float64      `yaml:"tracing_sample_rate"`
	TracingOTLPEndpoint            string        `yaml:"tracing_otlp_endpoint"`
	TracingOTLPProtocol            string        `yaml:"tracing_otlp_protocol"`

	// RuntimeFlags are Pomerium's feature switches. gatehouse reads
	// pomerium_jwt_endpoint (serve /.pomerium/jwt); the others tune
	// Pomerium's internals and are named in a warning.
	RuntimeFlags map[string]bool `yaml:"runtime_flags"`

	Routes []Route `yaml:"routes"`
	// Policy is the old name of routes. Its routes are put before those
	// of routes when the configuration loads, as Pomerium does, and Policy
	// is then empty.
	Policy []Route `yaml:"policy"`

	// --- Reliability (gatehouse's own: Pomerium has no equivalent). ---
	// Kept in one block; defaults and accessors are in reliability.go.

	// ShutdownGracePeriod is how long a process, on SIGTERM, keeps
	// accepting on every listener while /readyz fails (and gRPC health says
	// NOT_SERVING), so that load balancers and clients stop sending before
	// it drains. Unset: 5s; 0 drains at once.
	ShutdownGracePeriod *Duration `yaml:"shutdown_grace_period"`
	// AuthenticateDataBrokerTimeout bounds how long a sign-in, sign-out or
	// user page waits for the databroker before answering with a clear
	// page (sign-in: 503; sign-out: pending, retried). Unset: 3s.
	AuthenticateDataBrokerTimeout Duration `yaml:"authenticate_databroker_timeout"`
	// SignOutQueueDir is where authenticate keeps the sign-outs it could
	// not write to the databroker yet, one file each, so that they survive
	// a restart. Unset: kept in memory only (lost if the process ends
	// before the databroker is back).
	SignOutQueueDir string `yaml:"signout_queue_dir"`

	// ---- TLS: downstream mTLS and autocert (validated in tls.go) ----

	// DownstreamMTLS asks clients for certificates (Pomerium's
	// downstream_mtls group).
	DownstreamMTLS DownstreamMTLS `yaml:"downstream_mtls"`

	// Autocert obtains and renews certificates from an ACME CA for the
	// authenticate host and every route's from host.
	Autocert bool `yaml:"autocert"`
	// AutocertCA is the ACME directory URL (default Let's Encrypt).
	AutocertCA string `yaml:"autocert_ca"`
	// AutocertEmail is the ACME account's contact.
	AutocertEmail string `yaml:"autocert_email"`
	// AutocertUseStaging uses Let's Encrypt's staging directory.
	AutocertUseStaging bool `yaml:"autocert_use_staging"`
	// AutocertMustStaple asks for certificates with OCSP must-staple.
	AutocertMustStaple bool `yaml:"autocert_must_staple"`
	// AutocertDir stores account, keys and certificates (a process that
	// does not run the databroker stores them in the databroker instead).
	AutocertDir string `yaml:"autocert_dir"`
	// AutocertEABKeyID and AutocertEABMACKey are the CA's external
	// account binding (base64url MAC key).
	AutocertEABKeyID  string `yaml:"autocert_eab_key_id"`
	AutocertEABMACKey string `yaml:"autocert_eab_mac_key"`
	// AutocertTrustedCA (PEM or base64 PEM) or its file is trusted for
	// the ACME CA's own TLS certificate, besides the system roots.
	AutocertTrustedCA     string `yaml:"autocert_trusted_ca"`
	AutocertTrustedCAFile string `yaml:"autocert_trusted_ca_file"`
}

// Certificate is one entry of `certificates`: inline PEM (or base64 PEM) or files.
type Certificate struct {
	Cert     string `yaml:"cert"`
	Key      string `yaml:"key"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Route is one entry of `routes`.
type Route struct {
	ID          string `yaml:"id"`
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// LogoURL is the route's logo (Pomerium's routes portal); accepted,
	// and shown on the route's pages.
	LogoURL string `yaml:"logo_url"`
	// ShowErrorDetails shows on the route's 403 page which policy
	// reasons refused the request (Pomerium's show_error_details).
	ShowErrorDetails bool       `yaml:"show_error_details"`
	From             string     `yaml:"from"`
	To               StringList `yaml:"to"`
	// Redirect answers every request of the route with a redirect, and
	// Response with a fixed response, instead of going to an upstream
	// (after the route's policy, as in Pomerium). A route has one of to,
	// redirect and response.
	Redirect *RouteRedirect  `yaml:"redirect"`
	Response *DirectResponse `yaml:"response"`
	Prefix   string          `yaml:"prefix"`
	Path     string          `yaml:"path"`
	Regex    string          `yaml:"regex"`

	PrefixRewrite            string `yaml:"prefix_rewrite"`
	RegexRewritePattern      string `yaml:"regex_rewrite_pattern"`
	RegexRewriteSubstitution string `yaml:"regex_rewrite_substitution"`
	HostRewrite              string `yaml:"host_rewrite"`
	PreserveHostHeader       bool   `yaml:"preserve_host_header"`
	// HostRewriteHeader names a request header whose value becomes the
	// upstream's Host (the client's Host stays when it is empty).
	HostRewriteHeader string `yaml:"host_rewrite_header"`
	// HostPathRegexRewritePattern and ...Substitution make the upstream's
	// Host from the request path: the pattern's matches in the path are
	// replaced by the substitution (Envoy's \1 syntax) and the result is
	// the Host.
	HostPathRegexRewritePattern      string `yaml:"host_path_regex_rewrite_pattern"`
	HostPathRegexRewriteSubstitution string `yaml:"host_path_regex_rewrite_substitution"`

	PassIdentityHeaders  *bool      `yaml:"pass_identity_headers"`
	JWTIssuerFormat      string     `yaml:"jwt_issuer_format"`
	BearerTokenFormat    string     `yaml:"bearer_token_format"`
	SetRequestHeaders    StringMap  `yaml:"set_request_headers"`
	RemoveRequestHeaders StringList `yaml:"remove_request_headers"`
	SetResponseHeaders   StringMap  `yaml:"set_response_headers"`
	// RewriteResponseHeaders rewrite the start of response header values
	// (a Location pointing at the upstream's own name, typically).
	RewriteResponseHeaders []RewriteHeader `yaml:"rewrite_response_headers"`

	AllowWebsockets bool      `yaml:"allow_websockets"`
	AllowSPDY       bool      `yaml:"allow_spdy"`
	Timeout         *Duration `yaml:"timeout"`
	IdleTimeout     *Duration `yaml:"idle_timeout"`

	// KubernetesServiceAccountToken (or the file that holds it, read
	// again as it rotates) makes the route a Kubernetes API route: the
	// upstream gets Authorization: Bearer <token> instead of the
	// client's, and Impersonate-User/-Group naming the signed-in user.
	KubernetesServiceAccountToken     string `yaml:"kubernetes_service_account_token"`
	KubernetesServiceAccountTokenFile string `yaml:"kubernetes_service_account_token_file"`

	// LoadBalancingPolicy picks among the route's upstreams: round_robin
	// (the default), random, least_request, ring_hash or maglev (see
	// LBPolicy).
	LoadBalancingPolicy string `yaml:"load_balancing_policy"`

	TLSSkipVerify     bool   `yaml:"tls_skip_verify"`
	TLSServerName     string `yaml:"tls_server_name"`
	TLSCustomCA       string `yaml:"tls_custom_ca"`
	TLSCustomCAFile   string `yaml:"tls_custom_ca_file"`
	TLSClientCert     string `yaml:"tls_client_cert"`
	TLSClientKey      string `yaml:"tls_client_key"`
	TLSClientCertFile string `yaml:"tls_client_cert_file"`
	TLSClientKeyFile  string `yaml:"tls_client_key_file"`
	// TLSUpstreamServerName is the name sent (SNI) and verified in the
	// upstream's certificate; it wins over tls_server_name, as in Pomerium.
	TLSUpstreamServerName string `yaml:"tls_upstream_server_name"`
	// TLSUpstreamAllowRenegotiation lets an upstream renegotiate TLS 1.2.
	TLSUpstreamAllowRenegotiation bool `yaml:"tls_upstream_allow_renegotiation"`

	AllowPublicUnauthenticatedAccess bool             `yaml:"allow_public_unauthenticated_access"`
	AllowAnyAuthenticatedUser        bool             `yaml:"allow_any_authenticated_user"`
	AllowedUsers                     StringList       `yaml:"allowed_users"`
	AllowedDomains                   StringList       `yaml:"allowed_domains"`
	AllowedIDPClaims                 map[string][]any `yaml:"allowed_idp_claims"`
	CORSAllowPreflight               bool             `yaml:"cors_allow_preflight"`
	Policy                           *yaml.Node       `yaml:"policy"`

	// ---- Downstream mTLS (validated in tls.go) ----

	// TLSDownstreamClientCA (PEM or base64 PEM) or its file replaces
	// downstream_mtls.ca for this route (Pomerium's deprecated option).
	TLSDownstreamClientCA     string `yaml:"tls_downstream_client_ca"`
	TLSDownstreamClientCAFile string `yaml:"tls_downstream_client_ca_file"`
	// ClientCA verifies client certificates on this route: its own CA,
	// else downstream_mtls's; nil when neither is set. Derived.
	ClientCA *clientcert.Verifier `yaml:"-"`

	// Derived by validation.
	FromURL   *url.URL       `yaml:"-"`
	ToURLs    []WeightedURL  `yaml:"-"`
	RegexRE   *regexp.Regexp `yaml:"-"`
	RewriteRE *regexp.Regexp `yaml:"-"`
	// HostPathRE is host_path_regex_rewrite_pattern, compiled.
	HostPathRE *regexp.Regexp `yaml:"-"`
	// Evaluator is the route's compiled policy (shorthands and policy).
	Evaluator *policy.Evaluator `yaml:"-"`

	// where names the route in messages: "routes[2]" or "policy[0]".
	where string
}

// Where names the route in messages and for Config.Line: "routes[2]", or
// "policy[0]" for a route of the top-level policy list.
func (r *Route) Where() string { return r.where }

// RouteRedirect is a route's redirect: Envoy's redirect action under
// Pomerium's names. Unset fields keep that part of the request's URL.
type RouteRedirect struct {
	// HTTPSRedirect sends to https (it wins over SchemeRedirect).
	HTTPSRedirect *bool `yaml:"https_redirect"`
	// SchemeRedirect is the new scheme.
	SchemeRedirect *string `yaml:"scheme_redirect"`
	// HostRedirect is the new host (with a port, if it has one).
	HostRedirect *string `yaml:"host_redirect"`
	// PortRedirect is the new port.
	PortRedirect *uint32 `yaml:"port_redirect"`
	// PathRedirect is the new path (a query in it replaces the request's).
	// It wins over PrefixRewrite.
	PathRedirect *string `yaml:"path_redirect"`
	// PrefixRewrite replaces the part of the path the route matched
	// (prefix, or path; "/" for a route matching every path).
	PrefixRewrite *string `yaml:"prefix_rewrite"`
	// ResponseCode is 301 (the default), 302, 303, 307 or 308.
	ResponseCode *int32 `yaml:"response_code"`
	// StripQuery drops the request's query.
	StripQuery *bool `yaml:"strip_query"`
}

// DirectResponse is a route's fixed response.
type DirectResponse struct {
	// Status is the HTTP status, 200 to 599.
	Status int `yaml:"status"`
	// Body is the response body (text/plain unless set_response_headers
	// says otherwise).
	Body string `yaml:"body"`
}

// RewriteHeader is one entry of rewrite_response_headers: when the
// response header's value starts with Prefix, that prefix is replaced by
// Value (an empty Prefix puts Value in front).
type RewriteHeader struct {
	// Header is the response header's name. Required.
	Header string `yaml:"header"`
	// Prefix is what the value must start with.
	Prefix string `yaml:"prefix"`
	// Value replaces Prefix.
	Value string `yaml:"value"`
}

// WeightedURL is one upstream of a route's `to` ("http://a:80,3" has weight 3).
// An h2c:// upstream is kept with its scheme; see Route.H2C.
type WeightedURL struct {
	URL    *url.URL
	Weight int
}
