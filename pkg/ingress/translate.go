package ingress

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// Cluster is what translating an Ingress reads besides the Ingress: the
// informers' caches in the controller, maps in tests. A missing object is
// nil, not an error.
type Cluster interface {
	Service(namespace, name string) *corev1.Service
	// EndpointSlices returns the slices of a Service (label
	// kubernetes.io/service-name).
	EndpointSlices(namespace, service string) []*discoveryv1.EndpointSlice
	Secret(namespace, name string) *corev1.Secret
}

// Route is one route an Ingress rule path becomes, as the configuration
// file would spell it (Pomerium's option names), so that the configuration
// package validates it exactly as it validates a file.
type Route map[string]any

// Translation is what one Ingress becomes.
type Translation struct {
	Routes []Route
	// Certificates are the PEM pairs of the Ingress's TLS Secrets, served
	// by SNI.
	Certificates []Certificate
	// Warnings are problems that do not stop the Ingress from serving (a
	// TLS Secret not there yet, a Service without ready endpoints).
	Warnings []string
}

// Certificate is a PEM certificate chain and its key, from a
// kubernetes.io/tls Secret.
type Certificate struct {
	Secret    string // namespace/name
	Cert, Key string
}

// TranslateOptions are the choices that apply to every Ingress.
type TranslateOptions struct {
	// ServiceDNS sends traffic to a Service's cluster DNS name
	// (name.namespace.svc.cluster.local:port, kube-proxy balancing) rather
	// than to its ready endpoints' addresses, for every Ingress; the
	// ingress.pomerium.io/service_proxy_upstream annotation does the same
	// for one.
	ServiceDNS bool
	// ClusterDomain is the cluster's DNS domain (default cluster.local).
	ClusterDomain string
}

