package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/gatehouse/gatehouse/pkg/config/configtest"
	"github.com/gatehouse/gatehouse/pkg/devcerts"
	"github.com/gatehouse/gatehouse/pkg/testutil"
	"github.com/gatehouse/gatehouse/pkg/testutil/kubetest"
)

// guideHost is the host of the Grafana guide's Ingress.
const guideHost = "grafana.localhost.pomerium.io"

// readManifests decodes every object of a YAML file of the repository.
func readManifests(t *testing.T, path string) []runtime.Object {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []runtime.Object
	for _, doc := range strings.Split(string(data), "\n---") {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, obj)
	}
	return out
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// The Kubernetes Ingress tab of the Grafana guide, against a real
// kube-apiserver: the repository's RBAC, IngressClass and the guide's
// Ingress (verbatim; its Service and EndpointSlice point at a local
// upstream), a gatehouse all-in-one running `ingress-controller` with the
// RBAC's permissions only, and the dev IdP. Sign-in as a user of
// example.com (200, verified identity JWT) and as bob@other.org (403); an
// annotation edit applies without a restart; an invalid Ingress is refused
// alone with an Event; status is written; a TLS Secret is served by SNI;
// a deleted Ingress is a 404.
func TestKubeIngressGuideEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kubernetes control plane, gatehouse and the dev IdP")
	}
	cp := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	kc := cp.Client
	bin := testutil.Gatehouse(t)

	// The repository's RBAC, bound to the test user instead of the
	// ServiceAccount (no ServiceAccount tokens without a
	// controller-manager): gatehouse runs with these permissions only.
	mustCreateNS(ctx, t, kc, "gatehouse")
	for _, obj := range readManifests(t, "../../deployments/kubernetes-ingress/rbac.yaml") {
		switch o := obj.(type) {
		case *rbacv1.ClusterRole:
			create(t, func() error { _, err := kc.RbacV1().ClusterRoles().Create(ctx, o, metav1.CreateOptions{}); return err })
		case *rbacv1.ClusterRoleBinding:
			o.Subjects = []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "gatehouse-test-user"}}
			create(t, func() error {
				_, err := kc.RbacV1().ClusterRoleBindings().Create(ctx, o, metav1.CreateOptions{})
				return err
			})
		case *rbacv1.Role:
			create(t, func() error {
				_, err := kc.RbacV1().Roles(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
				return err
			})
		case *rbacv1.RoleBinding:
			o.Subjects = []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "gatehouse-test-user"}}
			create(t, func() error {
				_, err := kc.RbacV1().RoleBindings(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
				return err
			})
		}
	}
	for _, obj := range readManifests(t, "../../deployments/kubernetes-ingress/ingressclass.yaml") {
		ic := obj.(*networkingv1.IngressClass)
		create(t, func() error {
			_, err := kc.NetworkingV1().IngressClasses().Create(ctx, ic, metav1.CreateOptions{})
			return err
		})
	}

	// The upstream ("Grafana") and its Service and EndpointSlice.
	var mu sync.Mutex
	var lastJWT string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastJWT = r.Header.Get("X-Pomerium-Jwt-Assertion")
		mu.Unlock()
		fmt.Fprint(w, "grafana upstream")
	}))
	t.Cleanup(up.Close)
	_, upPortS, _ := net.SplitHostPort(up.Listener.Addr().String())
	upPort, _ := strconv.Atoi(upPortS)
	create(t, func() error {
		_, err := kc.CoreV1().Services("default").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "grafana"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 3000, TargetPort: intstr.FromInt(upPort)}},
				Selector: map[string]string{"app": "grafana"}},
		}, metav1.CreateOptions{})
		return err
	})
	ready := true
	create(t, func() error {
		_, err := kc.DiscoveryV1().EndpointSlices("default").Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: "grafana-1", Labels: map[string]string{discoveryv1.LabelServiceName: "grafana"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"127.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
			Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(upPort))}},
		}, metav1.CreateOptions{})
		return err
	})

	// TLS: a CA; the default certificate (authenticate and anything
	// without a Secret) and, later, the Ingress's own.
	ca, err := devcerts.NewCA("gatehouse kube test CA")
	if err != nil {
		t.Fatal(err)
	}
	defCert, defKey, err := ca.Issue("*.localhost.pomerium.io")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, defCert, 0o600)
	_ = os.WriteFile(keyFile, defKey, 0o600)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)

	addr := testutil.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	authURL := "https://authenticate.localhost.pomerium.io:" + port
	idpAddr := testutil.FreeAddr(t)
	idpURL := "http://" + idpAddr
	health := testutil.FreeAddr(t)
	idp := testutil.StartProcess(t, "dev-idp", bin, []string{"dev-idp", "--address", idpAddr, "--issuer", idpURL,
		"--client-id", "gatehouse", "--client-secret", "idp-secret", "--redirect-uri", authURL + "/oauth2/callback"})
	settings := configtest.New().Delete("insecure_server").Set("log_level", "info").
		Set("services", "all").
		Set("address", addr).
		Set("grpc_address", testutil.FreeAddr(t)).
		Set("health_check_addr", health).
		Set("authenticate_service_url", authURL).
		Set("certificate_file", certFile).
		Set("certificate_key_file", keyFile).
		IdP(idpURL, "idp-secret").
		Write(t)
	testutil.WaitHTTP(t, idpURL+"/.well-known/openid-configuration", 20*time.Second, idp)

	// The guide's Ingress, verbatim.
	guide := readManifests(t, "../../deployments/kubernetes-ingress/grafana-ingress.yaml")[0].(*networkingv1.Ingress)
	create(t, func() error {
		_, err := kc.NetworkingV1().Ingresses("default").Create(ctx, guide, metav1.CreateOptions{})
		return err
	})

	gh := testutil.StartProcess(t, "gatehouse", bin, []string{"ingress-controller", "--config", settings,
		"--kubeconfig", cp.UserKubeconfig, "--lease-namespace", "gatehouse", "--status-addresses", "127.0.0.1"})
	testutil.WaitHTTP(t, "http://"+health+"/readyz", 60*time.Second, gh)

	dial := func(ctx context.Context, network, a string) (net.Conn, error) {
		_, p, _ := net.SplitHostPort(a)
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", p))
	}
	newBrowser := func() *http.Client {
		jar, _ := cookiejar.New(nil)
		return &http.Client{Jar: jar, Timeout: 20 * time.Second,
			Transport: &http.Transport{DialContext: dial, TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	grafanaURL := "https://" + guideHost + ":" + port + "/"
	var reused bool // whether the last get went over a connection opened before
	get := func(c *http.Client) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, grafanaURL, nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
		}))
		req.Header.Set("Accept", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", grafanaURL, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// A user of example.com gets Grafana with a verified identity JWT.
	alice := newBrowser()
	resp := testutil.DevIDPSignIn(t, alice, grafanaURL, "alice@example.com", "Alice", "")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "grafana upstream") {
		t.Fatalf("alice@example.com: %d %s", resp.StatusCode, body)
	}
	mu.Lock()
	assertion := lastJWT
	mu.Unlock()
	verifyIdentityJWT(t, alice, "https://"+guideHost+":"+port+"/.well-known/pomerium/jwks.json", assertion, "alice@example.com")

	// bob@other.org is refused by the annotation's policy.
	bob := newBrowser()
	resp = testutil.DevIDPSignIn(t, bob, grafanaURL, "bob@other.org", "Bob", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bob@other.org: %d, want 403", resp.StatusCode)
	}

	// Status: written once by the Lease holder.
	testutil.WaitFor(t, 30*time.Second, "Ingress status.loadBalancer", func() error {
		ing, err := kc.NetworkingV1().Ingresses("default").Get(ctx, "grafana", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if lb := ing.Status.LoadBalancer.Ingress; len(lb) != 1 || lb[0].IP != "127.0.0.1" {
			return fmt.Errorf("status.loadBalancer.ingress = %+v", lb)
		}
		return nil
	})

	// The policy annotation edited: bob gets in, without a restart.
	update(ctx, t, kc, "grafana", func(ing *networkingv1.Ingress) {
		ing.Annotations["ingress.pomerium.io/policy"] = `[{"allow":{"or":[{"domain":{"is":"example.com"}},{"domain":{"is":"other.org"}}]}}]`
	})
	testutil.WaitFor(t, 30*time.Second, "bob@other.org allowed after the policy edit", func() error {
		if code, b := get(bob); code != http.StatusOK {
			return fmt.Errorf("%d %s", code, b)
		}
		return nil
	})
	if gh.Exited() {
		t.Fatal("gatehouse restarted or exited")
	}

	// An invalid Ingress is refused alone: an Event on it, a log line,
	// and Grafana keeps working.
	bad := guide.DeepCopy()
	bad.ObjectMeta = metav1.ObjectMeta{Name: "broken", Annotations: map[string]string{
		"ingress.pomerium.io/no_such_option": "true",
	}}
	bad.Spec.Rules[0].Host = "broken.localhost.pomerium.io"
	bad.Spec.TLS = nil
	create(t, func() error {
		_, err := kc.NetworkingV1().Ingresses("default").Create(ctx, bad, metav1.CreateOptions{})
		return err
	})
	testutil.WaitFor(t, 30*time.Second, "a Warning Event on the invalid Ingress", func() error {
		evs, err := kc.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=broken"})
		if err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, "no_such_option") {
				return nil
			}
		}
		return fmt.Errorf("events: %d, none a Warning naming the annotation", len(evs.Items))
	})
	if !strings.Contains(gh.Output(), "ingress refused") || !strings.Contains(gh.Output(), "default/broken") {
		t.Fatalf("no log line for the refused Ingress:\n%s", gh.Output())
	}
	if code, b := get(alice); code != http.StatusOK {
		t.Fatalf("alice after an invalid Ingress: %d %s", code, b)
	}
	// Alice's connection, opened before the policy edit and the invalid
	// Ingress, was kept: changes apply without dropping connections.
	if !reused {
		t.Fatal("alice's keep-alive connection was dropped by a configuration change")
	}

	// The Ingress's TLS Secret (cert-manager's job): served by SNI.
	ingCert, ingKey, err := ca.Issue(guideHost)
	if err != nil {
		t.Fatal(err)
	}
	create(t, func() error {
		_, err := kc.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: guideHost + "-tls"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: ingCert, corev1.TLSPrivateKeyKey: ingKey},
		}, metav1.CreateOptions{})
		return err
	})
	want, _ := pem.Decode(ingCert)
	testutil.WaitFor(t, 30*time.Second, "the Ingress's certificate served by SNI", func() error {
		conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: guideHost, RootCAs: pool})
		if err != nil {
			return err
		}
		defer conn.Close()
		got := conn.ConnectionState().PeerCertificates[0]
		if string(got.Raw) != string(want.Bytes) {
			return fmt.Errorf("served %v (serial %s), not the Secret's", got.DNSNames, got.SerialNumber)
		}
		return nil
	})
	if code, b := get(alice); code != http.StatusOK {
		t.Fatalf("alice over the Secret's certificate: %d %s", code, b)
	}

	// Deleted: 404.
	if err := kc.NetworkingV1().Ingresses("default").Delete(ctx, "grafana", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "404 after the Ingress is deleted", func() error {
		if code, b := get(alice); code != http.StatusNotFound {
			return fmt.Errorf("%d %s", code, b)
		}
		return nil
	})
	if gh.Exited() {
		t.Fatal("gatehouse exited")
	}
}

