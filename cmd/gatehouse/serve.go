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
		var errs config.Errors
		if errors.As(err, &errs) {
			return fmt.Errorf("%s: invalid configuration:\n%w", displayPath(*path), err)
		}
		return err
	}
	cfg := src.Current()
	logs.Set(cfg.LogLevel, cfg.LogFormat)
	src.OnChange("logging", config.Notify(func(_ context.Context, c *config.Config) { logs.Set(c.LogLevel, c.LogFormat) }))
	logger := logs.Logger()
	for _, w := range cfg.Warnings() {
		logger.Warn(w)
	}
	ctx, stop := signalContext()
	defer stop()
	p, err := newProcess(ctx, src, logger)
	if err != nil {
		return err
	}
	defer p.close()
	// The file is read again when it changes and on SIGHUP.
	p.runners = append(p.runners, src.Watch, reloadOnHangup(src))
	return p.run(ctx)
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
	}
	p.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		certCollector{src: src})
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
	// Not ready until a replica of the service answers: a proxy that
	// cannot reach authorize would only fail closed.
	p.health.Add(service+" connection", func() error {
		if st := cc.GetState(); st != connectivity.Ready {
			cc.Connect()
			return fmt.Errorf("no %s replica reachable (%s)", service, st)
		}
		return nil
	})
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

// run serves until ctx ends (SIGINT/SIGTERM), then drains.
func (p *process) run(ctx context.Context) error {
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
	if p.grpc != nil {
		p.grpc.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	}
	err := g.Wait()
	if errors.Is(err, grpc.ErrServerStopped) || errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	p.logger.Info("gatehouse stopped")
	return err
}
