// Package ingress is gatehouse's Kubernetes Ingress controller: a
// config.Source whose routes come from the Ingresses of its class (and
// whose certificates come from their TLS Secrets), on top of the global
// settings of a configuration file. It follows IngressClasses, Ingresses,
// Services, EndpointSlices and Secrets with client-go informers, applies
// every change build-then-swap (config.Switch) without a restart, refuses
// an invalid Ingress alone (a Warning Event on it and a log line; every
// other route keeps working), and, on the replica that holds the Lease,
// writes status.loadBalancer of the Ingresses it serves.
package ingress

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"

	"github.com/gatehouse/gatehouse/pkg/config"
)

// DefaultControllerName is the spec.controller of the IngressClasses
// gatehouse serves unless --ingress-class says otherwise.
const DefaultControllerName = "gatehouse.io/ingress-controller"

// Options configure a Controller.
type Options struct {
	// Client talks to the Kubernetes API.
	Client kubernetes.Interface
	// ConfigPath is the global settings file (Pomerium's option names:
	// authenticate_service_url, the idp_* options, secrets, storage…);
	// its own routes, if any, come before the Ingresses'. Env overrides it
	// as it does for `gatehouse run`.
	ConfigPath string
	Env        config.Environ
	// ControllerName is the spec.controller of the IngressClasses served
	// (default DefaultControllerName).
	ControllerName string
	// Namespaces limits the Ingresses (and the Services, EndpointSlices
	// and Secrets read) to these namespaces; empty means all.
	Namespaces []string
	// Translate are the choices that apply to every Ingress.
	Translate TranslateOptions
	// LeaseNamespace and LeaseName name the Lease the replicas elect a
	// status writer with (default: the POD_NAMESPACE, else "default";
	// "gatehouse-ingress-controller"). Identity is this replica's name in
	// it (default: the host name).
	LeaseNamespace, LeaseName, Identity string
	// StatusAddresses are written to status.loadBalancer.ingress of every
	// Ingress served (IPs as ip, names as hostname). StatusService
	// (namespace/name) copies that Service's status.loadBalancer instead.
	StatusAddresses []string
	StatusService   string
	// Logger receives one line per refused Ingress and per applied change.
	Logger *slog.Logger
	// Debounce is how long changes gather before one rebuild (default 100 ms).
	Debounce time.Duration
}

// Controller is a config.Source fed by Ingresses. It is safe for
// concurrent use. Build it with New, call Sync once (before the services
// are built from Current), then Run.
type Controller struct {
	*config.StaticSource
	opts   Options
	logger *slog.Logger
	file   *config.FileSource // the global settings; nil without a file

	classes  networkinglisters.IngressClassLister
	ns       map[string]*nsListers // "" = every namespace
	factory  []informers.SharedInformerFactory
	synced   []cache.InformerSynced
	kick     chan struct{}
	leading  atomic.Bool
	recorder record.EventRecorder

	mu      sync.Mutex
	state   map[string]*ingressState // namespace/name → last outcome
	checked map[string]string        // validation cache: fragment → error ("" = valid)
	written map[string]string        // namespace/name → last Event message written
	applied []byte                   // the document of the configuration in force (rebuild only)
}

type nsListers struct {
	ingresses networkinglisters.IngressLister
	services  corelisters.ServiceLister
	slices    discoverylisters.EndpointSliceLister
	secrets   corelisters.SecretLister
}

// ingressState is the outcome of the last rebuild for one Ingress.
type ingressState struct {
	ing      *networkingv1.Ingress
	err      string   // refused: why
	warnings []string // served, with these problems
}

