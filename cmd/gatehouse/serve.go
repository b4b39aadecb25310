package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/gatehouse/gatehouse/pkg/autocert"
	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/extauthz"
	"github.com/gatehouse/gatehouse/pkg/grpcutil"
	"github.com/gatehouse/gatehouse/pkg/health"
	"github.com/gatehouse/gatehouse/pkg/logging"
	"github.com/gatehouse/gatehouse/pkg/tracing"
)

// drainTimeout bounds how long shutdown waits for in-flight requests and
// streams before closing them.
const drainTimeout = 10 * time.Second

// dependencyInterval is how often the dependencies (the databroker, the
// databroker's storage) are checked for logs and the
// gatehouse_dependency_up metric.
const dependencyInterval = 5 * time.Second

// process is everything one gatehouse process runs, assembled from the
// services named in the config by build.
type process struct {
	src     config.Source
	cfg     *config.Config // the configuration the process started with
	logger  *slog.Logger
	health  *health.Registry
	metrics *prometheus.Registry
	grpc    *grpcutil.Server // nil when no gRPC service runs here
	// http serves the HTTP listener: authenticate and proxy, split by
	// Host. Nil when neither runs here.
	http     http.Handler
	runners  []func(context.Context) error
	closers  []func()
	grpcConn map[string]*grpc.ClientConn
	// stopping is closed when the shutdown grace period begins.
	stopping chan struct{}
	// dependencyUp is gatehouse_dependency_up{dependency}: 1 while a
	// dependency (health.Registry.AddDependency) answers, else 0.
	dependencyUp *prometheus.GaugeVec
	// autocert obtains the HTTPS listener's certificates (nil when off).
	autocert *autocert.Manager
	// tracing is the process's OpenTelemetry tracing; nil when off.
	tracing *tracing.Provider
}

func runCommand(args []string, stderr io.Writer) error {
	fs := newFlagSet("run")
	path := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	// One format for every line of the process, the configuration's
	// (log_format, log_level), from the first line on, reloads included.
	logs := logging.NewSwitch(stderr)
	src, err := config.NewSource(*path, os.LookupEnv, logs.Logger())
	if err != nil {
		return configError(*path, "configuration", err)
	}
	logger := followConfigLogging(src, logs)
	sig := stopSignals()
	defer sig.stop()
	p, err := newProcess(sig.ctx, src, logger)
	if err != nil {
		return err
	}
	defer p.close()
	// The file is read again when it changes and on SIGHUP.
	p.runners = append(p.runners, src.Watch, reloadOnHangup(src))
	return p.run(sig.ctx, sig.now)
}

// shutdownSignals is how a process is asked to stop: ctx ends at the
// first SIGTERM or SIGINT; now is closed on SIGINT (an operator's Ctrl-C)
// or a second signal, to skip what remains of shutdown_grace_period.
type shutdownSignals struct {
	ctx  context.Context
	now  <-chan struct{}
	stop func()
}

func stopSignals() shutdownSignals {
	ctx, cancel := context.WithCancel(context.Background())
	now := make(chan struct{})
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		first := true
		for {
			select {
			case <-done:
				return
			case s := <-ch:
				cancel()
				if s == os.Interrupt || !first {
					close(now)
					return
				}
				first = false
			}
		}
	}()
	return shutdownSignals{ctx: ctx, now: now, stop: func() {
		signal.Stop(ch)
		close(done)
		cancel()
	}}
}

// reloadOnHangup returns a runner that reloads src on every SIGHUP. The
// signal is caught from now on, not only once the runner runs: a SIGHUP
// must never end the process.
func reloadOnHangup(src *config.FileSource) func(context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return func(ctx context.Context) error {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-hup:
				_ = src.Reload(ctx)
			}
		}
	}
}

// newProcess builds the services that src's configuration names (see
// build). Each service follows src's changes: a new configuration is
// built by every one of them before any switches to it (config.Switch).
func newProcess(ctx context.Context, src config.Source, logger *slog.Logger) (*process, error) {
	p := &process{
		src: src, cfg: src.Current(), logger: logger,
		health:   health.NewRegistry(),
		metrics:  prometheus.NewRegistry(),
		grpcConn: map[string]*grpc.ClientConn{},
		stopping: make(chan struct{}),
	}
	p.dependencyUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gatehouse_dependency_up",
		Help: "1 while a dependency the process serves without for a while (databroker, its storage) answers, else 0. Readiness does not follow it.",
	}, []string{"dependency"})
	p.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		p.dependencyUp, certCollector{src: src})
	if err := p.startTracing(ctx); err != nil {
		return nil, err
	}
	if err := p.build(ctx); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// build builds the services this process runs, each from what the ones