// Translate turns an Ingress into routes: one per rule path (and one for
// the default backend), with the route options of its
// ingress.pomerium.io annotations. An error is about this Ingress alone:
// the caller refuses it and keeps every other.
func Translate(ing *networkingv1.Ingress, cl Cluster, opts TranslateOptions) (*Translation, error) {
	if opts.ClusterDomain == "" {
		opts.ClusterDomain = "cluster.local"
	}
	tr := &Translation{}
	var ann *annotations
	if strings.EqualFold(ing.Labels[http01SolverLabel], "true") {
		// cert-manager's HTTP-01 solver Ingress: the ACME server must
		// reach it without signing in, with its own Host.
		ann = &annotations{route: map[string]any{"allow_public_unauthenticated_access": true, "preserve_host_header": true},
			flags: map[string]bool{}, secrets: map[string]string{}}
	} else {
		var err error
		if ann, err = parseAnnotations(ing.Annotations); err != nil {
			return nil, err
		}
	}
	if err := applySecretAnnotations(ann, ing.Namespace, cl); err != nil {
		return nil, err
	}

	type path struct {
		host string
		p    networkingv1.HTTPIngressPath
	}
	var paths []path
	if b := ing.Spec.DefaultBackend; b != nil {
		// Pomerium's rule: the default backend serves the one host of the
		// one TLS entry.
		if len(ing.Spec.TLS) != 1 || len(ing.Spec.TLS[0].Hosts) != 1 {
			return nil, errors.New("spec.defaultBackend needs exactly one spec.tls entry with exactly one host, which it serves")
		}
		pt := networkingv1.PathTypePrefix
		paths = append(paths, path{ing.Spec.TLS[0].Hosts[0], networkingv1.HTTPIngressPath{Path: "/", PathType: &pt, Backend: *b}})
	}
	for i, rule := range ing.Spec.Rules {
		if rule.Host == "" {
			return nil, fmt.Errorf("spec.rules[%d]: a host is required (gatehouse routes by host)", i)
		}
		if rule.HTTP == nil {
			return nil, fmt.Errorf("spec.rules[%d] (%s): http is required", i, rule.Host)
		}
		for _, p := range rule.HTTP.Paths {
			paths = append(paths, path{rule.Host, p})
		}
	}
	if len(paths) == 0 {
		return nil, errors.New("no rules and no defaultBackend: nothing to route")
	}
	for _, p := range paths {
		r, warn, err := pathRoute(ing, p.host, p.p, ann, cl, opts)
		if err != nil {
			return nil, fmt.Errorf("host %s path %q: %w", p.host, p.p.Path, err)
		}
		tr.Routes = append(tr.Routes, r)
		tr.Warnings = append(tr.Warnings, warn...)
	}

	for _, t := range ing.Spec.TLS {
		if t.SecretName == "" {
			continue
		}
		s := cl.Secret(ing.Namespace, t.SecretName)
		if s == nil {
			tr.Warnings = append(tr.Warnings, fmt.Sprintf("TLS Secret %s/%s not found (yet): its hosts get the default certificate until it exists", ing.Namespace, t.SecretName))
			continue
		}
		crt, key := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
		if len(crt) == 0 || len(key) == 0 {
			return nil, fmt.Errorf("TLS Secret %s/%s: needs %s and %s", ing.Namespace, t.SecretName, corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
		}
		tr.Certificates = append(tr.Certificates, Certificate{Secret: ing.Namespace + "/" + t.SecretName, Cert: string(crt), Key: string(key)})
	}
	return tr, nil
}

// pathRoute is the route of one rule path.
func pathRoute(ing *networkingv1.Ingress, host string, p networkingv1.HTTPIngressPath, ann *annotations, cl Cluster, opts TranslateOptions) (Route, []string, error) {
	r := Route{}
	for k, v := range ann.route {
		r[k] = v
	}
	r["from"] = (&url.URL{Scheme: "https", Host: host}).String()
	if p.PathType == nil {
		return nil, nil, errors.New("pathType is required")
	}
	switch *p.PathType {
	case networkingv1.PathTypeExact:
		r["path"] = p.Path
	case networkingv1.PathTypePrefix:
		// Kubernetes' Prefix matches whole path elements: /foo matches
		// /foo and /foo/bar, not /foobar.
		switch {
		case p.Path == "" || p.Path == "/":
			r["prefix"] = "/"
		default:
			r["regex"] = regexpQuote(strings.TrimSuffix(p.Path, "/")) + "(/.*)?"
		}
	case networkingv1.PathTypeImplementationSpecific:
		switch {
		case ann.flags[annPathRegex]:
			r["regex"] = p.Path
		case p.Path == "":
			r["prefix"] = "/"
		default:
			r["prefix"] = p.Path
		}
	default:
		return nil, nil, fmt.Errorf("unknown pathType %q", *p.PathType)
	}
	to, warn, err := upstreams(ing.Namespace, p.Backend, ann, cl, opts)
	if err != nil {
		return nil, nil, err
	}
	r["to"] = to
	if ann.flags[annSecureUpstream] && len(warn) == 0 && !ann.flags[annServiceProxy] && !opts.ServiceDNS {
		// Endpoint addresses are IPs: check the upstream's certificate
		// against the Service's DNS name, as Pomerium does.
		if _, set := r["tls_server_name"]; !set {
			r["tls_server_name"] = fmt.Sprintf("%s.%s.svc.%s", p.Backend.Service.Name, ing.Namespace, opts.ClusterDomain)
		}
	}
	return r, warn, nil
}

// upstreams returns the route's to: the ready endpoints of the backend
// Service's port, or its cluster DNS name (when asked, for an
// ExternalName Service's name, and when no endpoint is ready).
func upstreams(ns string, b networkingv1.IngressBackend, ann *annotations, cl Cluster, opts TranslateOptions) ([]string, []string, error) {
	if b.Resource != nil {
		return nil, nil, errors.New("resource backends are not supported; use a service backend")
	}
	if b.Service == nil {
		return nil, nil, errors.New("backend.service is required")
	}
	scheme := "http"
	if ann.flags[annSecureUpstream] {
		scheme = "https"
	}
	name := b.Service.Name
	svc := cl.Service(ns, name)
	if svc == nil {
		return nil, nil, fmt.Errorf("service %s/%s not found", ns, name)
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		q := &svc.Spec.Ports[i]
		if (b.Service.Port.Name != "" && q.Name == b.Service.Port.Name) || (b.Service.Port.Name == "" && q.Port == b.Service.Port.Number) {
			sp = q
			break
		}
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		port := b.Service.Port.Number
		if sp != nil {
			port = sp.Port
		}
		if port == 0 {
			return nil, nil, fmt.Errorf("service %s/%s: ExternalName service needs a port number", ns, name)
		}
		return []string{scheme + "://" + net.JoinHostPort(svc.Spec.ExternalName, strconv.Itoa(int(port)))}, nil, nil
	}
	if sp == nil {
		want := b.Service.Port.Name
		if want == "" {
			want = strconv.Itoa(int(b.Service.Port.Number))
		}
		return nil, nil, fmt.Errorf("service %s/%s has no port %s", ns, name, want)
	}
	dns := fmt.Sprintf("%s://%s.%s.svc.%s:%d", scheme, name, ns, opts.ClusterDomain, sp.Port)
	if opts.ServiceDNS || ann.flags[annServiceProxy] {
		return []string{dns}, nil, nil
	}
	seen := map[string]bool{}
	var to []string
	for _, slice := range cl.EndpointSlices(ns, name) {
		var port int32
		for _, ep := range slice.Ports {
			if ep.Port == nil {
				continue
			}
			pname := ""
			if ep.Name != nil {
				pname = *ep.Name
			}
			if pname == sp.Name {
				port = *ep.Port
				break
			}
		}
		if port == 0 {
			continue
		}
		for _, e := range slice.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, a := range e.Addresses {
				u := scheme + "://" + net.JoinHostPort(a, strconv.Itoa(int(port)))
				if !seen[u] {
					seen[u] = true
					to = append(to, u)
				}
			}
		}
	}
	if len(to) == 0 {
		return []string{dns}, []string{fmt.Sprintf("service %s/%s port %s has no ready endpoints: routing to its cluster DNS name", ns, name, portName(sp))}, nil
	}
	sort.Strings(to)
	return to, nil, nil
}

