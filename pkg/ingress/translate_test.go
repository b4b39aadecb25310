package ingress

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/config/configtest"
)

// fakeCluster is a Cluster of maps.
type fakeCluster struct {
	services map[string]*corev1.Service
	slices   map[string][]*discoveryv1.EndpointSlice
	secrets  map[string]*corev1.Secret
}

func (f *fakeCluster) Service(ns, name string) *corev1.Service { return f.services[ns+"/"+name] }
func (f *fakeCluster) EndpointSlices(ns, svc string) []*discoveryv1.EndpointSlice {
	return f.slices[ns+"/"+svc]
}
func (f *fakeCluster) Secret(ns, name string) *corev1.Secret { return f.secrets[ns+"/"+name] }

func ptr[T any](v T) *T { return &v }

func grafanaCluster() *fakeCluster {
	return &fakeCluster{
		services: map[string]*corev1.Service{"default/grafana": {
			ObjectMeta: metav1.ObjectMeta{Name: "grafana", Namespace: "default"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
				{Name: "http", Port: 3000, TargetPort: intstr.FromInt(3000)},
				{Name: "metrics", Port: 9090, TargetPort: intstr.FromInt(9090)},
			}},
		}},
		slices: map[string][]*discoveryv1.EndpointSlice{"default/grafana": {{
			Endpoints: []discoveryv1.Endpoint{
				{Addresses: []string{"10.0.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}},
				{Addresses: []string{"10.0.0.1"}},
				{Addresses: []string{"10.0.0.9"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(false)}},
			},
			Ports: []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(3001))}, {Name: ptr("metrics"), Port: ptr(int32(9091))}},
		}}},
		secrets: map[string]*corev1.Secret{},
	}
}

// guideIngress is the Grafana guide's Ingress.
func guideIngress() *networkingv1.Ingress {
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "grafana", Namespace: "default", Annotations: map[string]string{
			"cert-manager.io/issuer":                    "pomerium-issuer",
			"ingress.pomerium.io/policy":                `[{"allow":{"and":[{"domain":{"is":"example.com"}}]}}]`,
			"ingress.pomerium.io/pass_identity_headers": "true",
		}},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr("pomerium"),
			Rules: []networkingv1.IngressRule{{Host: "grafana.localhost.pomerium.io", IngressRuleValue: networkingv1.IngressRuleValue{
				HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
					Path: "/", PathType: ptr(networkingv1.PathTypePrefix),
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
						Name: "grafana", Port: networkingv1.ServiceBackendPort{Number: 3000}}},
				}}},
			}}},
			TLS: []networkingv1.IngressTLS{{Hosts: []string{"grafana.localhost.pomerium.io"}, SecretName: "grafana.localhost.pomerium.io-tls"}},
		},
	}
}

// parse validates routes the way the controller does: with settings, by
// the configuration package.
func parse(t *testing.T, routes []Route) (*config.Config, error) {
	t.Helper()
	var base map[string]any
	if err := yaml.Unmarshal([]byte(configtest.New().Set("authenticate_service_url", "https://authenticate.example.com").IdP("https://idp.example.com", "s").YAML()), &base); err != nil {
		t.Fatal(err)
	}
	doc := withRoutes(base, routes, nil, nil)
	data, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return config.Parse(data, "", nil)
}

func TestTranslateGuideIngress(t *testing.T) {
	tr, err := Translate(guideIngress(), grafanaCluster(), TranslateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Routes) != 1 {
		t.Fatalf("routes: %v", tr.Routes)
	}
	r := tr.Routes[0]
	if r["from"] != "https://grafana.localhost.pomerium.io" || r["prefix"] != "/" || r["pass_identity_headers"] != true {
		t.Fatalf("route: %v", r)
	}
	// Ready (or unknown) endpoints only, the Service port's target port, sorted.
	if got := r["to"]; !reflect.DeepEqual(got, []string{"http://10.0.0.1:3001", "http://10.0.0.2:3001"}) {
		t.Fatalf("to: %v", got)
	}
	if len(tr.Warnings) != 1 || !strings.Contains(tr.Warnings[0], "grafana.localhost.pomerium.io-tls") {
		t.Fatalf("missing TLS Secret should be a warning: %v", tr.Warnings)
	}
	cfg, err := parse(t, tr.Routes)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Routes[0].Evaluator == nil || !cfg.PassIdentityHeadersFor(&cfg.Routes[0]) {
		t.Fatalf("route: %+v", cfg.Routes[0])
	}
}

