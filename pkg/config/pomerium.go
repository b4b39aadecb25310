package config

import (
	"fmt"
	"sort"
	"strings"
)

// Support says what gatehouse does with one of Pomerium's options.
type Support int

// The three answers a Pomerium option gets.
const (
	// Implemented options have their Pomerium meaning in gatehouse.
	Implemented Support = iota + 1
	// Ignored options are accepted, so a Pomerium config starts, and named
	// in one warning: they tune Envoy or features that have no effect on
	// who gets in (tracing, branding), so nothing is let in or kept out
	// because gatehouse skips them.
	Ignored
	// Refused options stop the configuration with their reason: ignoring
	// them would change who gets in or where requests go.
	Refused
)

func (s Support) String() string {
	switch s {
	case Implemented:
		return "implemented"
	case Ignored:
		return "accepted, ignored"
	case Refused:
		return "refused"
	}
	return "unknown"
}

// PomeriumOption is one row of the compatibility table: one of Pomerium's
// options (docs/pomerium-options.txt) and what gatehouse does with it.
type PomeriumOption struct {
	Name    string
	Route   bool // a route option; else global
	Support Support
	// Note says why an option is ignored or refused, or how gatehouse's
	// meaning is limited; "" for a plain implementation.
	Note string
}

// Reasons shared by several rows.
const (
	whyEnvoy       = "tunes Envoy, which gatehouse does not run"
	whyEnvoyDNS    = "tunes Envoy's DNS resolver; gatehouse resolves upstreams with the system resolver"
	whyCluster     = "tunes Envoy's upstream cluster; gatehouse skips an upstream that refuses connections for 30s and retries another"
	whyBranding    = "branding of every built-in page (pkg/pages)"
	whySSH         = "gatehouse has no SSH proxy"
	whyMCP         = "gatehouse has no Model Context Protocol support"
	whyRaft        = "gatehouse's databroker replicas share Redis instead of forming a Raft cluster; set databroker_storage_type: redis"
	whyGCP         = "Google Cloud serverless authentication is not implemented"
	whyMetricsAuth = "protects metrics_address (TLS, mutual TLS with metrics_client_ca)"
	whyMultiIdP    = "gatehouse signs everyone in with the one identity provider client of idp_client_id"
	whyRouteIdP    = "not implemented: authenticate signs everyone in with the global idp_client_id, and a route's own client needs its own sign-in, callback and session per client; signing a route's users in with the global client instead would skip the client the IdP's rules are attached to"
)

