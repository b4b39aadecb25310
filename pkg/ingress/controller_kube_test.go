package ingress

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gatehouse/gatehouse/pkg/config/configtest"
	"github.com/gatehouse/gatehouse/pkg/testutil"
	"github.com/gatehouse/gatehouse/pkg/testutil/kubetest"
)

// Against a real kube-apiserver: which Ingresses a controller serves (its
// class, the default class, the legacy annotation, not another
// controller's), and that of three replicas exactly one holds the Lease and
// writes status, which stays put.
func TestKubeControllerReplicasAndClasses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kubernetes control plane")
	}
	cp := kubetest.Start(t)
	kc := cp.Client
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(kc.NetworkingV1().IngressClasses().Create(ctx, &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: "pomerium"}, Spec: networkingv1.IngressClassSpec{Controller: DefaultControllerName}}, metav1.CreateOptions{}))
	must(kc.NetworkingV1().IngressClasses().Create(ctx, &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: "nginx"}, Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}}, metav1.CreateOptions{}))
	must(kc.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "grafana"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 3000}}}}, metav1.CreateOptions{}))
	ingress := func(name string, class *string, ann map[string]string) {
		ing := guideIngress()
		ing.ObjectMeta = metav1.ObjectMeta{Name: name, Annotations: ann}
		ing.Spec.IngressClassName = class
		ing.Spec.TLS = nil
		ing.Spec.Rules[0].Host = name + ".localhost.pomerium.io"
		must(kc.NetworkingV1().Ingresses("default").Create(ctx, ing, metav1.CreateOptions{}))
	}
	ingress("mine", ptr("pomerium"), nil)
	ingress("theirs", ptr("nginx"), nil)
	ingress("legacy", nil, map[string]string{legacyIngressClassAnnotation: "pomerium"})
	ingress("classless", nil, nil)

	settings := filepath.Join(t.TempDir(), "settings.yaml")
	yml := configtest.New().Set("authenticate_service_url", "https://authenticate.localhost.pomerium.io").IdP("https://idp.example.com", "s").YAML()
	if err := os.WriteFile(settings, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	hosts := func(c *Controller) string {
		var hs []string
		for _, r := range c.Current().Routes {
			hs = append(hs, strings.TrimSuffix(strings.TrimPrefix(r.From, "https://"), ".localhost.pomerium.io"))
		}
		sort.Strings(hs)
		return strings.Join(hs, ",")
	}
	type replica struct {
		c    *Controller
		done chan struct{}
	}
	start := func(id string) replica {
		c, err := New(Options{Client: kc, ConfigPath: settings, LeaseNamespace: "default", Identity: id,
			StatusAddresses: []string{"192.0.2.1"}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Debounce: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		rctx, stop := context.WithCancel(ctx)
		if err := c.Sync(rctx, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		r := replica{c: c, done: make(chan struct{})}
		go func() { defer close(r.done); _ = c.Run(rctx) }()
		t.Cleanup(func() { stop(); <-r.done })
		return r
	}
	reps := []replica{start("a"), start("b"), start("c")}
	if got := hosts(reps[0].c); got != "legacy,mine" {
		t.Fatalf("served %q, want legacy,mine (not another controller's class, not a classless Ingress without a default class)", got)
	}

	// The default class takes classless Ingresses too.
	ic, err := kc.NetworkingV1().IngressClasses().Get(ctx, "pomerium", metav1.GetOptions{})
	must(ic, err)
	ic.Annotations = map[string]string{defaultClassAnnotation: "true"}
	must(kc.NetworkingV1().IngressClasses().Update(ctx, ic, metav1.UpdateOptions{}))
	for _, r := range reps {
		testutil.WaitFor(t, 20*time.Second, "the default class's Ingresses", func() error {
			if got := hosts(r.c); got != "classless,legacy,mine" {
				return fmt.Errorf("served %q", got)
			}
			return nil
		})
	}

	// One leader; status written.
	leaders := func() int {
		n := 0
		for _, r := range reps {
			if r.c.Leading() {
				n++
			}
		}
		return n
	}
	testutil.WaitFor(t, 30*time.Second, "one leader", func() bool { return leaders() == 1 })
	testutil.WaitFor(t, 30*time.Second, "status written", func() error {
		for _, name := range []string{"mine", "legacy", "classless"} {
			ing, err := kc.NetworkingV1().Ingresses("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if lb := ing.Status.LoadBalancer.Ingress; len(lb) != 1 || lb[0].IP != "192.0.2.1" {
				return fmt.Errorf("%s: status %+v", name, lb)
			}
		}
		return nil
	})
	theirs, err := kc.NetworkingV1().Ingresses("default").Get(ctx, "theirs", metav1.GetOptions{})
	must(theirs, err)
	if len(theirs.Status.LoadBalancer.Ingress) != 0 {
		t.Fatalf("another controller's Ingress got status %+v", theirs.Status.LoadBalancer.Ingress)
	}
	// Status is written once, not by every replica in turn: its
	// resourceVersion stays put while nothing changes.
	mine, err := kc.NetworkingV1().Ingresses("default").Get(ctx, "mine", metav1.GetOptions{})
	must(mine, err)
	time.Sleep(2 * time.Second) // a quiet period: nothing may write meanwhile
	again, err := kc.NetworkingV1().Ingresses("default").Get(ctx, "mine", metav1.GetOptions{})
	must(again, err)
	if again.ResourceVersion != mine.ResourceVersion || leaders() != 1 {
		t.Fatalf("status rewritten (%s → %s) or leaders %d", mine.ResourceVersion, again.ResourceVersion, leaders())
	}
}