func TestTranslateBackends(t *testing.T) {
	cl := grafanaCluster()
	cl.services["default/ext"] = &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "grafana.example.net"}}
	cl.services["default/empty"] = &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
	for _, tc := range []struct {
		name    string
		ann     map[string]string
		backend networkingv1.ServiceBackendPort
		svc     string
		opts    TranslateOptions
		want    []string
		extra   map[string]any
		warn    string
		err     string
	}{
		{name: "port by name", backend: networkingv1.ServiceBackendPort{Name: "metrics"}, svc: "grafana", want: []string{"http://10.0.0.1:9091", "http://10.0.0.2:9091"}},
		{name: "secure upstream", ann: map[string]string{"ingress.pomerium.io/secure_upstream": "true"}, backend: networkingv1.ServiceBackendPort{Number: 3000}, svc: "grafana",
			want: []string{"https://10.0.0.1:3001", "https://10.0.0.2:3001"}, extra: map[string]any{"tls_server_name": "grafana.default.svc.cluster.local"}},
		{name: "service DNS by annotation", ann: map[string]string{"ingress.pomerium.io/service_proxy_upstream": "true"}, backend: networkingv1.ServiceBackendPort{Number: 3000}, svc: "grafana",
			want: []string{"http://grafana.default.svc.cluster.local:3000"}},
		{name: "service DNS by option", opts: TranslateOptions{ServiceDNS: true, ClusterDomain: "k8s.internal"}, backend: networkingv1.ServiceBackendPort{Number: 3000}, svc: "grafana",
			want: []string{"http://grafana.default.svc.k8s.internal:3000"}},
		{name: "external name", backend: networkingv1.ServiceBackendPort{Number: 443}, svc: "ext", want: []string{"http://grafana.example.net:443"}},
		{name: "no endpoints", backend: networkingv1.ServiceBackendPort{Number: 80}, svc: "empty", want: []string{"http://empty.default.svc.cluster.local:80"}, warn: "no ready endpoints"},
		{name: "unknown port", backend: networkingv1.ServiceBackendPort{Number: 1234}, svc: "grafana", err: "has no port 1234"},
		{name: "unknown service", backend: networkingv1.ServiceBackendPort{Number: 1}, svc: "nope", err: "service default/nope not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ing := guideIngress()
			ing.Spec.TLS = nil
			ing.Annotations = tc.ann
			be := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service
			be.Name, be.Port = tc.svc, tc.backend
			tr, err := Translate(ing, cl, tc.opts)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tr.Routes[0]["to"]; !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("to %v, want %v", got, tc.want)
			}
			for k, v := range tc.extra {
				if tr.Routes[0][k] != v {
					t.Fatalf("%s = %v, want %v", k, tr.Routes[0][k], v)
				}
			}
			if (tc.warn == "") != (len(tr.Warnings) == 0) || (tc.warn != "" && !strings.Contains(tr.Warnings[0], tc.warn)) {
				t.Fatalf("warnings %v, want %q", tr.Warnings, tc.warn)
			}
		})
	}
}