// pomeriumOptions is the compatibility table. TestPomeriumCompatibility
// keeps it equal to docs/pomerium-options.txt and to the options
// gatehouse reads, and docs/pomerium-compatibility.md is generated from it.
var pomeriumOptions = []PomeriumOption{
	// Global options.
	{Name: "access_log_fields", Support: Ignored, Note: "the proxy's access log has a fixed set of fields (request_id, route, decision, method, host, path, status, bytes, duration)"},
	{Name: "address", Support: Implemented},
	{Name: "authenticate_callback_path", Support: Implemented},
	{Name: "authenticate_internal_service_url", Support: Implemented, Note: "its host is served by the authenticate service too (an internal load balancer's name)"},
	{Name: "authenticate_service_url", Support: Implemented, Note: "required: there is no hosted authenticate service"},
	{Name: "authorize_internal_service_url", Support: Implemented},
	{Name: "authorize_log_fields", Support: Ignored, Note: "authorize's decision log has a fixed set of fields (request_id, route, method, host, path, user, email, decision, reason)"},
	{Name: "authorize_service_url", Support: Implemented},
	{Name: "authorize_service_urls", Support: Implemented},
	{Name: "autocert", Support: Implemented, Note: "with certmagic: HTTP-01 on http_redirect_addr (:80 by default), TLS-ALPN-01 on address; proxies with databroker_service_url share certificates and order locks through the databroker"},
	{Name: "autocert_ca", Support: Implemented},
	{Name: "autocert_dir", Support: Implemented},
	{Name: "autocert_eab_key_id", Support: Implemented},
	{Name: "autocert_eab_mac_key", Support: Implemented},
	{Name: "autocert_email", Support: Implemented},
	{Name: "autocert_must_staple", Support: Implemented},
	{Name: "autocert_trusted_ca", Support: Implemented},
	{Name: "autocert_trusted_ca_file", Support: Implemented},
	{Name: "autocert_use_staging", Support: Implemented},
	{Name: "bearer_token_format", Support: Implemented, Note: "default: a plain bearer token passes to the upstream uninterpreted, Bearer Pomerium-<handle> is the session; idp_access_token and idp_identity_token are refused (authorize does not verify IdP tokens)"},
	{Name: "certificate", Support: Implemented},
	{Name: "certificate_authority", Support: Implemented},
	{Name: "certificate_authority_file", Support: Implemented},
	{Name: "certificate_file", Support: Implemented},
	{Name: "certificate_key", Support: Implemented},
	{Name: "certificate_key_file", Support: Implemented},
	{Name: "certificates", Support: Implemented, Note: "cert and key are file paths, as Pomerium reads them, or inline PEM or base64 PEM"},
	{Name: "circuit_breaker_thresholds", Support: Ignored, Note: whyCluster},
	{Name: "codec_type", Support: Ignored, Note: "chooses Envoy's downstream codec; gatehouse serves HTTP/1.1 and HTTP/2 (ALPN) whatever it says"},
	{Name: "cookie_domain", Support: Implemented},
	{Name: "cookie_expire", Support: Implemented},
	{Name: "cookie_http_only", Support: Implemented},
	{Name: "cookie_name", Support: Implemented},
	{Name: "cookie_same_site", Support: Implemented},
	{Name: "cookie_secret", Support: Implemented},
	{Name: "cookie_secret_file", Support: Implemented},
	{Name: "darkmode_primary_color", Support: Implemented, Note: whyBranding},
	{Name: "darkmode_secondary_color", Support: Implemented, Note: whyBranding},
	{Name: "databroker_cluster_leader_id", Support: Refused, Note: whyRaft},
	{Name: "databroker_cluster_node_id", Support: Refused, Note: whyRaft},
	{Name: "databroker_cluster_nodes", Support: Refused, Note: whyRaft},
	{Name: "databroker_internal_service_url", Support: Implemented},
	{Name: "databroker_raft_bind_address", Support: Refused, Note: whyRaft},
	{Name: "databroker_service_url", Support: Implemented},
	{Name: "databroker_service_urls", Support: Implemented},
	{Name: "databroker_storage_connection_string", Support: Implemented},
	{Name: "databroker_storage_connection_string_file", Support: Implemented},
	{Name: "databroker_storage_type", Support: Implemented},
	{Name: "debug_address", Support: Ignored, Note: "Pomerium's debug listener; gatehouse serves Go's profiler on GATEHOUSE_PPROF_ADDR instead"},
	{Name: "default_upstream_timeout", Support: Implemented},
	{Name: "dns_lookup_family", Support: Ignored, Note: whyEnvoyDNS},
	{Name: "dns_query_timeout", Support: Ignored, Note: whyEnvoyDNS},
	{Name: "dns_query_tries", Support: Ignored, Note: whyEnvoyDNS},
	{Name: "dns_udp_max_queries", Support: Ignored, Note: whyEnvoyDNS},
	{Name: "dns_use_tcp", Support: Ignored, Note: whyEnvoyDNS},
	{Name: "downstream_mtls", Support: Implemented, Note: "client_certificate matches only a certificate that verified against the CA"},
	{Name: "envoy_admin_access_log_path", Support: Ignored, Note: whyEnvoy},
	{Name: "envoy_admin_address", Support: Ignored, Note: whyEnvoy},
	{Name: "envoy_admin_profile_path", Support: Ignored, Note: whyEnvoy},
	{Name: "envoy_bind_config_freebind", Support: Ignored, Note: whyEnvoy},
	{Name: "envoy_bind_config_source_address", Support: Ignored, Note: whyEnvoy},
	{Name: "error_message_first_paragraph", Support: Implemented, Note: whyBranding},
	{Name: "favicon_url", Support: Implemented, Note: whyBranding},
	{Name: "google_cloud_serverless_authentication_service_account", Support: Refused, Note: whyGCP},
	{Name: "grpc_address", Support: Implemented},
	{Name: "grpc_client_timeout", Support: Implemented},
	{Name: "grpc_insecure", Support: Implemented},
	{Name: "headers_with_underscores_action", Support: Implemented, Note: "allow (default), drop_header or reject_request (400); with allow, a header spelling one gatehouse writes with '_' is still removed"},
	{Name: "health_check_addr", Support: Implemented},
	{Name: "health_check_systemd_disabled", Support: Ignored, Note: "gatehouse does not notify systemd; /healthz and /readyz on health_check_addr serve probes"},
	{Name: "http_redirect_addr", Support: Implemented},
	{Name: "idp_access_token_allowed_audiences", Support: Ignored, Note: "only read with bearer_token_format idp_access_token, which gatehouse refuses"},
	{Name: "idp_client_id", Support: Implemented},
	{Name: "idp_client_secret", Support: Implemented},
	{Name: "idp_client_secret_file", Support: Implemented},
	{Name: "idp_provider", Support: Implemented, Note: "OpenID Connect providers; github and apple (plain OAuth2) are refused"},
	{Name: "idp_provider_url", Support: Implemented},
	{Name: "idp_request_params", Support: Implemented},
	{Name: "idp_scopes", Support: Implemented},
	{Name: "insecure_server", Support: Implemented},
	{Name: "installation_id", Support: Ignored, Note: "identifies an installation to Pomerium's telemetry, which gatehouse does not send"},
	{Name: "jwt_claims_headers", Support: Implemented},
	{Name: "jwt_groups_filter", Support: Refused, Note: "group filtering of the identity JWT is not implemented: every group would reach the upstream"},
	{Name: "jwt_issuer_format", Support: Implemented, Note: "hostOnly (default: iss = the route's host name) or uri (iss = https://<host>/)"},
	{Name: "log_level", Support: Implemented, Note: "trace is debug, fatal is error, off logs nothing"},
	{Name: "logo_url", Support: Implemented, Note: whyBranding},
	{Name: "mcp_allowed_client_id_domains", Support: Refused, Note: whyMCP},
	{Name: "merge_slashes", Support: Implemented},
	{Name: "metrics_address", Support: Implemented},
	{Name: "metrics_basic_auth", Support: Implemented, Note: "base64 of user:password"},
	{Name: "metrics_certificate", Support: Implemented, Note: whyMetricsAuth},
	{Name: "metrics_certificate_file", Support: Implemented, Note: whyMetricsAuth},
	{Name: "metrics_certificate_key", Support: Implemented, Note: whyMetricsAuth},
	{Name: "metrics_certificate_key_file", Support: Implemented, Note: whyMetricsAuth},
	{Name: "metrics_client_ca", Support: Implemented, Note: "clients of metrics_address must present a certificate it signed"},
	{Name: "metrics_client_ca_file", Support: Implemented, Note: whyMetricsAuth},
	{Name: "normalize_path", Support: Implemented},
	{Name: "otel_attribute_value_length_limit", Support: Implemented},
	{Name: "otel_bsp_max_export_batch_size", Support: Implemented},
	{Name: "otel_bsp_schedule_delay", Support: Implemented},
	{Name: "otel_exporter_otlp_endpoint", Support: Implemented},
	{Name: "otel_exporter_otlp_headers", Support: Implemented},
	{Name: "otel_exporter_otlp_protocol", Support: Implemented, Note: "grpc or http/protobuf; unset, port 4317 means grpc, anything else http/protobuf"},
	{Name: "otel_exporter_otlp_timeout", Support: Implemented},
	{Name: "otel_exporter_otlp_traces_endpoint", Support: Implemented},
	{Name: "otel_exporter_otlp_traces_headers", Support: Implemented},
	{Name: "otel_exporter_otlp_traces_protocol", Support: Implemented},
	{Name: "otel_exporter_otlp_traces_timeout", Support: Implemented},
	{Name: "otel_log_level", Support: Implemented, Note: "the level of the OpenTelemetry SDK's own messages (export failures) in gatehouse's log"},
	{Name: "otel_resource_attributes", Support: Implemented},
	{Name: "otel_traces_exporter", Support: Implemented},
	{Name: "otel_traces_sampler_arg", Support: Implemented, Note: "head sampling by trace id, the same choice in every service; a client's traceparent is continued as a parent only, its sampled flag decides nothing"},
	{Name: "override_certificate_name", Support: Refused, Note: "not implemented: gRPC clients check the service URL's host name; use a service URL whose name the certificate carries"},
	{Name: "pass_identity_headers", Support: Implemented},
	{Name: "path_with_escaped_slashes_action", Support: Implemented},
	{Name: "policy", Support: Implemented, Note: "the old name of routes; its routes come before those of routes, as in Pomerium"},
	{Name: "policy_file", Support: Refused, Note: "removed from Pomerium; put the routes in the config file"},
	{Name: "pomerium_debug", Support: Ignored, Note: "deprecated and ignored by Pomerium too"},
	{Name: "primary_color", Support: Implemented, Note: whyBranding},
	{Name: "programmatic_redirect_domain_whitelist", Support: Implemented},
	{Name: "proxy_log_level", Support: Ignored, Note: "the proxy logs at log_level; its successful requests are logged at debug"},
	{Name: "routes", Support: Implemented},
	{Name: "runtime_flags", Support: Implemented, Note: "pomerium_jwt_endpoint turns /.pomerium/jwt on; the other flags tune Pomerium's internals and are ignored with a warning"},
	{Name: "secondary_color", Support: Implemented, Note: whyBranding},
	{Name: "services", Support: Implemented},
	{Name: "set_response_headers", Support: Implemented},
	{Name: "shared_secret", Support: Implemented},
	{Name: "shared_secret_file", Support: Implemented},
	{Name: "signing_key", Support: Implemented},
	{Name: "signing_key_file", Support: Implemented},
	{Name: "signout_redirect_url", Support: Implemented},
	{Name: "skip_xff_append", Support: Implemented, Note: "the TCP peer is not appended; X-Forwarded-For entries the client could forge (beyond xff_num_trusted_hops) are dropped either way"},
	{Name: "ssh_address", Support: Refused, Note: whySSH},
	{Name: "ssh_host_key_files", Support: Refused, Note: whySSH},
	{Name: "ssh_host_keys", Support: Refused, Note: whySSH},
	{Name: "ssh_rls_additional_entries", Support: Refused, Note: whySSH},
	{Name: "ssh_rls_enabled", Support: Refused, Note: whySSH},
	{Name: "ssh_user_ca_key", Support: Refused, Note: whySSH},
	{Name: "ssh_user_ca_key_file", Support: Refused, Note: whySSH},
	{Name: "timeout_idle", Support: Implemented},
	{Name: "timeout_read", Support: Implemented},
	{Name: "timeout_write", Support: Implemented},
	{Name: "tls_derive", Support: Refused, Note: "deriving internal certificates from shared_secret is not implemented; set certificates"},
	{Name: "tracing_datadog_address", Support: Ignored, Note: "deprecated and ignored by Pomerium too"},
	{Name: "tracing_jaeger_agent_endpoint", Support: Ignored, Note: "deprecated and ignored by Pomerium too"},
	{Name: "tracing_jaeger_collector_endpoint", Support: Ignored, Note: "deprecated and ignored by Pomerium too"},
	{Name: "tracing_otlp_endpoint", Support: Implemented, Note: "the older name of otel_exporter_otlp_endpoint"},
	{Name: "tracing_otlp_protocol", Support: Implemented, Note: "the older name of otel_exporter_otlp_protocol"},
	{Name: "tracing_provider", Support: Implemented, Note: "the older name: otlp is otel_traces_exporter: otlp"},
	{Name: "tracing_sample_rate", Support: Implemented, Note: "the older name of otel_traces_sampler_arg"},
	{Name: "tracing_zipkin_endpoint", Support: Ignored, Note: "deprecated and ignored by Pomerium too"},
	{Name: "use_proxy_protocol", Support: Refused, Note: "the PROXY protocol is not implemented: run the load balancer in HTTP mode and set xff_num_trusted_hops"},
	{Name: "xff_num_trusted_hops", Support: Implemented},

	// Route options.
	{Route: true, Name: "allow_any_authenticated_user", Support: Implemented},
	{Route: true, Name: "allow_public_unauthenticated_access", Support: Implemented},
	{Route: true, Name: "allow_spdy", Support: Implemented},
	{Route: true, Name: "allow_websockets", Support: Implemented},
	{Route: true, Name: "allowed_domains", Support: Implemented},
	{Route: true, Name: "allowed_idp_claims", Support: Implemented},
	{Route: true, Name: "allowed_users", Support: Implemented},
	{Route: true, Name: "bearer_token_format", Support: Implemented, Note: "default only, as the global option"},
	{Route: true, Name: "circuit_breaker_thresholds", Support: Ignored, Note: whyCluster},
	{Route: true, Name: "cors_allow_preflight", Support: Implemented},
	{Route: true, Name: "depends_on", Support: Ignored, Note: "Pomerium signs the user in to these hosts with the route; gatehouse signs in to each host on its first visit"},
	{Route: true, Name: "description", Support: Implemented, Note: "shown on /.pomerium/routes"},
	{Route: true, Name: "enable_google_cloud_serverless_authentication", Support: Refused, Note: whyGCP},
	{Route: true, Name: "from", Support: Implemented},
	{Route: true, Name: "health_checks", Support: Ignored, Note: whyCluster},
	{Route: true, Name: "healthy_panic_threshold", Support: Ignored, Note: whyCluster},
	{Route: true, Name: "host_path_regex_rewrite_pattern", Support: Implemented, Note: "on the normalized path, after policy"},
	{Route: true, Name: "host_path_regex_rewrite_substitution", Support: Implemented},
	{Route: true, Name: "host_rewrite", Support: Implemented, Note: "host_rewrite, host_rewrite_header, host_path_regex_rewrite_pattern and preserve_host_header apply in that order of precedence, as in Pomerium"},
	{Route: true, Name: "host_rewrite_header", Support: Implemented, Note: "the client's Host stays when the header is missing or empty, as in Envoy"},
	{Route: true, Name: "identity_providers", Support: Refused, Note: whyMultiIdP},
	{Route: true, Name: "idle_timeout", Support: Implemented},
	{Route: true, Name: "idp_access_token_allowed_audiences", Support: Ignored, Note: "only read with bearer_token_format idp_access_token, which gatehouse refuses"},
	{Route: true, Name: "idp_client_id", Support: Refused, Note: whyRouteIdP},
	{Route: true, Name: "idp_client_secret", Support: Refused, Note: whyRouteIdP},
	{Route: true, Name: "jwt_groups_filter", Support: Refused, Note: "group filtering of the identity JWT is not implemented: every group would reach the upstream"},
	{Route: true, Name: "jwt_issuer_format", Support: Implemented, Note: "wins over the global jwt_issuer_format"},
	{Route: true, Name: "kubernetes_service_account_token", Support: Implemented, Note: "the upstream gets Authorization: Bearer <token> in place of the client's, and Impersonate-User (email) and Impersonate-Group (groups) of the signed-in user; a client's Impersonate-* headers are removed; websockets and SPDY are tunnelled, as in Pomerium"},
	{Route: true, Name: "kubernetes_service_account_token_file", Support: Implemented, Note: "read again at most every 30 seconds, so a rotated token is used"},
	{Route: true, Name: "load_balancing_policy", Support: Implemented, Note: "round_robin (default), random, least_request (fewest requests in flight of two random picks), ring_hash and maglev (both consistent hashing of the session, else the client IP); url,weight in to weighs each"},
	{Route: true, Name: "logo_url", Support: Implemented, Note: "shown on /.pomerium/routes"},
	{Route: true, Name: "mcp", Support: Refused, Note: whyMCP},
	{Route: true, Name: "name", Support: Implemented, Note: "shown on /.pomerium/routes"},
	{Route: true, Name: "outlier_detection", Support: Ignored, Note: whyCluster},
	{Route: true, Name: "pass_identity_headers", Support: Implemented},
	{Route: true, Name: "path", Support: Implemented},
	{Route: true, Name: "policy", Support: Implemented},
	{Route: true, Name: "prefix", Support: Implemented},
	{Route: true, Name: "prefix_rewrite", Support: Implemented},
	{Route: true, Name: "preserve_host_header", Support: Implemented},
	{Route: true, Name: "redirect", Support: Implemented, Note: "after the route's policy, as in Pomerium; https_redirect, scheme_redirect, host_redirect, port_redirect, path_redirect, prefix_rewrite, response_code (301 default), strip_query with Envoy's meaning"},
	{Route: true, Name: "regex", Support: Implemented},
	{Route: true, Name: "regex_priority_order", Support: Refused, Note: "routes match in config order; reorder the routes instead"},
	{Route: true, Name: "regex_rewrite_pattern", Support: Implemented},
	{Route: true, Name: "regex_rewrite_substitution", Support: Implemented},
	{Route: true, Name: "remove_request_headers", Support: Implemented},
	{Route: true, Name: "response", Support: Implemented, Note: "status and body, after the route's policy, as in Pomerium; text/plain unless set_response_headers sets Content-Type"},
	{Route: true, Name: "rewrite_response_headers", Support: Implemented, Note: "header, prefix, value: a value starting with prefix gets value instead of it"},
	{Route: true, Name: "set_request_headers", Support: Implemented, Note: "with Pomerium's ${pomerium.*} values"},
	{Route: true, Name: "set_response_headers", Support: Implemented},
	{Route: true, Name: "show_error_details", Support: Implemented, Note: "the 403 page lists the policy's reasons"},
	{Route: true, Name: "sub_policies", Support: Refused, Note: "a Pomerium Enterprise feature; write the rules in policy"},
	{Route: true, Name: "timeout", Support: Implemented},
	{Route: true, Name: "tls_client_cert", Support: Implemented},
	{Route: true, Name: "tls_client_cert_file", Support: Implemented},
	{Route: true, Name: "tls_client_key", Support: Implemented},
	{Route: true, Name: "tls_client_key_file", Support: Implemented},
	{Route: true, Name: "tls_custom_ca", Support: Implemented},
	{Route: true, Name: "tls_custom_ca_file", Support: Implemented},
	{Route: true, Name: "tls_downstream_client_ca", Support: Implemented, Note: "replaces downstream_mtls.ca for the route"},
	{Route: true, Name: "tls_downstream_client_ca_file", Support: Implemented, Note: "replaces downstream_mtls.ca_file for the route"},
	{Route: true, Name: "tls_downstream_server_name", Support: Ignored, Note: "picks Envoy's filter chain for downstream mTLS; gatehouse picks the server certificate by the client's SNI"},
	{Route: true, Name: "tls_server_name", Support: Implemented},
	{Route: true, Name: "tls_skip_verify", Support: Implemented},
	{Route: true, Name: "tls_upstream_allow_renegotiation", Support: Implemented, Note: "lets an https upstream renegotiate TLS 1.2 (HTTP/1.1 connections); TLS 1.3 has no renegotiation"},
	{Route: true, Name: "tls_upstream_server_name", Support: Implemented, Note: "the name sent and verified for https upstreams; wins over tls_server_name"},
	{Route: true, Name: "to", Support: Implemented, Note: "http://, https:// and h2c:// (HTTP/2 without TLS, for gRPC upstreams), with url,weight"},
	{Route: true, Name: "upstream_tunnel", Support: Refused, Note: whySSH},
}