// New returns a Controller over the global settings file. It starts
// nothing; Current is the global settings alone until Sync.
func New(opts Options) (*Controller, error) {
	if opts.Client == nil {
		return nil, errors.New("ingress: no Kubernetes client")
	}
	if opts.ControllerName == "" {
		opts.ControllerName = DefaultControllerName
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Debounce == 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	if opts.LeaseName == "" {
		opts.LeaseName = "gatehouse-ingress-controller"
	}
	if opts.LeaseNamespace == "" {
		opts.LeaseNamespace = os.Getenv("POD_NAMESPACE")
		if opts.LeaseNamespace == "" {
			opts.LeaseNamespace = "default"
		}
	}
	if opts.Identity == "" {
		h, _ := os.Hostname()
		opts.Identity = fmt.Sprintf("%s-%d", h, os.Getpid())
	}
	file, err := config.NewSource(opts.ConfigPath, opts.Env, opts.Logger)
	if err != nil {
		return nil, err
	}
	c := &Controller{
		StaticSource: config.NewStaticSource(file.Current()),
		opts:         opts, logger: opts.Logger, file: file,
		ns:    map[string]*nsListers{},
		kick:  make(chan struct{}, 1),
		state: map[string]*ingressState{}, checked: map[string]string{}, written: map[string]string{},
	}
	// A change of the settings file is a rebuild, like any Ingress change.
	file.OnChange("ingress", config.Notify(func(context.Context, *config.Config) { c.trigger() }))

	cluster := informers.NewSharedInformerFactory(opts.Client, 0)
	c.factory = append(c.factory, cluster)
	ic := cluster.Networking().V1().IngressClasses()
	c.classes = ic.Lister()
	c.watch(ic.Informer())
	namespaces := opts.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{""}
	}
	for _, ns := range namespaces {
		f := cluster
		if ns != "" {
			f = informers.NewSharedInformerFactoryWithOptions(opts.Client, 0, informers.WithNamespace(ns))
			c.factory = append(c.factory, f)
		}
		l := &nsListers{
			ingresses: f.Networking().V1().Ingresses().Lister(),
			services:  f.Core().V1().Services().Lister(),
			slices:    f.Discovery().V1().EndpointSlices().Lister(),
			secrets:   f.Core().V1().Secrets().Lister(),
		}
		c.watch(f.Networking().V1().Ingresses().Informer())
		c.watch(f.Core().V1().Services().Informer())
		c.watch(f.Discovery().V1().EndpointSlices().Informer())
		c.watch(f.Core().V1().Secrets().Informer())
		c.ns[ns] = l
	}
	return c, nil
}

// watch makes every change an informer sees a rebuild.
func (c *Controller) watch(inf cache.SharedIndexInformer) {
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.trigger() },
		UpdateFunc: func(any, any) { c.trigger() },
		DeleteFunc: func(any) { c.trigger() },
	})
	c.synced = append(c.synced, inf.HasSynced)
}

func (c *Controller) trigger() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Sync starts the informers, which run until ctx ends, waits (at most
// timeout) until their caches are filled, and puts the first
// configuration in force. Call it before the services are built from
// Current, so that they start with the routes.
func (c *Controller) Sync(ctx context.Context, timeout time.Duration) error {
	for _, f := range c.factory {
		f.Start(ctx.Done())
	}
	wait, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if !cache.WaitForCacheSync(wait.Done(), c.synced...) {
		return fmt.Errorf("ingress: the Kubernetes caches did not fill within %s (is the API server reachable, and does RBAC allow list and watch?)", timeout)
	}
	// Drain the kicks of the initial listing: this rebuild covers them.
	select {
	case <-c.kick:
	default:
	}
	return c.rebuild(ctx)
}

// Run rebuilds the configuration on every change until ctx ends, follows
// the settings file, and takes part in the election of the replica that
// writes Ingress status and Events.
func (c *Controller) Run(ctx context.Context) error {
	bc := record.NewBroadcaster(record.WithContext(ctx))
	bc.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.opts.Client.CoreV1().Events("")})
	defer bc.Shutdown()
	c.recorder = bc.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "gatehouse-ingress-controller"})

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(2)
	go func() { defer wg.Done(); _ = c.file.Watch(ctx) }()
	go func() { defer wg.Done(); c.elect(ctx) }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.kick:
		}
		// Let a burst of changes (an apply of many objects) settle.
		t := time.NewTimer(c.opts.Debounce)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		select {
		case <-c.kick:
		default:
		}
		c.logger.Debug("ingress: rebuilding after a change")
		if err := c.rebuild(ctx); err != nil {
			c.logger.Error("ingress: configuration not applied; keeping the running one", "error", err.Error())
		}
		if c.leading.Load() {
			c.publish(ctx)
		}
	}
}

