package grpcutil

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
)

// MaxMessageSize bounds a gRPC message in either direction.
const MaxMessageSize = 16 << 20

// ServerOptions configures NewServer.
type ServerOptions struct {
	// SharedKey is the decoded shared_secret that service tokens are signed with.
	SharedKey []byte
	// Creds are the TLS credentials; nil serves plaintext.
	Creds credentials.TransportCredentials
	// Logger receives refused calls and recovered panics.
	Logger *slog.Logger
	// Registerer receives the gRPC server metrics; nil registers none.
	Registerer prometheus.Registerer
	// TracerProvider records a server span per call (continuing the
	// caller's traceparent from the metadata), in process too
	// (LocalInterceptor); nil traces nothing and costs nothing.
	TracerProvider trace.TracerProvider
}

// Server is a gRPC server with service-token authentication, health,
// reflection, keepalive, message limits, panic recovery and metrics.
type Server struct {
	*grpc.Server
	// Health is the grpc.health.v1 server; services set their status on it.
	Health *health.Server

	// local and localInterceptor serve LocalInterceptor; remote is the
	// chain of the unary calls over the network.
	local            unaryChain
	localInterceptor grpc.UnaryServerInterceptor
	remote           unaryChain

	// streams is cancelled by Drain so that long-lived streams (Sync)
	// end and GracefulStop does not wait on them.
	streams       context.Context
	cancelStreams context.CancelFunc
}

// Drain stops the server gracefully: health turns NOT_SERVING, new calls
// are refused, in-flight unary calls finish, open streams are ended, and
// after timeout whatever is left is closed.
func (s *Server) Drain(timeout time.Duration) {
	s.Health.Shutdown()
	s.cancelStreams()
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		s.Stop()
	}
}

// streamContext ends a stream's context when the server drains.
func (s *Server) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	stop := context.AfterFunc(s.streams, cancel)
	defer stop()
	return h(srv, &drainableStream{ServerStream: ss, ctx: ctx})
}

type drainableStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (d *drainableStream) Context() context.Context { return d.ctx }

// LocalInterceptor returns the interceptors of the server's unary calls
// that apply to a call made in this process, without the network (such as
// extauthz.LocalClient's): the metrics (the same series as calls over the
// network) around panic recovery (a panic becomes codes.Internal, and the
// process lives on). It leaves out the service-token check: the caller is
// this process. An interceptor added to the server's chain that applies
// in process too (tracing) belongs here as well. The interceptor is safe
// for concurrent use and allocates nothing per call once a method has
// been called.
func (s *Server) LocalInterceptor() grpc.UnaryServerInterceptor { return s.localInterceptor }

// unaryChain is a chain of unary interceptors run as one function rather
// than through grpc's chaining, which builds a closure per call and level:
// metrics, then panic recovery, then the service-token check. It serves
// the unary calls over the network and, without the token check,
// LocalInterceptor.
type unaryChain struct {
	metrics *rpcMetrics // nil without a Registerer
	rec     *recoverer
	auth    *authenticator // nil in process
	// tracer records in-process calls (the network's are the stats
	// handler's); nil without a TracerProvider.
	tracer trace.Tracer
}

func (c *unaryChain) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if c.tracer != nil {
		return c.traced(ctx, req, info, h)
	}
	return c.untraced(ctx, req, info, h)
}

func (c *unaryChain) untraced(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if c.metrics == nil {
		return c.rec.unary(ctx, req, info, h, c.auth)
	}
	return c.metrics.unaryThen(ctx, req, info, h, c.rec, c.auth)
}

// openMethods are reachable without a service token.
func openMethod(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.")
}