// gatehouseOnlyOptions are options gatehouse reads that Pomerium does not.
var gatehouseOnlyOptions = map[string]string{
	"log_format":    "json (default) or text",
	"cookie_secure": "kept for older Pomerium configs; the cookie is Secure whenever the browser's URL is https",
	"routes[].id":   "a stable route id for logs and the ext_authz context (derived when unset)",
	// Reliability (issue 13): Pomerium has no equivalent of these.
	"shutdown_grace_period":           "on SIGTERM, how long /readyz fails while every listener keeps serving, before draining (default 5s)",
	"authenticate_databroker_timeout": "how long a sign-in, sign-out or user page waits for the databroker before its clear page (default 3s)",
	"signout_queue_dir":               "where authenticate keeps sign-outs not yet written to the databroker, retried across restarts (default: memory)",
}

// pomeriumOption returns the table's row for a key, or nil.
func pomeriumOption(name string, route bool) *PomeriumOption {
	for i := range pomeriumOptions {
		if o := &pomeriumOptions[i]; o.Name == name && o.Route == route {
			return o
		}
	}
	return nil
}

// PomeriumOptions returns a copy of the compatibility table.
func PomeriumOptions() []PomeriumOption {
	return append([]PomeriumOption(nil), pomeriumOptions...)
}

