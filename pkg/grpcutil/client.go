package grpcutil

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/health" // client-side health checking
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"
)

// ClientOptions configures Dial.
type ClientOptions struct {
	// Targets are the replicas of one service (databroker_service_urls, ...).
	// One target whose host is a name is resolved by DNS, so every replica
	// behind the name is used; several targets are balanced among themselves.
	Targets []*url.URL
	// SharedKey signs the service token attached to every call.
	SharedKey []byte
	// Insecure forces plaintext even for https targets (grpc_insecure).
	Insecure bool
	// RootCAs verifies TLS servers; nil uses the system roots.
	RootCAs *x509.CertPool
	// Registerer receives client metrics; nil registers none.
	Registerer prometheus.Registerer
	// WaitForReady makes calls wait (until their deadline) for a replica
	// to be ready instead of failing at once while every replica is
	// reconnecting: for clients whose calls are rare and must not be lost
	// to a blip (databroker writes). A request-path client that must fail
	// closed fast leaves it off.
	WaitForReady bool
	// TracerProvider records a client span per call and sends it to the
	// server as traceparent metadata; nil traces nothing.
	TracerProvider trace.TracerProvider

	// lookup resolves service names; nil is the system resolver. Tests set
	// it to play DNS answers that change.
	lookup lookupHost
}

func (o ClientOptions) lookupOrDefault() lookupHost {
	if o.lookup != nil {
		return o.lookup
	}
	return net.DefaultResolver.LookupHost
}

// serviceConfig balances calls round-robin over every ready replica and
// health-checks each one so a replica reporting NOT_SERVING is skipped. A
// Check (idempotent: it reads, and its answer depends only on the request)
// that fails UNAVAILABLE, as one in flight on a replica that dies does, is
// tried once more, and round-robin sends the second try to another
// replica, so a lost replica costs no request.
const serviceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "healthCheckConfig": {"serviceName": ""},
  "methodConfig": [{
    "name": [{"service": "envoy.service.auth.v3.Authorization", "method": "Check"}],
    "retryPolicy": {
      "maxAttempts": 2,
      "initialBackoff": "0.001s",
      "maxBackoff": "0.005s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

// ReconnectBackoff is how a client reconnects to a replica that went away.
// Its cap bounds how long requests keep failing after a replica is back:
// with every authorize replica down, the proxy answers 503 until it
// reconnects, so the cap (plus jitter) keeps recovery under 250 ms rather
// than gRPC's default of up to two minutes.
var ReconnectBackoff = backoff.Config{
	BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 200 * time.Millisecond,
}

// clientMetrics are the client metrics of every connection of the process,
// registered with the first Registerer given to Dial.
var (
	clientMetricsOnce sync.Once
	clientMetrics     *rpcMetrics
)

// Dial returns a connection to a service's replicas. It does not block: the
// connection comes up (and comes back after failures, with backoff) in the
// background.
func Dial(o ClientOptions) (*grpc.ClientConn, error) {
	if len(o.Targets) == 0 {
		return nil, fmt.Errorf("dial: no service URL")
	}
	target, addrs, err := targetFor(o.Targets)
	if err != nil {
		return nil, err
	}
	useTLS := o.Targets[0].Scheme == "https" && !o.Insecure
	var creds credentials.TransportCredentials = insecure.NewCredentials()
	if useTLS {
		creds = credentials.NewTLS(&tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12})
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithPerRPCCredentials(&perRPCToken{src: &tokenSource{key: o.SharedKey, ttl: 5 * time.Minute}, secure: useTLS}),
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize), grpc.MaxCallSendMsgSize(MaxMessageSize), grpc.WaitForReady(o.WaitForReady)),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: ReconnectBackoff, MinConnectTimeout: 5 * time.Second}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
	}
	if o.Registerer != nil {
		clientMetricsOnce.Do(func() {
			clientMetrics = newClientMetrics()
			if err := o.Registerer.Register(clientMetrics); err != nil {
				clientMetrics = nil
			}
		})
		if clientMetrics != nil {
			opts = append(opts,
				grpc.WithChainUnaryInterceptor(clientMetrics.unaryClient),
				grpc.WithChainStreamInterceptor(clientMetrics.streamClient))
		}
	}
	if !o.WaitForReady {
		opts = append(opts, grpc.WithChainUnaryInterceptor(reconnectWhenNoneReady))
	}
	if o.TracerProvider != nil {
		opts = append(opts, grpc.WithStatsHandler(otelgrpc.NewClientHandler(
			otelgrpc.WithTracerProvider(o.TracerProvider),
			otelgrpc.WithPropagators(propagation.TraceContext{}),
			otelgrpc.WithMeterProvider(noop.NewMeterProvider()),
			otelgrpc.WithFilter(tracedCall),
		)))
	}
	if strings.HasPrefix(target, dnsScheme+":") {
		opts = append(opts, grpc.WithResolvers(&dnsBuilder{lookup: o.lookupOrDefault(), interval: ResolveInterval}))
	}
	if addrs != nil {
		r := manual.NewBuilderWithScheme("gatehouse")
		r.InitialState(resolver.State{Addresses: addrs})
		opts = append(opts, grpc.WithResolvers(r))
		target = r.Scheme() + ":///replicas"
	}
	cc, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", target, err)
	}
	return cc, nil
}