// verifyIdentityJWT checks the X-Pomerium-Jwt-Assertion the upstream got
// against the route host's JWKS.
func verifyIdentityJWT(t *testing.T, c *http.Client, jwksURL, assertion, email string) {
	t.Helper()
	resp, err := c.Get(jwksURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var jwks jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&jwks); err != nil || len(jwks.Keys) == 0 {
		t.Fatalf("jwks: %d %v", resp.StatusCode, err)
	}
	tok, err := jwt.ParseSigned(assertion, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		t.Fatalf("the upstream got no identity JWT (%q): %v", assertion, err)
	}
	var std jwt.Claims
	var claims struct {
		Email string `json:"email"`
	}
	if err := tok.Claims(jwks, &std, &claims); err != nil {
		t.Fatalf("identity JWT does not verify: %v", err)
	}
	if err := std.Validate(jwt.Expected{AnyAudience: jwt.Audience{guideHost}, Time: time.Now()}); err != nil || claims.Email != email {
		t.Fatalf("identity JWT: aud %v email %q: %v", std.Audience, claims.Email, err)
	}
}

func ptr[T any](v T) *T { return &v }

func create(t *testing.T, f func() error) {
	t.Helper()
	if err := f(); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func mustCreateNS(ctx context.Context, t *testing.T, kc kubernetes.Interface, name string) {
	t.Helper()
	create(t, func() error {
		_, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		return err
	})
}

// update applies fn to the Ingress, retrying on conflicts.
func update(ctx context.Context, t *testing.T, kc kubernetes.Interface, name string, fn func(*networkingv1.Ingress)) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, "update Ingress "+name, func() error {
		ing, err := kc.NetworkingV1().Ingresses("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		fn(ing)
		_, err = kc.NetworkingV1().Ingresses("default").Update(ctx, ing, metav1.UpdateOptions{})
		return err
	})
}
