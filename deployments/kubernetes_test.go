package deployments

import (
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/secretgen"
)

const k8sDir = "kubernetes"

// k8sObjects are the decoded manifests, by kind.
type k8sObjects struct {
	namespaces   map[string]*corev1.Namespace
	secrets      map[string]*corev1.Secret
	configMaps   map[string]*corev1.ConfigMap
	services     map[string]*corev1.Service
	deployments  map[string]*appsv1.Deployment
	statefulSets map[string]*appsv1.StatefulSet
	hpas         map[string]*autoscalingv2.HorizontalPodAutoscaler
	pdbs         map[string]*policyv1.PodDisruptionBudget
	jobs         map[string]*batchv1.Job
	accounts     map[string]*corev1.ServiceAccount
	roles        map[string]*rbacv1.Role
	roleBindings map[string]*rbacv1.RoleBinding
	// generated holds what the gen-secrets Job would put in the Secrets
	// it makes, made once so that every pod reads the same values.
	generated map[string]map[string]string
}

// kustomization is the part of kustomization.yaml the manifests use.
type kustomization struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Namespace  string   `yaml:"namespace"`
	Resources  []string `yaml:"resources"`
	Images     []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
	} `yaml:"images"`
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// loadK8s decodes every document of every manifest strictly (unknown or
// duplicate fields fail) into the Kubernetes API types.
func loadK8s(t *testing.T) (*k8sObjects, kustomization) {
	t.Helper()
	var k kustomization
	dec := yaml.NewDecoder(strings.NewReader(string(readFile(t, filepath.Join(k8sDir, "kustomization.yaml")))))
	dec.KnownFields(true)
	if err := dec.Decode(&k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.Kind != "Kustomization" || k.Namespace != "gatehouse" {
		t.Errorf("kustomization.yaml: kind %q namespace %q", k.Kind, k.Namespace)
	}
	// Every manifest is listed, and every listed file exists.
	files, _ := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	var onDisk []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			onDisk = append(onDisk, b)
		}
	}
	listed := slices.Clone(k.Resources)
	sort.Strings(listed)
	if !slices.Equal(listed, onDisk) {
		t.Errorf("kustomization resources %v, files %v", listed, onDisk)
	}

	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, autoscalingv2.AddToScheme, policyv1.AddToScheme, batchv1.AddToScheme, rbacv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	decoder := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
	o := &k8sObjects{
		namespaces: map[string]*corev1.Namespace{}, secrets: map[string]*corev1.Secret{},
		configMaps: map[string]*corev1.ConfigMap{}, services: map[string]*corev1.Service{},
		deployments: map[string]*appsv1.Deployment{}, statefulSets: map[string]*appsv1.StatefulSet{},
		hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{}, pdbs: map[string]*policyv1.PodDisruptionBudget{},
		jobs: map[string]*batchv1.Job{}, accounts: map[string]*corev1.ServiceAccount{},
		roles: map[string]*rbacv1.Role{}, roleBindings: map[string]*rbacv1.RoleBinding{},
		generated: map[string]map[string]string{},
	}
	for _, f := range k.Resources {
		for i, doc := range docSeparator.Split(string(readFile(t, filepath.Join(k8sDir, f))), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			obj, gvk, err := decoder.Decode([]byte(doc), nil, nil)
			if err != nil {
				t.Errorf("%s document %d: %v", f, i, err)
				continue
			}
			ns := ""
			switch v := obj.(type) {
			case *corev1.Namespace:
				o.namespaces[v.Name] = v
			case *corev1.Secret:
				o.secrets[v.Name], ns = v, v.Namespace
			case *corev1.ConfigMap:
				o.configMaps[v.Name], ns = v, v.Namespace
			case *corev1.Service:
				o.services[v.Name], ns = v, v.Namespace
			case *appsv1.Deployment:
				o.deployments[v.Name], ns = v, v.Namespace
			case *appsv1.StatefulSet:
				o.statefulSets[v.Name], ns = v, v.Namespace
			case *autoscalingv2.HorizontalPodAutoscaler:
				o.hpas[v.Name], ns = v, v.Namespace
			case *policyv1.PodDisruptionBudget:
				o.pdbs[v.Name], ns = v, v.Namespace
			case *batchv1.Job:
				o.jobs[v.Name], ns = v, v.Namespace
			case *corev1.ServiceAccount:
				o.accounts[v.Name], ns = v, v.Namespace
			case *rbacv1.Role:
				o.roles[v.Name], ns = v, v.Namespace
			case *rbacv1.RoleBinding:
				o.roleBindings[v.Name], ns = v, v.Namespace
			default:
				t.Errorf("%s document %d: unexpected kind %s", f, i, gvk)
				continue
			}
			if _, isNS := obj.(*corev1.Namespace); !isNS && ns != k.Namespace {
				t.Errorf("%s document %d (%s): namespace %q, want %q", f, i, gvk.Kind, ns, k.Namespace)
			}
		}
	}
	if _, ok := o.namespaces[k.Namespace]; !ok {
		t.Errorf("no Namespace %s", k.Namespace)
	}
	return o, k
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// podTemplates are the pod templates of every workload, by workload name.
func (o *k8sObjects) podTemplates() map[string]corev1.PodTemplateSpec {
	out := map[string]corev1.PodTemplateSpec{}
	for n, d := range o.deployments {
		out[n] = d.Spec.Template
	}
	for n, s := range o.statefulSets {
		out[n] = s.Spec.Template
	}
	return out
}

