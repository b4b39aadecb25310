package config

import (
	"net/url"
	"regexp"

	"gopkg.in/yaml.v3"

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
	Prefix           string     `yaml:"prefix"`
	Path             string     `yaml:"path"`
	Regex            string     `yaml:"regex"`

	PrefixRewrite            string `yaml:"prefix_rewrite"`
	RegexRewritePattern      string `yaml:"regex_rewrite_pattern"`
	RegexRewriteSubstitution string `yaml:"regex_rewrite_substitution"`
	HostRewrite              string `yaml:"host_rewrite"`
	PreserveHostHeader       bool   `yaml:"preserve_host_header"`

	PassIdentityHeaders  *bool      `yaml:"pass_identity_headers"`
	SetRequestHeaders    StringMap  `yaml:"set_request_headers"`
	RemoveRequestHeaders StringList `yaml:"remove_request_headers"`
	SetResponseHeaders   StringMap  `yaml:"set_response_headers"`

	AllowWebsockets bool      `yaml:"allow_websockets"`
	AllowSPDY       bool      `yaml:"allow_spdy"`
	Timeout         *Duration `yaml:"timeout"`
	IdleTimeout     *Duration `yaml:"idle_timeout"`

	TLSSkipVerify     bool   `yaml:"tls_skip_verify"`
	TLSServerName     string `yaml:"tls_server_name"`
	TLSCustomCA       string `yaml:"tls_custom_ca"`
	TLSCustomCAFile   string `yaml:"tls_custom_ca_file"`
	TLSClientCert     string `yaml:"tls_client_cert"`
	TLSClientKey      string `yaml:"tls_client_key"`
	TLSClientCertFile string `yaml:"tls_client_cert_file"`
	TLSClientKeyFile  string `yaml:"tls_client_key_file"`

	AllowPublicUnauthenticatedAccess bool             `yaml:"allow_public_unauthenticated_access"`
	AllowAnyAuthenticatedUser        bool             `yaml:"allow_any_authenticated_user"`
	AllowedUsers                     StringList       `yaml:"allowed_users"`
	AllowedDomains                   StringList       `yaml:"allowed_domains"`
	AllowedIDPClaims                 map[string][]any `yaml:"allowed_idp_claims"`
	CORSAllowPreflight               bool             `yaml:"cors_allow_preflight"`
	Policy                           *yaml.Node       `yaml:"policy"`

	// Derived by validation.
	FromURL   *url.URL       `yaml:"-"`
	ToURLs    []WeightedURL  `yaml:"-"`
	RegexRE   *regexp.Regexp `yaml:"-"`
	RewriteRE *regexp.Regexp `yaml:"-"`
	// Evaluator is the route's compiled policy (shorthands and policy).
	Evaluator *policy.Evaluator `yaml:"-"`

	// where names the route in messages: "routes[2]" or "policy[0]".
	where string
}

// Where names the route in messages and for Config.Line: "routes[2]", or
// "policy[0]" for a route of the top-level policy list.
func (r *Route) Where() string { return r.where }

// WeightedURL is one upstream of a route's `to` ("http://a:80,3" has weight 3).
type WeightedURL struct {
	URL    *url.URL
	Weight int
}
