package grpcutil

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

// Dial's client metrics count what go-grpc-middleware's Prometheus
// provider counted, under its names and labels: a unary call that
// succeeds, one that fails, and a stream that ends with an error.
func TestDialClientMetrics(t *testing.T) {
	addr := startServer(t)
	cc, err := Dial(ClientOptions{
		Targets: []*url.URL{{Scheme: "http", Host: addr}}, SharedKey: testKey, Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	// clientMetrics went to the first Registerer any Dial of this process
	// was given; read them through a registry of the test's own.
	reg := prometheus.NewRegistry()
	reg.MustRegister(clientMetrics)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := testgrpc.NewTestServiceClient(cc)
	if _, err := client.EmptyCall(ctx, &testgrpc.Empty{}, grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	if _, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{}); status.Code(err) != codes.Internal {
		t.Fatalf("UnaryCall: %v, want Internal", err)
	}
	stream, err := client.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.Unimplemented {
		t.Fatalf("StreamingOutputCall: %v, want Unimplemented", err)
	}

	labels := func(typ, method string, code ...string) map[string]string {
		l := map[string]string{"grpc_type": typ, "grpc_service": "grpc.testing.TestService", "grpc_method": method}
		if len(code) > 0 {
			l["grpc_code"] = code[0]
		}
		return l
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"grpc_client_started_total", labels("unary", "EmptyCall"), 1},
		{"grpc_client_msg_sent_total", labels("unary", "EmptyCall"), 1},
		{"grpc_client_msg_received_total", labels("unary", "EmptyCall"), 1},
		{"grpc_client_handled_total", labels("unary", "EmptyCall", "OK"), 1},
		{"grpc_client_started_total", labels("unary", "UnaryCall"), 1},
		{"grpc_client_msg_sent_total", labels("unary", "UnaryCall"), 1},
		{"grpc_client_msg_received_total", labels("unary", "UnaryCall"), -1}, // it failed
		{"grpc_client_handled_total", labels("unary", "UnaryCall", "Internal"), 1},
		{"grpc_client_started_total", labels("server_stream", "StreamingOutputCall"), 1},
		{"grpc_client_msg_sent_total", labels("server_stream", "StreamingOutputCall"), 1},
		{"grpc_client_msg_received_total", labels("server_stream", "StreamingOutputCall"), -1},
		{"grpc_client_handled_total", labels("server_stream", "StreamingOutputCall", "Unimplemented"), 1},
		{"grpc_client_handling_seconds", labels("unary", "EmptyCall"), -1}, // the provider's client has none by default
	} {
		if got := metricValue(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// The unary client interceptor allocates nothing once the method's series
// exist: it sits on every Check the proxy sends.
func TestUnaryClientMetricsDoNotAllocate(t *testing.T) {
	m := newClientMetrics()
	invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
	ctx, req := context.Background(), &testgrpc.Empty{}
	call := func() { _ = m.unaryClient(ctx, "/grpc.testing.TestService/EmptyCall", req, req, nil, invoker) }
	call()
	if n := testing.AllocsPerRun(100, call); n != 0 {
		t.Errorf("%v allocations per call", n)
	}
}