func portName(sp *corev1.ServicePort) string {
	if sp.Name != "" {
		return sp.Name
	}
	return strconv.Itoa(int(sp.Port))
}

// applySecretAnnotations reads the Secrets that annotations name into
// route options.
func applySecretAnnotations(ann *annotations, ns string, cl Cluster) error {
	names := make([]string, 0, len(ann.secrets))
	for k := range ann.secrets {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		full := AnnotationPrefix + k
		s := cl.Secret(ns, ann.secrets[k])
		if s == nil {
			return fmt.Errorf("%s: Secret %s/%s not found", full, ns, ann.secrets[k])
		}
		need := func(key string) (string, error) {
			v := s.Data[key]
			if len(v) == 0 {
				return "", fmt.Errorf("%s: Secret %s/%s has no %s", full, ns, s.Name, key)
			}
			return string(v), nil
		}
		var err error
		switch k {
		case annTLSCustomCASecret:
			ann.route["tls_custom_ca"], err = need(caSecretKey)
		case annTLSDownstreamClientCA:
			ann.route["tls_downstream_client_ca"], err = need(caSecretKey)
		case annTLSClientSecret:
			if ann.route["tls_client_cert"], err = need(corev1.TLSCertKey); err == nil {
				ann.route["tls_client_key"], err = need(corev1.TLSPrivateKeyKey)
			}
		case annServiceAccountTokenSecret:
			ann.route["kubernetes_service_account_token"], err = need(serviceAccountTokenSecretKey)
		case annSetRequestHeadersSecret, annSetResponseHeadersSecret:
			opt := strings.TrimSuffix(k, "_secret")
			m := map[string]any{}
			if prev, ok := ann.route[opt].(map[string]any); ok {
				for h, v := range prev {
					m[h] = v
				}
			}
			for h, v := range s.Data {
				if _, dup := m[h]; dup {
					return fmt.Errorf("%s: header %s is set by ingress.pomerium.io/%s too", full, h, opt)
				}
				m[h] = string(v)
			}
			ann.route[opt] = m
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// regexpQuote is regexp.QuoteMeta; a name of its own to say that the
// result goes into a route's regex option.
func regexpQuote(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// sortRoutes orders routes for first-match routing as Kubernetes ranks
// Ingress paths: by host, then Exact paths, then regular expressions, then
// prefixes longest first; ties keep their order (Ingress creation time,
// then name).
func sortRoutes(rs []Route) {
	rank := func(r Route) (string, int, int) {
		host, _ := r["from"].(string)
		switch {
		case r["path"] != nil:
			return host, 0, 0
		case r["regex"] != nil:
			s, _ := r["regex"].(string)
			return host, 1, -len(s)
		default:
			s, _ := r["prefix"].(string)
			return host, 2, -len(s)
		}
	}
	sort.SliceStable(rs, func(i, j int) bool {
		hi, ki, li := rank(rs[i])
		hj, kj, lj := rank(rs[j])
		if hi != hj {
			return hi < hj
		}
		if ki != kj {
			return ki < kj
		}
		return li < lj
	})
}