// selected returns the workloads whose pods a selector picks.
func (o *k8sObjects) selected(sel labels.Selector) []string {
	var out []string
	for n, tpl := range o.podTemplates() {
		if !sel.Empty() && sel.Matches(labels.Set(tpl.Labels)) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// hasPort reports whether a pod template's containers have a port
// matching target (by name or number).
func hasPort(tpl corev1.PodTemplateSpec, target intstr.IntOrString) bool {
	for _, c := range tpl.Spec.Containers {
		for _, p := range c.Ports {
			if (target.Type == intstr.String && p.Name == target.StrVal) || (target.Type == intstr.Int && p.ContainerPort == target.IntVal) {
				return true
			}
		}
	}
	return false
}

// containerEnv is a gatehouse container's environment: env values,
// secretKeyRef and envFrom secrets from the manifests.
func (o *k8sObjects) containerEnv(t *testing.T, c corev1.Container) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.SecretRef != nil {
			s, ok := o.secrets[ef.SecretRef.Name]
			if !ok {
				gen := o.generatedSecret(ef.SecretRef.Name)
				if gen == nil {
					t.Errorf("container %s: envFrom secret %s is neither in the manifests nor made by a gen-secrets Job", c.Name, ef.SecretRef.Name)
				}
				for k, v := range gen {
					out[k] = v
				}
				continue
			}
			for k, v := range s.StringData {
				out[k] = v
			}
			for k, v := range s.Data {
				out[k] = string(v)
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			out[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			out[e.Name] = o.secrets[e.ValueFrom.SecretKeyRef.Name].StringData[e.ValueFrom.SecretKeyRef.Key]
		}
	}
	return out
}

// generatedSecret is the Secret a `gatehouse gen-secrets --kubernetes-secret`
// Job of the manifests makes under name (nil when no Job makes it), with
// values such as the Job would write.
func (o *k8sObjects) generatedSecret(name string) map[string]string {
	if s, ok := o.generated[name]; ok {
		return s
	}
	for _, j := range o.jobs {
		for _, c := range j.Spec.Template.Spec.Containers {
			if len(c.Args) > 0 && c.Args[0] == "gen-secrets" {
				if v, _ := flagValue(c.Args, "kubernetes-secret"); v == name {
					s := map[string]string{}
					for _, n := range secretgen.Names {
						s[n.Env] = secretgen.New()
					}
					o.generated[name] = s
					return s
				}
			}
		}
	}
	return nil
}

// The deployment makes its own secrets: nothing in the manifests holds
// SHARED_SECRET or COOKIE_SECRET, and the gen-secrets Job may create and
// read exactly the Secret the pods use.
func TestKubernetesGeneratesSecrets(t *testing.T) {
	o, _ := loadK8s(t)
	for name, s := range o.secrets {
		for _, n := range secretgen.Names {
			if _, ok := s.StringData[n.Env]; ok {
				t.Errorf("Secret %s holds %s: a published value; the gen-secrets Job makes it", name, n.Env)
			}
			if _, ok := s.Data[n.Env]; ok {
				t.Errorf("Secret %s holds %s: a published value; the gen-secrets Job makes it", name, n.Env)
			}
		}
	}
	j, ok := o.jobs["gatehouse-secrets"]
	if !ok {
		t.Fatal("no Job gatehouse-secrets")
	}
	spec := j.Spec.Template.Spec
	if len(spec.Containers) != 1 || !slices.Equal(spec.Containers[0].Args, []string{"gen-secrets", "--kubernetes-secret", "gatehouse-generated"}) {
		t.Fatalf("Job gatehouse-secrets runs %v", spec.Containers)
	}
	if spec.Containers[0].Image != "gatehouse" {
		t.Errorf("Job image %q, want the gatehouse image", spec.Containers[0].Image)
	}
	if _, ok := o.accounts[spec.ServiceAccountName]; !ok {
		t.Fatalf("Job's service account %q is not in the manifests", spec.ServiceAccountName)
	}
	can := map[string]bool{}
	for _, rb := range o.roleBindings {
		bound := false
		for _, sub := range rb.Subjects {
			bound = bound || (sub.Kind == "ServiceAccount" && sub.Name == spec.ServiceAccountName)
		}
		role, ok := o.roles[rb.RoleRef.Name]
		if !bound || rb.RoleRef.Kind != "Role" || !ok {
			continue
		}
		for _, r := range role.Rules {
			if !slices.Contains(r.Resources, "secrets") {
				continue
			}
			for _, v := range r.Verbs {
				if len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, "gatehouse-generated") {
					can[v] = true
				}
			}
		}
	}
	if !can["get"] || !can["create"] {
		t.Errorf("the Job's service account may %v on the Secret; it needs get and create", can)
	}
	for _, name := range gatehouseServices {
		d := o.deployments[name]
		if d == nil {
			continue
		}
		env := o.containerEnv(t, d.Spec.Template.Spec.Containers[0])
		for _, n := range secretgen.Names {
			if env[n.Env] == "" || env[n.Env] != o.generated["gatehouse-generated"][n.Env] {
				t.Errorf("Deployment %s does not read %s from the generated Secret", name, n.Env)
			}
		}
	}
}

func TestKubernetesManifests(t *testing.T) {
	o, k := loadK8s(t)
	tpls := o.podTemplates()

	for _, name := range gatehouseServices {
		d, ok := o.deployments[name]
		if !ok {
			t.Errorf("no Deployment %s", name)
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("Deployment %s: selector does not match its pod labels (%v)", name, err)
		}
		if len(d.Spec.Template.Spec.Containers) != 1 {
			t.Errorf("Deployment %s: want one container", name)
			continue
		}
		c := d.Spec.Template.Spec.Containers[0]
		if base, _, _ := strings.Cut(c.Image, ":"); base != k.Images[0].Name {
			t.Errorf("Deployment %s: image %q is not the kustomization's %q", name, c.Image, k.Images[0].Name)
		}
		e := o.containerEnv(t, c)
		if e["SERVICES"] != name {
			t.Errorf("Deployment %s: SERVICES=%q", name, e["SERVICES"])
		}
		for _, p := range []struct {
			probe *corev1.Probe
			path  string
		}{{c.ReadinessProbe, "/readyz"}, {c.LivenessProbe, "/healthz"}} {
			if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path {
				t.Errorf("Deployment %s: no %s probe", name, p.path)
				continue
			}
			if !hasPort(d.Spec.Template, p.probe.HTTPGet.Port) {
				t.Errorf("Deployment %s: probe port %s is not a container port", name, p.probe.HTTPGet.Port.String())
			}
		}
		if c.SecurityContext == nil || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
			t.Errorf("Deployment %s: allowPrivilegeEscalation is not false", name)
		}
		if ps := d.Spec.Template.Spec.SecurityContext; ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot {
			t.Errorf("Deployment %s: runAsNonRoot is not set", name)
		}
		if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
			t.Errorf("Deployment %s: no CPU request (needed by the HorizontalPodAutoscaler)", name)
		}
		// Mounts name volumes that exist; config maps exist.
		vols := map[string]corev1.Volume{}
		for _, v := range d.Spec.Template.Spec.Volumes {
			vols[v.Name] = v
			if v.ConfigMap != nil {
				if _, ok := o.configMaps[v.ConfigMap.Name]; !ok {
					t.Errorf("Deployment %s: ConfigMap %s not in the manifests", name, v.ConfigMap.Name)
				}
			}
		}
		for _, m := range c.VolumeMounts {
			if _, ok := vols[m.Name]; !ok {
				t.Errorf("Deployment %s: mount of unknown volume %s", name, m.Name)
			}
		}
	}

	// Services select pods and target their ports; the gRPC ones are
	// headless so that clients see every replica.
	for name, s := range o.services {
		picked := o.selected(labels.SelectorFromSet(s.Spec.Selector))
		if len(picked) != 1 {
			t.Errorf("Service %s selects %v, want exactly one workload", name, picked)
			continue
		}
		for _, p := range s.Spec.Ports {
			if !hasPort(tpls[picked[0]], p.TargetPort) {
				t.Errorf("Service %s: targetPort %s is not a port of %s", name, p.TargetPort.String(), picked[0])
			}
		}
	}
	for _, name := range []string{"authorize", "databroker", "redis"} {
		if s, ok := o.services[name]; !ok || s.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("Service %s is not headless", name)
		}
	}

	// HPAs for authorize and proxy, on Deployments that exist.
	for _, name := range []string{"authorize", "proxy"} {
		var found bool
		for _, h := range o.hpas {
			if h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == name {
				found = true
				if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < *h.Spec.MinReplicas {
					t.Errorf("HPA %s: replicas %v..%d", h.Name, h.Spec.MinReplicas, h.Spec.MaxReplicas)
				}
			}
		}
		if !found {
			t.Errorf("no HorizontalPodAutoscaler for %s", name)
		}
	}
	for _, h := range o.hpas {
		if _, ok := o.deployments[h.Spec.ScaleTargetRef.Name]; !ok || h.Spec.ScaleTargetRef.Kind != "Deployment" {
			t.Errorf("HPA %s targets %s %s, not a Deployment of the manifests", h.Name, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name)
		}
	}

	// PodDisruptionBudgets select exactly one workload, which keeps more
	// replicas than the budget's minimum.
	covered := map[string]bool{}
	for _, p := range o.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil {
			t.Errorf("PDB %s: %v", p.Name, err)
			continue
		}
		picked := o.selected(sel)
		if len(picked) != 1 {
			t.Errorf("PDB %s selects %v, want exactly one workload", p.Name, picked)
			continue
		}
		covered[picked[0]] = true
		if d, ok := o.deployments[picked[0]]; ok && p.Spec.MinAvailable != nil && d.Spec.Replicas != nil &&
			int32(p.Spec.MinAvailable.IntValue()) >= *d.Spec.Replicas {
			t.Errorf("PDB %s: minAvailable %s leaves no disruption for %d replicas", p.Name, p.Spec.MinAvailable.String(), *d.Spec.Replicas)
		}
	}
	for _, name := range gatehouseServices {
		if !covered[name] {
			t.Errorf("no PodDisruptionBudget for %s", name)
		}
	}

	// Redis persists to a claim.
	r, ok := o.statefulSets["redis"]
	if !ok || len(r.Spec.VolumeClaimTemplates) == 0 {
		t.Fatal("no redis StatefulSet with a volume claim")
	}
	rc := r.Spec.Template.Spec.Containers[0]
	if !strings.Contains(strings.Join(append(rc.Command, rc.Args...), " "), "--appendonly yes") {
		t.Errorf("redis does not run with --appendonly yes")
	}
	if !slices.ContainsFunc(rc.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == r.Spec.VolumeClaimTemplates[0].Name }) {
		t.Errorf("redis does not mount its volume claim")
	}
}

