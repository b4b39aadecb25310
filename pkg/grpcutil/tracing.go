package grpcutil

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

// tracerName names the spans grpcutil starts itself (in-process calls).
const tracerName = "github.com/gatehouse/gatehouse/pkg/grpcutil"

// tracedCall leaves health checks and reflection out of traces: probes
// every few seconds would bury the calls that matter.
func tracedCall(info *stats.RPCTagInfo) bool { return !openMethod(info.FullMethodName) }

// traced runs an in-process call in a span, as otelgrpc's server handler
// records a call over the network: named by the full method, kind server
// (the callee's side: there is no client span in process), with the same
// rpc.* attributes and the status code. The parent is the caller's span,
// from ctx: the proxy's request span, in the same trace.
func (l *unaryChain) traced(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	name := strings.TrimPrefix(info.FullMethod, "/")
	service, method, _ := strings.Cut(name, "/")
	ctx, span := l.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("rpc.system", "grpc"),
		attribute.String("rpc.service", service),
		attribute.String("rpc.method", method),
		attribute.Bool("gatehouse.in_process", true),
	))
	defer span.End()
	resp, err := l.untraced(ctx, req, info, h)
	code := errorCode(err)
	span.SetAttributes(attribute.Int64("rpc.grpc.status_code", int64(code)))
	if err != nil {
		span.SetStatus(codes.Error, status.Convert(err).Message())
	}
	return resp, err
}