// PomeriumEndpoint is one of the HTTP endpoints Pomerium serves that users
// and scripts call, and what gatehouse does with it.
type PomeriumEndpoint struct {
	Path    string
	Support Support
	Note    string
}

// pomeriumEndpoints lists the endpoints of Pomerium that users and scripts
// call, for docs/pomerium-compatibility.md.
var pomeriumEndpoints = []PomeriumEndpoint{
	{"/.pomerium/", Implemented, "the signed-in user's page (HTML, or JSON for API clients)"},
	{"/.pomerium/user", Implemented, "the identity JWT's claims as JSON"},
	{"/.pomerium/jwt", Implemented, "the raw identity JWT; off unless runtime_flags has pomerium_jwt_endpoint: true, as in Pomerium"},
	{"/.pomerium/routes", Implemented, "the routes this user may open, with name, description and logo_url"},
	{"/.pomerium/api/v1/routes", Implemented, "the same as JSON"},
	{"/.pomerium/sign_out", Implemented, "a confirmation form; its POST signs out"},
	{"/.pomerium/api/v1/login", Implemented, "programmatic login: the sign-in URL as text"},
	{"/.pomerium/callback/", Implemented, "the sign-in hand-off from authenticate"},
	{"/.well-known/pomerium", Implemented, "on every route host"},
	{"/.well-known/pomerium/jwks.json", Implemented, "on every route host and the authenticate host"},
	{"/ping, /healthz", Implemented, "on every host"},
	{"/robots.txt", Implemented, "disallows every crawler on every route host, as Pomerium does"},
	{"X-Pomerium-Jwt-Assertion-For", Implemented, "the identity JWT a request carries (X-Pomerium-Jwt-Assertion-For, else X-Pomerium-Jwt-Assertion) is passed on under this name on routes with pass_identity_headers, only when this deployment signed it and it has not expired; anything else is removed"},
	{"/.pomerium/webauthn, /.pomerium/device-enrolled", Refused, "device identity (WebAuthn) is not implemented"},
}