// NoReplicaWait bounds how long a call that found no ready replica waits
// for one to connect after the reconnect backoff is cut short. It keeps a
// rolling restart from failing requests in the moment between one replica
// leaving (its health turns NOT_SERVING at SIGTERM) and the client's
// connection to a freshly restarted one, which may still sit in reconnect
// backoff although the replica already serves; it stays short so that with
// every replica down the caller still fails closed at once.
var NoReplicaWait = 50 * time.Millisecond

// reconnectWhenNoneReady retries, once, a call that failed because no
// replica was ready: it asks every connection in backoff to reconnect now
// and, when one comes up within NoReplicaWait, sends the call there. When
// the reconnects fail too (every replica is down), it gives up at once.
func reconnectWhenNoneReady(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if status.Code(err) != codes.Unavailable || cc.GetState() == connectivity.Ready || ctx.Err() != nil {
		return err
	}
	cc.ResetConnectBackoff()
	wctx, cancel := context.WithTimeout(ctx, NoReplicaWait)
	defer cancel()
	tried := false // a reconnect was under way since the reset
	for {
		switch st := cc.GetState(); {
		case st == connectivity.Ready:
			return invoker(ctx, method, req, reply, cc, opts...)
		case st == connectivity.Connecting || st == connectivity.Idle:
			tried = true
		case tried:
			return err // the reconnects failed: no replica is up
		}
		if !cc.WaitForStateChange(wctx, cc.GetState()) {
			return err
		}
	}
}

// targetFor returns a dns target for one URL, or the addresses of several.
func targetFor(urls []*url.URL) (string, []resolver.Address, error) {
	hostports := make([]string, 0, len(urls))
	for _, u := range urls {
		hp, err := HostPort(u)
		if err != nil {
			return "", nil, err
		}
		hostports = append(hostports, hp)
	}
	if len(hostports) == 1 {
		host, _, _ := net.SplitHostPort(hostports[0])
		if net.ParseIP(host) != nil {
			return "passthrough:///" + hostports[0], nil, nil
		}
		return dnsScheme + ":///" + hostports[0], nil, nil
	}
	addrs := make([]resolver.Address, len(hostports))
	for i, hp := range hostports {
		addrs[i] = resolver.Address{Addr: hp}
	}
	return "", addrs, nil
}

// HostPort returns host:port of a service URL, with the scheme's default port.
func HostPort(u *url.URL) (string, error) {
	if u.Host == "" {
		return "", fmt.Errorf("service URL %q has no host", u.String())
	}
	if u.Port() != "" {
		return u.Host, nil
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return net.JoinHostPort(u.Hostname(), "443"), nil
	case "http":
		return net.JoinHostPort(u.Hostname(), "80"), nil
	}
	return "", fmt.Errorf("service URL %q: expected http:// or https://", u.String())
}

// perRPCToken attaches the service token to every call.
type perRPCToken struct {
	src    *tokenSource
	secure bool
}

func (p *perRPCToken) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	return p.src.metadata(time.Now())
}

func (p *perRPCToken) RequireTransportSecurity() bool { return false }