// elect runs for the Lease until ctx ends; the holder writes status and
// Events.
func (c *Controller) elect(ctx context.Context) {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: c.opts.LeaseNamespace, Name: c.opts.LeaseName},
		Client:     c.opts.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: c.opts.Identity},
	}
	for ctx.Err() == nil {
		leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
			Lock:            lock,
			ReleaseOnCancel: true,
			LeaseDuration:   15 * time.Second,
			RenewDeadline:   10 * time.Second,
			RetryPeriod:     2 * time.Second,
			Name:            c.opts.LeaseName,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					c.logger.Info("ingress: this replica writes Ingress status and Events", "lease", c.opts.LeaseNamespace+"/"+c.opts.LeaseName, "identity", c.opts.Identity)
					c.leading.Store(true)
					c.mu.Lock()
					c.written = map[string]string{} // a new leader reports everything once
					c.mu.Unlock()
					c.trigger()
				},
				OnStoppedLeading: func() { c.leading.Store(false) },
			},
		})
		c.leading.Store(false)
	}
}

// Leading reports whether this replica holds the Lease.
func (c *Controller) Leading() bool { return c.leading.Load() }

// lookup is the Cluster of the informers' caches.
type lookup struct{ c *Controller }

func (l lookup) listers(ns string) *nsListers {
	if x := l.c.ns[""]; x != nil {
		return x
	}
	return l.c.ns[ns]
}

func (l lookup) Service(ns, name string) *corev1.Service {
	x := l.listers(ns)
	if x == nil {
		return nil
	}
	s, _ := x.services.Services(ns).Get(name)
	return s
}

func (l lookup) EndpointSlices(ns, svc string) []*discoveryv1.EndpointSlice {
	x := l.listers(ns)
	if x == nil {
		return nil
	}
	s, _ := x.slices.EndpointSlices(ns).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc}))
	sort.Slice(s, func(i, j int) bool { return s[i].Name < s[j].Name })
	return s
}

func (l lookup) Secret(ns, name string) *corev1.Secret {
	x := l.listers(ns)
	if x == nil {
		return nil
	}
	s, _ := x.secrets.Secrets(ns).Get(name)
	return s
}

// ours returns the Ingresses of the served classes, oldest first.
func (c *Controller) ours() []*networkingv1.Ingress {
	classes, _ := c.classes.List(labels.Everything())
	mine := map[string]bool{}
	hasDefault := false
	for _, cl := range classes {
		if cl.Spec.Controller != c.opts.ControllerName {
			continue
		}
		mine[cl.Name] = true
		if cl.Annotations[defaultClassAnnotation] == "true" {
			hasDefault = true
		}
	}
	var out []*networkingv1.Ingress
	for _, l := range c.ns {
		all, _ := l.ingresses.List(labels.Everything())
		for _, ing := range all {
			switch {
			case ing.Spec.IngressClassName != nil:
				if !mine[*ing.Spec.IngressClassName] {
					continue
				}
			case ing.Annotations[legacyIngressClassAnnotation] != "":
				if !mine[ing.Annotations[legacyIngressClassAnnotation]] {
					continue
				}
			case !hasDefault:
				continue
			}
			out = append(out, ing)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return key(a) < key(b)
	})
	return out
}

func key(ing *networkingv1.Ingress) string { return ing.Namespace + "/" + ing.Name }