// before it built:
//
//  1. the gRPC server, when databroker or authorize runs here;
//  2. databroker, served on it;
//  3. authorize, served on it, syncing from the databroker (this
//     process's, over its own gRPC listener, or databroker_service_url);
//  4. authenticate, writing to the databroker;
//  5. proxy, asking authorize: this process's in process (same
//     interceptors, no network hop), else authorize_service_url over gRPC;
//  6. the HTTP handler of authenticate and proxy.
func (p *process) build(ctx context.Context) error {
	cfg := p.cfg
	if cfg.Runs(config.ServiceDataBroker) || cfg.Runs(config.ServiceAuthorize) {
		p.grpc = newGRPCServer(cfg, p.logger, p.metrics, p.tracing.TracerProvider())
	}
	if cfg.Runs(config.ServiceDataBroker) {
		if err := p.addDataBroker(ctx); err != nil {
			return fmt.Errorf("start %s: %w", config.ServiceDataBroker, err)
		}
	}
	// localAuthorizer is this process's authorize service, when it runs
	// here, behind the interface of a gRPC client.
	var localAuthorizer authv3.AuthorizationClient
	if cfg.Runs(config.ServiceAuthorize) {
		svc, err := p.addAuthorize(ctx)
		if err != nil {
			return fmt.Errorf("start %s: %w", config.ServiceAuthorize, err)
		}
		localAuthorizer = extauthz.NewLocalClient(svc, p.grpc.LocalInterceptor())
	}
	var authenticateHTTP, proxyHTTP http.Handler
	if cfg.Runs(config.ServiceAuthenticate) {
		h, err := p.addAuthenticate(ctx)
		if err != nil {
			return fmt.Errorf("start %s: %w", config.ServiceAuthenticate, err)
		}
		authenticateHTTP = h
	}
	if cfg.Runs(config.ServiceProxy) {
		h, err := p.addProxy(ctx, localAuthorizer)
		if err != nil {
			return fmt.Errorf("start %s: %w", config.ServiceProxy, err)
		}
		proxyHTTP = h
	}
	p.http = splitByHost(cfg.IsAuthenticateHost, authenticateHTTP, proxyHTTP)
	if cfg.Autocert != nil && p.http != nil {
		if err := p.addAutocert(); err != nil {
			return fmt.Errorf("start autocert: %w", err)
		}
	}
	return nil
}

// service is what the process runs of every service.
type service interface {
	// Run does the service's background work until ctx ends.
	Run(ctx context.Context) error
	// Ready reports nil when the service can serve (/readyz).
	Ready() error
}

// add runs svc with the process and makes its readiness part of /readyz.
func (p *process) add(name string, svc service) {
	p.runners = append(p.runners, svc.Run)
	p.health.Add(name, svc.Ready)
	p.logger.Info("service configured", "service", name)
}

// newGRPCServer returns the gRPC server of the databroker and authorize
// services: service tokens, health, reflection, panic recovery, metrics.
func newGRPCServer(cfg *config.Config, logger *slog.Logger, metrics prometheus.Registerer, tp trace.TracerProvider) *grpcutil.Server {
	var creds credentials.TransportCredentials
	if !cfg.GRPCInsecureOrDefault() {
		creds = credentials.NewTLS(&tls.Config{Certificates: cfg.TLSCertificates, MinVersion: tls.VersionTLS12})
	}
	return grpcutil.NewServer(grpcutil.ServerOptions{
		SharedKey: cfg.SharedKey, Creds: creds, Logger: logger, Registerer: metrics, TracerProvider: tp,
	})
}

// conn returns the shared client connection to a service's replicas.
func (p *process) conn(service string) (*grpc.ClientConn, error) {
	if cc, ok := p.grpcConn[service]; ok {
		return cc, nil
	}
	targets := p.cfg.DataBrokerTargets
	if service == config.ServiceAuthorize {
		targets = p.cfg.AuthorizeTargets
	}
	if len(targets) == 0 {
		// The service runs in this process: talk to our own gRPC listener.
		addr := p.cfg.GRPCAddress
		host, port, _ := net.SplitHostPort(addr)
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		scheme := "http"
		if !p.cfg.GRPCInsecureOrDefault() {
			scheme = "https"
		}
		u, err := parseURL(scheme + "://" + net.JoinHostPort(host, port))
		if err != nil {
			return nil, err
		}
		targets = append(targets, u)
	}
	cc, err := grpcutil.Dial(grpcutil.ClientOptions{
		Targets: targets, SharedKey: p.cfg.SharedKey, Insecure: p.cfg.GRPCInsecure != nil && *p.cfg.GRPCInsecure,
		RootCAs: p.cfg.CAPool, Registerer: p.metrics, TracerProvider: p.tracing.TracerProvider(),
		// A sign-in's write waits out a databroker reconnect (bounded by
		// its deadline); a Check to authorize fails closed at once.
		WaitForReady: service == config.ServiceDataBroker,
	})
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", service, err)
	}
	p.grpcConn[service] = cc
	reachable := func() error {
		if st := cc.GetState(); st != connectivity.Ready {
			cc.Connect()
			return fmt.Errorf("no %s replica reachable (%s)", service, st)
		}
		return nil
	}
	if service == config.ServiceAuthorize {
		// Not ready until a replica of authorize answers: a proxy that
		// cannot reach one would only fail closed.
		p.health.Add(service+" connection", reachable)
	} else {
		// The databroker is storage: authorize serves from its synced
		// cache and authenticate answers what it can while no replica
		// answers, so its loss is reported (readyz detail, metric, log)
		// but never makes this process unready. Otherwise a storage blip
		// would take every authorize out of DNS and fail every request.
		p.health.AddDependency(service, reachable)
	}
	return cc, nil
}

