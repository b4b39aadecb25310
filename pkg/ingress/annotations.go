package ingress

import (
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// AnnotationPrefix is the prefix of the route-option annotations, Pomerium's:
// ingress.pomerium.io/<route option>.
const AnnotationPrefix = "ingress.pomerium.io/"

// kind says how an annotation's value becomes a route option.
type kind int

const (
	kindString kind = iota // the value as is
	kindYAML               // the value read as YAML (JSON is YAML): booleans, durations, lists, maps, PPL
)

// routeAnnotations are the ingress.pomerium.io/<name> annotations that set
// the route option <name>, Pomerium's list (its base and policy
// annotations) minus the Envoy-only ones gatehouse has no equivalent for.
var routeAnnotations = map[string]kind{
	"allow_any_authenticated_user":         kindYAML,
	"allow_public_unauthenticated_access":  kindYAML,
	"allow_spdy":                           kindYAML,
	"allow_websockets":                     kindYAML,
	"allowed_domains":                      kindYAML,
	"allowed_idp_claims":                   kindYAML,
	"allowed_users":                        kindYAML,
	"bearer_token_format":                  kindString,
	"cors_allow_preflight":                 kindYAML,
	"description":                          kindString,
	"host_path_regex_rewrite_pattern":      kindString,
	"host_path_regex_rewrite_substitution": kindString,
	"host_rewrite":                         kindString,
	"host_rewrite_header":                  kindString,
	"idle_timeout":                         kindString,
	"jwt_issuer_format":                    kindString,
	"load_balancing_policy":                kindString,
	"logo_url":                             kindString,
	"name":                                 kindString,
	"pass_identity_headers":                kindYAML,
	"policy":                               kindYAML,
	"prefix_rewrite":                       kindString,
	"preserve_host_header":                 kindYAML,
	"regex_rewrite_pattern":                kindString,
	"regex_rewrite_substitution":           kindString,
	"remove_request_headers":               kindYAML,
	"rewrite_response_headers":             kindYAML,
	"set_request_headers":                  kindYAML,
	"set_response_headers":                 kindYAML,
	"show_error_details":                   kindYAML,
	"timeout":                              kindString,
	"tls_server_name":                      kindString,
	"tls_skip_verify":                      kindYAML,
	"tls_upstream_allow_renegotiation":     kindYAML,
	"tls_upstream_server_name":             kindString,
}

// Annotations that change how the Ingress is translated rather than set
// one route option.
const (
	annSecureUpstream = "secure_upstream"        // "true": the upstream speaks HTTPS
	annPathRegex      = "path_regex"             // "true": ImplementationSpecific paths are regular expressions
	annServiceProxy   = "service_proxy_upstream" // "true": the Service's cluster DNS name, not its endpoints
)

// Annotations naming a Secret of the Ingress's namespace.
const (
	annTLSCustomCASecret          = "tls_custom_ca_secret"            // key ca.crt → tls_custom_ca
	annTLSClientSecret            = "tls_client_secret"               // kubernetes.io/tls → tls_client_cert/key
	annTLSDownstreamClientCA      = "tls_downstream_client_ca_secret" // key ca.crt → tls_downstream_client_ca
	annSetRequestHeadersSecret    = "set_request_headers_secret"      // every key → set_request_headers
	annSetResponseHeadersSecret   = "set_response_headers_secret"     // every key → set_response_headers
	annServiceAccountTokenSecret  = "kubernetes_service_account_token_secret"
	serviceAccountTokenSecretKey  = "token"
	caSecretKey                   = "ca.crt"
	http01SolverLabel             = "acme.cert-manager.io/http01-solver"
	defaultClassAnnotation        = "ingressclass.kubernetes.io/is-default-class"
	legacyIngressClassAnnotation  = "kubernetes.io/ingress.class"
	pomeriumDefaultControllerName = "pomerium.io/ingress-controller"
)

var (
	flagAnnotations   = map[string]bool{annSecureUpstream: true, annPathRegex: true, annServiceProxy: true}
	secretAnnotations = map[string]bool{
		annTLSCustomCASecret: true, annTLSClientSecret: true, annTLSDownstreamClientCA: true,
		annSetRequestHeadersSecret: true, annSetResponseHeadersSecret: true, annServiceAccountTokenSecret: true,
	}
	// unsupportedAnnotations are Pomerium annotations gatehouse refuses,
	// with the reason: an Ingress that relies on them would not behave
	// as its author expects.
	unsupportedAnnotations = map[string]string{
		"allowed_groups":                     "removed from Pomerium too; use policy with the groups criterion",
		"circuit_breaker_thresholds":         "Envoy-only; gatehouse has no circuit breaker",
		"depends_on":                         "not supported by gatehouse",
		"health_checks":                      "Envoy-only; gatehouse has no active upstream health checks",
		"healthy_panic_threshold":            "Envoy-only",
		"idp_access_token_allowed_audiences": "not supported by gatehouse",
		"outlier_detection":                  "Envoy-only",
		"tcp_upstream":                       "TCP routes are not supported by gatehouse",
		"udp_upstream":                       "UDP routes are not supported by gatehouse",
		"identity_provider_secret":           "per-route identity providers are refused by gatehouse's configuration too",
	}
)

// annotations is an Ingress's ingress.pomerium.io annotations, sorted out.
type annotations struct {
	route   map[string]any    // route option → value
	flags   map[string]bool   // secure_upstream, path_regex, service_proxy_upstream
	secrets map[string]string // secret annotation → Secret name
}

// parseAnnotations reads the ingress.pomerium.io annotations of an Ingress.
// An unknown annotation, an unsupported one or a value that is not what
// its option takes is an error naming the annotation: nothing is dropped
// silently. Other annotations (cert-manager's, kubectl's) are ignored.
func parseAnnotations(in map[string]string) (*annotations, error) {
	a := &annotations{route: map[string]any{}, flags: map[string]bool{}, secrets: map[string]string{}}
	var errs []string
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, full := range keys {
		name, ok := strings.CutPrefix(full, AnnotationPrefix)
		if !ok {
			continue
		}
		val := in[full]
		switch {
		case flagAnnotations[name]:
			b, err := parseBool(val)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", full, err))
				continue
			}
			a.flags[name] = b
		case secretAnnotations[name]:
			if strings.TrimSpace(val) == "" {
				errs = append(errs, fmt.Sprintf("%s: names no Secret", full))
				continue
			}
			a.secrets[name] = strings.TrimSpace(val)
		case unsupportedAnnotations[name] != "":
			errs = append(errs, fmt.Sprintf("%s: unsupported: %s", full, unsupportedAnnotations[name]))
		default:
			k, known := routeAnnotations[name]
			if !known {
				errs = append(errs, fmt.Sprintf("unknown annotation %s", full))
				continue
			}
			if k == kindString {
				a.route[name] = val
				continue
			}
			var v any
			if err := yaml.Unmarshal([]byte(val), &v); err != nil {
				errs = append(errs, fmt.Sprintf("%s: not valid YAML or JSON: %s", full, strings.TrimPrefix(err.Error(), "yaml: ")))
				continue
			}
			a.route[name] = v
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return a, nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		return true, nil
	case "false", "":
		return false, nil
	}
	return false, fmt.Errorf("want \"true\" or \"false\", got %q", s)
}