// TestKubernetesConfigValidates loads the ConfigMap's config.yaml with each
// Deployment's environment, as the pod would, certificate paths pointing
// at freshly made development certificates; the service URLs name Services
// of the manifests.
func TestKubernetesConfigValidates(t *testing.T) {
	o, k := loadK8s(t)
	f := devCerts(t)
	for _, name := range gatehouseServices {
		t.Run(name, func(t *testing.T) {
			d := o.deployments[name]
			if d == nil {
				t.Fatalf("no Deployment %s", name)
			}
			c := d.Spec.Template.Spec.Containers[0]
			e := o.containerEnv(t, c)
			// Resolve --config to the ConfigMap key mounted there.
			cfgPath := ""
			for i, a := range c.Args {
				if a == "--config" && i+1 < len(c.Args) {
					cfgPath = c.Args[i+1]
				}
			}
			var data []byte
			files := map[string]string{} // mount path → temp file
			for _, m := range c.VolumeMounts {
				for _, v := range d.Spec.Template.Spec.Volumes {
					if v.Name != m.Name {
						continue
					}
					switch {
					case v.ConfigMap != nil && path.Dir(cfgPath) == m.MountPath:
						data = []byte(o.configMaps[v.ConfigMap.Name].Data[path.Base(cfgPath)])
					case v.Secret != nil && v.Secret.SecretName == "gatehouse-tls":
						files[path.Join(m.MountPath, corev1.TLSCertKey)] = f.Cert
						files[path.Join(m.MountPath, corev1.TLSPrivateKeyKey)] = f.Key
					}
				}
			}
			if len(data) == 0 {
				t.Fatalf("--config %q is not a ConfigMap key mounted in the pod", cfgPath)
			}
			for key, v := range e {
				if tmp, ok := files[v]; ok {
					e[key] = tmp
				} else if strings.HasPrefix(v, "/etc/gatehouse/") {
					t.Errorf("%s=%s is not a file mounted in the pod", key, v)
				}
			}
			cfg, err := config.Parse(data, cfgPath, mapEnv(e))
			if err != nil {
				t.Fatalf("the %s pod's configuration does not validate:\n%v", name, err)
			}
			if len(cfg.ServiceSet) != 1 || !cfg.Runs(name) {
				t.Errorf("runs %v, want only %s", cfg.ServiceSet, name)
			}
			// SIGTERM → shutdown_grace_period serving while not ready →
			// drain: the pod's grace must cover both, or the kubelet's
			// SIGKILL cuts requests in flight.
			if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second < cfg.ShutdownGrace()+maxDrain+5*time.Second {
				t.Errorf("terminationGracePeriodSeconds %v does not cover shutdown_grace_period %v + the %v drain + 5s", g, cfg.ShutdownGrace(), maxDrain)
			}
			checkGuideRoute(t, "configmap.yaml", routesOf(t, data))
			if cfg.AuthenticateURL != authenticateURL {
				t.Errorf("authenticate_service_url = %q", cfg.AuthenticateURL)
			}
			// gRPC targets are Services of the manifests, on their port.
			targets := append(slices.Clone(cfg.AuthorizeTargets), cfg.DataBrokerTargets...)
			if s := cfg.DataBrokerStorageConnectionString; s != "" {
				u, err := url.Parse(s)
				if err != nil {
					t.Fatal(err)
				}
				targets = append(targets, u)
			}
			for _, u := range targets {
				svc, ns, _ := strings.Cut(u.Hostname(), ".")
				if ns != "" && !strings.HasPrefix(ns, k.Namespace+".") && ns != k.Namespace {
					t.Errorf("%s: namespace is not %s", u, k.Namespace)
				}
				s, ok := o.services[svc]
				if !ok {
					t.Errorf("%s: no Service %s", u, svc)
					continue
				}
				if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return u.Port() == "" || strconv.Itoa(int(p.Port)) == u.Port() }) {
					t.Errorf("%s: Service %s has no port %s", u, svc, u.Port())
				}
			}
		})
	}
}
