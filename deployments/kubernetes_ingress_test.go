package deployments

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/config/configtest"
	"github.com/gatehouse/gatehouse/pkg/devcerts"
	"github.com/gatehouse/gatehouse/pkg/ingress"
	"github.com/gatehouse/gatehouse/pkg/testutil/kubetest"
)

// The Ingress controller overlay, rendered by kubectl kustomize (the one
// `make kube-assets` builds): proxy and authorize run `ingress-controller`
// with the RBAC's ServiceAccount, the settings validate without routes for
// each of them, the RBAC grants the Lease the controller uses, and the
// IngressClass names gatehouse's controller.
func TestKubeIngressOverlay(t *testing.T) {
	assets, why := kubetest.Assets()
	if assets == "" {
		t.Skipf("skipping: kubectl comes with the kube binaries: %s", why)
	}
	kubectl := filepath.Join(assets, "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		t.Skipf("skipping: no kubectl in %s", assets)
	}
	out, err := exec.Command(kubectl, "kustomize", "kubernetes-ingress").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize kubernetes-ingress: %v\n%s", err, out)
	}
	deployments := map[string]*appsv1.Deployment{}
	var settings string
	var class *networkingv1.IngressClass
	var role *rbacv1.Role
	var bindings []rbacv1.Subject
	for _, doc := range regexp.MustCompile(`(?m)^---$`).Split(string(out), -1) {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			deployments[o.Name] = o
		case *corev1.ConfigMap:
			if o.Name == "gatehouse-config" {
				settings = o.Data["config.yaml"]
			}
		case *networkingv1.IngressClass:
			class = o
		case *rbacv1.Role:
			if o.Name == "gatehouse-ingress-leader" {
				role = o
			}
		case *rbacv1.RoleBinding:
			if o.Name == "gatehouse-ingress-leader" {
				bindings = append(bindings, o.Subjects...)
			}
		case *rbacv1.ClusterRoleBinding:
			if o.Name == "gatehouse-ingress-controller" {
				bindings = append(bindings, o.Subjects...)
			}
		}
	}
	if class == nil || class.Name != "pomerium" || class.Spec.Controller != ingress.DefaultControllerName {
		t.Fatalf("IngressClass %+v, want pomerium served by %s", class, ingress.DefaultControllerName)
	}
	if role == nil || len(bindings) != 2 {
		t.Fatalf("RBAC: role %v, bindings %v", role, bindings)
	}
	for _, s := range bindings {
		if s.Kind != "ServiceAccount" || s.Name != "gatehouse-ingress" || s.Namespace != "gatehouse" {
			t.Errorf("binding subject %+v", s)
		}
	}
	leaseGranted := false
	for _, r := range role.Rules {
		if slices.Contains(r.ResourceNames, "gatehouse-ingress-controller") && slices.Contains(r.Verbs, "update") {
			leaseGranted = true
		}
	}
	if !leaseGranted {
		t.Errorf("the Role does not let the controller renew its Lease: %+v", role.Rules)
	}

	ca, err := devcerts.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	crt, key, _ := ca.Issue("*.localhost.pomerium.io")
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "tls.crt"), crt, 0o600)
	_ = os.WriteFile(filepath.Join(dir, "tls.key"), key, 0o600)
	for _, name := range []string{"proxy", "authorize"} {
		d := deployments[name]
		if d == nil {
			t.Fatalf("no Deployment %s", name)
		}
		spec := d.Spec.Template.Spec
		c := spec.Containers[0]
		if len(c.Args) == 0 || c.Args[0] != "ingress-controller" || spec.ServiceAccountName != "gatehouse-ingress" {
			t.Errorf("%s: args %v, serviceAccountName %q", name, c.Args, spec.ServiceAccountName)
		}
		env := map[string]string{"SHARED_SECRET": configtest.Secret, "COOKIE_SECRET": configtest.CookieSecret, "IDP_CLIENT_SECRET": "x"}
		podNS := false
		for _, e := range c.Env {
			if e.Name == "POD_NAMESPACE" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace" {
				podNS = true
			}
			if e.ValueFrom == nil {
				env[e.Name] = strings.Replace(e.Value, "/etc/gatehouse/tls", dir, 1)
			}
		}
		if !podNS {
			t.Errorf("%s: no POD_NAMESPACE from the pod's namespace (the Lease's namespace)", name)
		}
		cfg, err := config.Parse([]byte(settings), "config.yaml", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err != nil {
			t.Fatalf("%s: the settings do not validate: %v", name, err)
		}
		if len(cfg.Routes) != 0 || !cfg.Runs(name) {
			t.Errorf("%s: routes %d (want none: they come from Ingresses), runs %v", name, len(cfg.Routes), cfg.ServiceSet)
		}
	}
}