// rebuild builds the configuration from the settings file and every
// served Ingress and applies it. An Ingress that does not translate, or
// whose routes the configuration refuses, is left out alone.
func (c *Controller) rebuild(ctx context.Context) error {
	base, err := c.readSettings()
	if err != nil {
		return err
	}
	fileRoutes, _ := base["routes"].([]any)
	fileCerts, _ := base["certificates"].([]any)
	lk := lookup{c}
	state := map[string]*ingressState{}
	checked := map[string]string{}
	var routes []Route
	var certs []any
	for _, ing := range c.ours() {
		st := &ingressState{ing: ing}
		state[key(ing)] = st
		tr, err := Translate(ing, lk, c.opts.Translate)
		if err != nil {
			st.err = err.Error()
			continue
		}
		st.warnings = tr.Warnings
		var mine []any
		for _, ct := range tr.Certificates {
			mine = append(mine, map[string]any{"cert": ct.Cert, "key": ct.Key})
		}
		// Validate this Ingress alone with the settings: its problem
		// must not take any other route down.
		doc := withRoutes(base, tr.Routes, nil, mine)
		frag, err := yaml.Marshal(doc)
		if err != nil {
			st.err = err.Error()
			continue
		}
		msg, seen := c.checked[string(frag)]
		if !seen {
			if _, err := config.Parse(frag, c.opts.ConfigPath, c.opts.Env); err != nil {
				msg = describe(err, ing)
			}
		}
		checked[string(frag)] = msg
		if msg != "" {
			st.err = msg
			continue
		}
		routes = append(routes, tr.Routes...)
		certs = append(certs, mine...)
	}
	sortRoutes(routes)
	all := withRoutes(base, routes, fileRoutes, append(fileCerts, certs...))
	data, err := yaml.Marshal(all)
	if err != nil {
		return err
	}
	cfg, err := config.Parse(data, c.opts.ConfigPath, c.opts.Env)
	if err != nil {
		return fmt.Errorf("the settings with every valid Ingress: %w", err)
	}
	c.mu.Lock()
	c.checked = checked
	prev := c.state
	c.state = state
	c.mu.Unlock()
	for k, st := range state {
		old := prev[k]
		if st.err != "" && (old == nil || old.err != st.err || old.ing.ResourceVersion != st.ing.ResourceVersion) {
			c.logger.Error("ingress refused; every other route keeps working", "ingress", k, "reason", st.err)
		}
		for _, w := range st.warnings {
			if old == nil || !contains(old.warnings, w) {
				c.logger.Warn("ingress served with a problem", "ingress", k, "problem", w)
			}
		}
	}
	if bytes.Equal(data, c.applied) {
		c.logger.Debug("ingress: nothing to apply", "ingresses", len(state))
		return nil // nothing that matters changed (a status write, a resync)
	}
	if err := c.Apply(ctx, cfg); err != nil {
		return err
	}
	c.applied = data
	c.logger.Info("ingress: configuration applied", "ingresses", len(state), "routes", len(cfg.Routes))
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// readSettings reads the settings file as a YAML map.
func (c *Controller) readSettings() (map[string]any, error) {
	base := map[string]any{}
	if c.opts.ConfigPath == "" {
		return base, nil
	}
	data, err := os.ReadFile(c.opts.ConfigPath)
	if err != nil {
		return nil, fmt.Errorf("read settings: %w", err)
	}
	if err := yaml.Unmarshal(data, &base); err != nil {
		return nil, fmt.Errorf("settings %s: not valid YAML: %w", c.opts.ConfigPath, err)
	}
	if base == nil {
		base = map[string]any{}
	}
	if _, err := config.Parse(data, c.opts.ConfigPath, c.opts.Env); err != nil {
		return nil, fmt.Errorf("settings %s: %w", c.opts.ConfigPath, err)
	}
	return base, nil
}

// withRoutes returns the settings with routes (the file's first) and
// certificates.
func withRoutes(base map[string]any, routes []Route, fileRoutes []any, certs []any) map[string]any {
	doc := make(map[string]any, len(base)+2)
	for k, v := range base {
		doc[k] = v
	}
	rs := append([]any(nil), fileRoutes...)
	for _, r := range routes {
		rs = append(rs, map[string]any(r))
	}
	delete(doc, "routes")
	if len(rs) > 0 {
		doc["routes"] = rs
	}
	delete(doc, "certificates")
	if len(certs) > 0 {
		doc["certificates"] = certs
	}
	return doc
}

// describe turns the configuration's refusal of one Ingress's routes into
// a message about the Ingress: route fields become the annotations that set
// them.
func describe(err error, ing *networkingv1.Ingress) string {
	var errs config.Errors
	if !errors.As(err, &errs) {
		return err.Error()
	}
	seen := map[string]bool{}
	var out []string
	for _, fe := range errs {
		k := fe.Key
		if i := strings.Index(k, "]."); strings.HasPrefix(k, "routes[") && i > 0 {
			opt := k[i+2:]
			if j := strings.IndexAny(opt, ".["); j > 0 {
				opt = opt[:j]
			}
			if _, ok := ing.Annotations[AnnotationPrefix+opt]; ok {
				k = AnnotationPrefix + opt
			} else {
				k = opt
			}
		} else if strings.HasPrefix(k, "certificates") {
			k = "spec.tls secret"
		}
		m := k + ": " + fe.Msg
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return strings.Join(out, "; ")
}

// publish writes, as the Lease holder, the Events of what changed and the
// status of every served Ingress.
func (c *Controller) publish(ctx context.Context) {
	c.mu.Lock()
	var states []*ingressState
	for _, st := range c.state {
		states = append(states, st)
	}
	c.mu.Unlock()
	c.mu.Lock()
	for k := range c.written {
		if c.state[k] == nil {
			delete(c.written, k) // deleted, or no longer of our class
		}
	}
	c.mu.Unlock()
	addrs := c.statusAddresses(ctx)
	for _, st := range states {
		k := key(st.ing)
		msg := "Normal/Updated: routes applied"
		if st.err != "" {
			msg = "Warning/Invalid: " + st.err
		} else if len(st.warnings) > 0 {
			msg = "Warning/Problem: " + strings.Join(st.warnings, "; ")
		}
		c.mu.Lock()
		changed := c.written[k] != msg
		c.written[k] = msg
		c.mu.Unlock()
		if changed && c.recorder != nil {
			typ, rest, _ := strings.Cut(msg, "/")
			reason, text, _ := strings.Cut(rest, ": ")
			c.recorder.Event(st.ing, typ, reason, text)
		}
		if st.err == "" && addrs != nil {
			c.writeStatus(ctx, st.ing, addrs)
		}
	}
}

// statusAddresses is what status.loadBalancer.ingress says: the
// StatusService's load balancer, or StatusAddresses. Nil means do not
// write status.
func (c *Controller) statusAddresses(ctx context.Context) []networkingv1.IngressLoadBalancerIngress {
	if c.opts.StatusService != "" {
		ns, name, ok := strings.Cut(c.opts.StatusService, "/")
		if !ok {
			ns, name = c.opts.LeaseNamespace, c.opts.StatusService
		}
		svc, err := c.opts.Client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			c.logger.Warn("ingress: cannot read the status Service", "service", c.opts.StatusService, "error", err.Error())
			return nil
		}
		var out []networkingv1.IngressLoadBalancerIngress
		for _, lb := range svc.Status.LoadBalancer.Ingress {
			out = append(out, networkingv1.IngressLoadBalancerIngress{IP: lb.IP, Hostname: lb.Hostname})
		}
		if len(out) == 0 {
			for _, ip := range svc.Spec.ExternalIPs {
				out = append(out, networkingv1.IngressLoadBalancerIngress{IP: ip})
			}
		}
		return out
	}
	if len(c.opts.StatusAddresses) == 0 {
		return nil
	}
	var out []networkingv1.IngressLoadBalancerIngress
	for _, a := range c.opts.StatusAddresses {
		if net.ParseIP(a) != nil {
			out = append(out, networkingv1.IngressLoadBalancerIngress{IP: a})
		} else {
			out = append(out, networkingv1.IngressLoadBalancerIngress{Hostname: a})
		}
	}
	return out
}

func (c *Controller) writeStatus(ctx context.Context, ing *networkingv1.Ingress, addrs []networkingv1.IngressLoadBalancerIngress) {
	if reflect.DeepEqual(ing.Status.LoadBalancer.Ingress, addrs) {
		return
	}
	up := ing.DeepCopy()
	up.Status.LoadBalancer.Ingress = addrs
	_, err := c.opts.Client.NetworkingV1().Ingresses(ing.Namespace).UpdateStatus(ctx, up, metav1.UpdateOptions{})
	if err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
		c.logger.Warn("ingress: cannot write status", "ingress", key(ing), "error", err.Error())
	}
	if apierrors.IsConflict(err) {
		c.trigger() // the informer brings the newer version; try again then
	}
}

var _ config.Source = (*Controller)(nil)