// NewServer builds a Server. Register services on it, then Serve.
func NewServer(o ServerOptions) *Server {
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	a := &authenticator{key: o.SharedKey, logger: logger}
	rec := &recoverer{logger: logger}
	s := &Server{Health: health.NewServer()}
	s.streams, s.cancelStreams = context.WithCancel(context.Background())
	// The chains, outermost first: metrics, panic recovery, service token.
	// LocalInterceptor runs the first two of them for in-process calls.
	s.local.rec, s.remote.rec, s.remote.auth = rec, rec, a
	stream := []grpc.StreamServerInterceptor{rec.stream, a.stream, s.stream}
	if o.Registerer != nil {
		m := newServerMetrics()
		if err := o.Registerer.Register(m); err == nil {
			s.local.metrics, s.remote.metrics = m, m
			stream = append([]grpc.StreamServerInterceptor{m.stream}, stream...)
		}
	}
	s.localInterceptor = s.local.intercept
	opts := []grpc.ServerOption{}
	if o.TracerProvider != nil {
		s.local.tracer = o.TracerProvider.Tracer(tracerName)
		opts = append(opts, grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(o.TracerProvider),
			otelgrpc.WithPropagators(propagation.TraceContext{}),
			otelgrpc.WithMeterProvider(noop.NewMeterProvider()),
			otelgrpc.WithFilter(tracedCall),
		)))
	}
	opts = append(opts,
		grpc.UnaryInterceptor(s.remote.intercept),
		grpc.ChainStreamInterceptor(stream...),
		// Reuse goroutines across calls: a fresh goroutine per call grows
		// its stack anew each time, which showed up as a tenth of
		// authorize's CPU under load. Long-lived streams (Sync) tie up a
		// worker, and calls past the busy workers get goroutines as before.
		grpc.NumStreamWorkers(streamWorkers()),
		grpc.MaxRecvMsgSize(MaxMessageSize),
		grpc.MaxSendMsgSize(MaxMessageSize),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	if o.Creds != nil {
		opts = append(opts, grpc.Creds(o.Creds))
	}
	s.Server = grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(s.Server, s.Health)
	reflection.Register(s.Server)
	return s
}

// minStreamWorkers is the fewest stream workers a server keeps. Their
// number follows the calls in flight rather than the cores: a proxy under
// load has tens of Checks waiting on authorize at once, and with 2 cores
// 4 per core left most of them to fresh goroutines, whose stack growth was
// 3.5% of the CPU of a Check (BenchmarkCheckGRPC, 32 in flight). Far more
// workers than calls do not help either: gRPC hands a call to the worker
// idle longest, so each would run rarely and regrow the stack the
// collector shrank meanwhile.
const minStreamWorkers = 32

func streamWorkers() uint32 {
	return uint32(max(4*runtime.NumCPU(), minStreamWorkers))
}

type authenticator struct {
	key    []byte
	logger *slog.Logger
	cache  tokenCache
}

// TokenFromMetadata returns the service token of an incoming call: metadata
// `jwt` (Pomerium's form) or `authorization: Bearer <jwt>`.
func TokenFromMetadata(md metadata.MD) string {
	if v := md.Get("jwt"); len(v) > 0 {
		return v[0]
	}
	return bearerToken(md.Get("authorization"))
}

// bearerToken returns the token of the first "Bearer <token>" value.
func bearerToken(values []string) string {
	for _, v := range values {
		if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			return strings.TrimSpace(v[7:])
		}
	}
	return ""
}

func (a *authenticator) check(ctx context.Context, method string) error {
	if openMethod(method) {
		return nil
	}
	// Look up the two keys rather than copying the whole metadata, which
	// FromIncomingContext does on every call.
	tok := ""
	if v := metadata.ValueFromIncomingContext(ctx, "jwt"); len(v) > 0 {
		tok = v[0]
	} else {
		tok = bearerToken(metadata.ValueFromIncomingContext(ctx, "authorization"))
	}
	now := time.Now()
	if tok != "" && a.cache.valid(tok, now) {
		return nil
	}
	exp, err := verifyServiceToken(a.key, tok, now)
	if err == nil && now.After(exp) {
		err = ErrTokenExpired
	}
	if err != nil {
		// Never log the token itself.
		a.logger.Warn("grpc call refused", "method", method, "reason", err.Error())
		return status.Error(codes.Unauthenticated, err.Error())
	}
	a.cache.add(tok, exp)
	return nil
}

func (a *authenticator) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := a.check(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return h(srv, ss)
}

// recoverer turns a handler panic into codes.Internal; the process lives on.
type recoverer struct{ logger *slog.Logger }

func (r *recoverer) recovered(method string, p any) error {
	r.logger.Error("grpc handler panicked", "method", method, "panic", p, "stack", string(debug.Stack()))
	return status.Error(codes.Internal, "internal error")
}

// unary calls h, after a's service-token check unless a is nil, and turns
// a panic of either into codes.Internal.
func (r *recoverer) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler, a *authenticator) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = r.recovered(info.FullMethod, p)
		}
	}()
	if a != nil {
		if err := a.check(ctx, info.FullMethod); err != nil {
			return nil, err
		}
	}
	return h(ctx, req)
}

func (r *recoverer) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = r.recovered(info.FullMethod, p)
		}
	}()
	return h(srv, ss)
}