// CompatibilityMarkdown renders docs/pomerium-compatibility.md from the
// compatibility table.
func CompatibilityMarkdown() string {
	var b strings.Builder
	count := func(route bool, s Support) int {
		n := 0
		for _, o := range pomeriumOptions {
			if o.Route == route && o.Support == s {
				n++
			}
		}
		return n
	}
	b.WriteString("# Pomerium compatibility\n\n")
	b.WriteString("<!-- Generated from pkg/config/pomerium.go by TestPomeriumCompatibility; run\n")
	b.WriteString("     go test ./pkg/config -run TestPomeriumCompatibility -update-compat to rewrite it. -->\n\n")
	b.WriteString("Every option of Pomerium's configuration (the list in `docs/pomerium-options.txt`,\n")
	b.WriteString("taken from Pomerium's config structs) and what gatehouse does with it:\n\n")
	b.WriteString("- **implemented**: the option has Pomerium's meaning;\n")
	b.WriteString("- **accepted, ignored**: the option is accepted so that a Pomerium config starts, and\n")
	b.WriteString("  `gatehouse validate` and start-up print one warning naming every such option. Only\n")
	b.WriteString("  options that decide nothing about who gets in or where a request goes are ignored;\n")
	b.WriteString("- **refused**: the configuration stops with the reason below.\n\n")
	b.WriteString("A key that is neither Pomerium's nor gatehouse's is an error with a \"did you mean\".\n\n")
	fmt.Fprintf(&b, "| | implemented | accepted, ignored | refused | total |\n|---|---|---|---|---|\n")
	for _, route := range []bool{false, true} {
		name := "global options"
		if route {
			name = "route options"
		}
		i, g, r := count(route, Implemented), count(route, Ignored), count(route, Refused)
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d |\n", name, i, g, r, i+g+r)
	}
	for _, route := range []bool{false, true} {
		if route {
			b.WriteString("\n## Route options\n\n")
		} else {
			b.WriteString("\n## Global options\n\n")
		}
		b.WriteString("| option | gatehouse | notes |\n|---|---|---|\n")
		rows := make([]PomeriumOption, 0, len(pomeriumOptions))
		for _, o := range pomeriumOptions {
			if o.Route == route {
				rows = append(rows, o)
			}
		}
		sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
		for _, o := range rows {
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", o.Name, o.Support, o.Note)
		}
	}
	b.WriteString("\n## Options only gatehouse reads\n\n| option | meaning |\n|---|---|\n")
	names := make([]string, 0, len(gatehouseOnlyOptions))
	for k := range gatehouseOnlyOptions {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, "| `%s` | %s |\n", k, gatehouseOnlyOptions[k])
	}
	b.WriteString("\n## Endpoints\n\n| endpoint | gatehouse | notes |\n|---|---|---|\n")
	for _, e := range pomeriumEndpoints {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", e.Path, e.Support, e.Note)
	}
	return b.String()
}