func (p *process) close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
	p.closers = nil
	for _, cc := range p.grpcConn {
		_ = cc.Close()
	}
}

// run serves until stop ends (SIGTERM, SIGINT), then shuts down in two
// steps so that a rolling restart fails no request: first /readyz fails
// and gRPC health says NOT_SERVING while every listener keeps accepting
// and serving, for shutdown_grace_period (load balancers and clients stop
// sending here meanwhile); then the listeners close and in-flight
// requests and streams drain (at most drainTimeout). now (may be nil)
// skips what remains of the grace period.
func (p *process) run(stop context.Context, now <-chan struct{}) error {
	serving, endServing := context.WithCancel(context.WithoutCancel(stop))
	defer endServing()
	go func() {
		select {
		case <-serving.Done():
			return // a listener failed: no grace to give
		case <-stop.Done():
		}
		grace := p.cfg.ShutdownGrace()
		p.health.SetStopping()
		close(p.stopping)
		if p.grpc != nil {
			p.grpc.Health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
		}
		p.logger.Info("gatehouse stopping: not ready, still serving during the grace period", "grace_period", grace.String())
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
		case <-now:
		case <-serving.Done():
		}
		endServing() // serve logs "gatehouse shutting down; draining ..."

	}()
	return p.serve(serving)
}

// serve runs every listener and background task until ctx ends, then
// drains.
func (p *process) serve(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	cfg := p.cfg

	g.Go(func() error {
		return health.Serve(ctx, cfg.HealthCheckAddr, p.health.Handler(), p.logger, drainTimeout)
	})
	if addr := os.Getenv("GATEHOUSE_PPROF_ADDR"); addr != "" {
		// Go's profiler, for operators chasing a performance problem; only
		// ever bind it to loopback.
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		g.Go(func() error {
			// A debugging aid never stops the process.
			if err := health.Serve(ctx, addr, mux, p.logger, drainTimeout); err != nil {
				p.logger.Warn("pprof listener not started", "address", addr, "error", err)
			}
			return nil
		})
	}
	if cfg.MetricsAddr != "" {
		g.Go(func() error { return p.serveMetrics(ctx) })
	}
	for _, r := range p.runners {
		g.Go(func() error { return r(ctx) })
	}
	g.Go(func() error {
		p.health.WatchDependencies(ctx, dependencyInterval, p.logger, func(name string, up bool) {
			v := 0.0
			if up {
				v = 1
			}
			p.dependencyUp.WithLabelValues(name).Set(v)
		})
		return nil
	})
	if p.grpc != nil {
		lis, err := net.Listen("tcp", cfg.GRPCAddress)
		if err != nil {
			return fmt.Errorf("listen grpc_address %s: %w", cfg.GRPCAddress, err)
		}
		p.logger.Info("grpc listener started", "address", lis.Addr().String())
		g.Go(func() error { return p.grpc.Serve(lis) })
		g.Go(func() error {
			<-ctx.Done()
			p.grpc.Drain(drainTimeout)
			return nil
		})
	}
	if p.http != nil {
		g.Go(func() error { return p.serveHTTP(ctx, p.http) })
	}
	g.Go(func() error {
		<-ctx.Done()
		p.logger.Info("gatehouse shutting down; draining requests and streams", "drain_timeout", drainTimeout.String())
		return nil
	})
	p.health.SetStarted()
	select {
	case <-p.stopping: // a SIGTERM already came: stay NOT_SERVING
	default:
		if p.grpc != nil {
			p.grpc.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		}
	}
	err := g.Wait()
	if errors.Is(err, grpc.ErrServerStopped) || errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	p.logger.Info("gatehouse stopped")
	return err
}

// configError says which file a configuration error is about; a list of
// problems (config.Errors) gets a heading naming what was invalid.
func configError(path, what string, err error) error {
	var errs config.Errors
	if errors.As(err, &errs) {
		return fmt.Errorf("%s: invalid %s:\n%w", displayPath(path), what, err)
	}
	return err
}

// followConfigLogging puts the process's log format and level under the
// configuration, reloads included, logs its warnings and returns the
// process's logger.
func followConfigLogging(src config.Source, logs *logging.Switch) *slog.Logger {
	cfg := src.Current()
	logs.Set(cfg.LogLevel, cfg.LogFormat)
	src.OnChange("logging", config.Notify(func(_ context.Context, c *config.Config) { logs.Set(c.LogLevel, c.LogFormat) }))
	logger := logs.Logger()
	for _, w := range cfg.Warnings() {
		logger.Warn(w)
	}
	return logger
}
