package grpcutil

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

// An in-process call meets tracing as a call over the network does: a
// server span named by the method, child of the caller's span, whose
// context reaches the handler, with the status code.
func TestLocalInterceptorTraces(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	s := NewServer(ServerOptions{SharedKey: testKey, Registerer: prometheus.NewRegistry(), TracerProvider: tp})
	local := s.LocalInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/grpc.testing.TestService/EmptyCall"}

	ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
	var inHandler trace.SpanContext
	handler := func(ctx context.Context, req any) (any, error) {
		inHandler = trace.SpanContextFromContext(ctx)
		return nil, status.Error(codes.PermissionDenied, "no")
	}
	if _, err := local(ctx, &testgrpc.Empty{}, info, handler); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("err = %v", err)
	}
	parent.End()
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	call := spans[0]
	if call.Name() != "grpc.testing.TestService/EmptyCall" || call.SpanKind() != trace.SpanKindServer {
		t.Errorf("span %q kind %v", call.Name(), call.SpanKind())
	}
	if call.Parent().SpanID() != parent.SpanContext().SpanID() || !call.SpanContext().Equal(inHandler) {
		t.Errorf("span not the caller's child, or not the handler's context")
	}
	if call.Status().Code.String() != "Error" {
		t.Errorf("status %v, want Error", call.Status())
	}
}