// RuntimeFlagJWTEndpoint is the runtime flag that turns /.pomerium/jwt on.
const RuntimeFlagJWTEndpoint = "pomerium_jwt_endpoint"

// JWTEndpointEnabled reports whether /.pomerium/jwt is served: off unless
// runtime_flags sets pomerium_jwt_endpoint, as in current Pomerium (the
// raw JWT in a page any script on the route's origin can fetch is a
// credential for every upstream that trusts it).
func (c *Config) JWTEndpointEnabled() bool { return c.RuntimeFlags[RuntimeFlagJWTEndpoint] }

// warnIgnored adds the one warning that names every Pomerium option this
// configuration sets that gatehouse accepts without effect.
func (c *Config) warnIgnored() {
	var flags []string
	for f := range c.RuntimeFlags {
		if f != RuntimeFlagJWTEndpoint {
			flags = append(flags, "runtime_flags."+f)
		}
	}
	sort.Strings(flags)
	for _, f := range flags {
		c.ignored = append(c.ignored, ignoredKey{key: f, line: c.lines["runtime_flags"]})
	}
	if len(c.ignored) == 0 {
		return
	}
	parts := make([]string, 0, len(c.ignored))
	for _, k := range c.ignored {
		if k.line > 0 {
			parts = append(parts, fmt.Sprintf("%s (line %d)", k.key, k.line))
		} else {
			parts = append(parts, k.key)
		}
	}
	c.warnings = append(c.warnings, "Pomerium options with no effect in gatehouse, ignored (see docs/pomerium-compatibility.md): "+strings.Join(parts, ", "))
}