func TestTranslatePathTypes(t *testing.T) {
	ing := guideIngress()
	ing.Spec.TLS = nil
	be := ing.Spec.Rules[0].HTTP.Paths[0].Backend
	ing.Spec.Rules[0].HTTP.Paths = []networkingv1.HTTPIngressPath{
		{Path: "/", PathType: ptr(networkingv1.PathTypePrefix), Backend: be},
		{Path: "/api/", PathType: ptr(networkingv1.PathTypePrefix), Backend: be},
		{Path: "/login", PathType: ptr(networkingv1.PathTypeExact), Backend: be},
		{Path: "/static", PathType: ptr(networkingv1.PathTypeImplementationSpecific), Backend: be},
	}
	tr, err := Translate(ing, grafanaCluster(), TranslateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sortRoutes(tr.Routes)
	var got []string
	for _, r := range tr.Routes {
		for _, k := range []string{"path", "regex", "prefix"} {
			if v, ok := r[k]; ok {
				got = append(got, k+"="+v.(string))
			}
		}
	}
	want := []string{"path=/login", `regex=/api(/.*)?`, "prefix=/static", "prefix=/"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("routes %v, want %v", got, want)
	}
	cfg, err := parse(t, tr.Routes)
	if err != nil {
		t.Fatal(err)
	}
	// Prefix matches whole path elements.
	re := cfg.Routes[1].RegexRE
	for path, match := range map[string]bool{"/api": true, "/api/": true, "/api/x": true, "/apis": false} {
		if re.MatchString(path) != match {
			t.Errorf("Prefix /api/ on %s: %v", path, !match)
		}
	}

	ing.Annotations["ingress.pomerium.io/path_regex"] = "true"
	ing.Spec.Rules[0].HTTP.Paths = []networkingv1.HTTPIngressPath{{Path: "/v[0-9]+/.*", PathType: ptr(networkingv1.PathTypeImplementationSpecific), Backend: be}}
	tr, err = Translate(ing, grafanaCluster(), TranslateOptions{})
	if err != nil || tr.Routes[0]["regex"] != "/v[0-9]+/.*" {
		t.Fatalf("path_regex: %v %v", tr, err)
	}
}

func TestAnnotations(t *testing.T) {
	ing := guideIngress()
	ing.Spec.TLS = nil
	ing.Annotations = map[string]string{
		"ingress.pomerium.io/allow_websockets":     "true",
		"ingress.pomerium.io/preserve_host_header": "true",
		"ingress.pomerium.io/timeout":              "30s",
		"ingress.pomerium.io/tls_skip_verify":      "true",
		"ingress.pomerium.io/set_request_headers":  `{"X-Tenant": "acme"}`,
		"ingress.pomerium.io/allowed_domains":      `["example.com"]`,
		"ingress.pomerium.io/allowed_users":        "alice@example.com,bob@example.com",
		"ingress.pomerium.io/secure_upstream":      "true",
		"kubernetes.io/ingress.class":              "ignored",
	}
	tr, err := Translate(ing, grafanaCluster(), TranslateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := parse(t, tr.Routes)
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Routes[0]
	if !r.AllowWebsockets || !r.PreserveHostHeader || r.Timeout == nil || time.Duration(*r.Timeout) != 30*time.Second || !r.TLSSkipVerify ||
		r.SetRequestHeaders["X-Tenant"] != "acme" || len(r.AllowedDomains) != 1 || len(r.AllowedUsers) != 2 {
		t.Fatalf("route options: %+v", r)
	}

	for ann, want := range map[string]string{
		"ingress.pomerium.io/no_such_option":  "unknown annotation ingress.pomerium.io/no_such_option",
		"ingress.pomerium.io/health_checks":   "unsupported",
		"ingress.pomerium.io/secure_upstream": "want \"true\" or \"false\"",
	} {
		ing.Annotations = map[string]string{ann: "maybe"}
		if _, err := Translate(ing, grafanaCluster(), TranslateOptions{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", ann, err, want)
		}
	}
	// A value the option refuses is found by the configuration package
	// and described with the annotation's name.
	ing.Annotations = map[string]string{"ingress.pomerium.io/timeout": "soon", "ingress.pomerium.io/policy": `{"allow":{"or":[{"nope":true}]}}`}
	tr, err = Translate(ing, grafanaCluster(), TranslateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = parse(t, tr.Routes)
	if err == nil {
		t.Fatal("invalid timeout and policy accepted")
	}
	msg := describe(err, ing)
	if !strings.Contains(msg, "ingress.pomerium.io/timeout") || !strings.Contains(msg, "ingress.pomerium.io/policy") {
		t.Fatalf("message does not name the annotations: %s", msg)
	}
}

func TestSecretAnnotationsAndTLS(t *testing.T) {
	cl := grafanaCluster()
	cl.secrets["default/headers"] = &corev1.Secret{Data: map[string][]byte{"X-Api-Key": []byte("k")}}
	cl.secrets["default/grafana.localhost.pomerium.io-tls"] = &corev1.Secret{Data: map[string][]byte{"tls.crt": []byte("CERT"), "tls.key": []byte("KEY")}}
	ing := guideIngress()
	ing.Annotations["ingress.pomerium.io/set_request_headers_secret"] = "headers"
	tr, err := Translate(ing, cl, TranslateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := tr.Routes[0]["set_request_headers"].(map[string]any); h["X-Api-Key"] != "k" {
		t.Fatalf("set_request_headers: %v", h)
	}
	if len(tr.Certificates) != 1 || tr.Certificates[0].Cert != "CERT" || len(tr.Warnings) != 0 {
		t.Fatalf("certificates %v warnings %v", tr.Certificates, tr.Warnings)
	}
	ing.Annotations["ingress.pomerium.io/tls_custom_ca_secret"] = "missing"
	if _, err := Translate(ing, cl, TranslateOptions{}); err == nil || !strings.Contains(err.Error(), "Secret default/missing not found") {
		t.Fatalf("missing secret: %v", err)
	}
}

func TestTranslateRefusesWhatItCannotRoute(t *testing.T) {
	ing := guideIngress()
	ing.Spec.Rules[0].Host = ""
	if _, err := Translate(ing, grafanaCluster(), TranslateOptions{}); err == nil || !strings.Contains(err.Error(), "host is required") {
		t.Fatalf("no host: %v", err)
	}
	// The default backend serves the one TLS host.
	ing = guideIngress()
	ing.Spec.DefaultBackend = &ing.Spec.Rules[0].HTTP.Paths[0].Backend
	ing.Spec.Rules = nil
	tr, err := Translate(ing, grafanaCluster(), TranslateOptions{})
	if err != nil || tr.Routes[0]["from"] != "https://grafana.localhost.pomerium.io" {
		t.Fatalf("default backend: %v %v", tr, err)
	}
	ing.Spec.TLS = nil
	if _, err := Translate(ing, grafanaCluster(), TranslateOptions{}); err == nil {
		t.Fatal("default backend without a TLS host accepted")
	}
	// cert-manager's HTTP-01 solver is public.
	ing = guideIngress()
	ing.Labels = map[string]string{"acme.cert-manager.io/http01-solver": "true"}
	ing.Annotations = map[string]string{"ingress.pomerium.io/bogus": "x"}
	tr, err = Translate(ing, grafanaCluster(), TranslateOptions{})
	if err != nil || tr.Routes[0]["allow_public_unauthenticated_access"] != true {
		t.Fatalf("solver: %v %v", tr, err)
	}
}
