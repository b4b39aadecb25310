package grpcutil

import (
	"context"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

// metricValue returns the value of the series of name whose labels
// include want (a counter's value, a histogram's count), or -1.
func metricValue(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue series
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

// A call made in process through LocalInterceptor meets the server's
// recovery and is counted in the same series as the calls over the
// network, under go-grpc-middleware's names and labels.
func TestLocalInterceptorSharesTheServerMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := NewServer(ServerOptions{SharedKey: testKey, Registerer: reg})
	testgrpc.RegisterTestServiceServer(s, testService{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	cc, err := Dial(ClientOptions{Targets: []*url.URL{{Scheme: "http", Host: lis.Addr().String()}}, SharedKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := testgrpc.NewTestServiceClient(cc).EmptyCall(ctx, &testgrpc.Empty{}, grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}

	// In process: the same method, then one that panics.
	local := s.LocalInterceptor()
	empty := &grpc.UnaryServerInfo{Server: testService{}, FullMethod: "/grpc.testing.TestService/EmptyCall"}
	if _, err := local(ctx, &testgrpc.Empty{}, empty, func(ctx context.Context, req any) (any, error) {
		return testService{}.EmptyCall(ctx, req.(*testgrpc.Empty))
	}); err != nil {
		t.Fatal(err)
	}
	unary := &grpc.UnaryServerInfo{Server: testService{}, FullMethod: "/grpc.testing.TestService/UnaryCall"}
	if _, err := local(ctx, &testgrpc.SimpleRequest{}, unary, func(ctx context.Context, req any) (any, error) {
		return testService{}.UnaryCall(ctx, req.(*testgrpc.SimpleRequest))
	}); status.Code(err) != codes.Internal {
		t.Fatalf("in-process panic: %v, want Internal", err)
	}

	labels := func(method string) map[string]string {
		return map[string]string{"grpc_type": "unary", "grpc_service": "grpc.testing.TestService", "grpc_method": method}
	}
	withCode := func(method, code string) map[string]string {
		l := labels(method)
		l["grpc_code"] = code
		return l
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"grpc_server_started_total", labels("EmptyCall"), 2},
		{"grpc_server_msg_received_total", labels("EmptyCall"), 2},
		{"grpc_server_msg_sent_total", labels("EmptyCall"), 2},
		{"grpc_server_handled_total", withCode("EmptyCall", "OK"), 2},
		{"grpc_server_handling_seconds", labels("EmptyCall"), 2},
		{"grpc_server_started_total", labels("UnaryCall"), 1},
		{"grpc_server_msg_sent_total", labels("UnaryCall"), -1}, // it failed
		{"grpc_server_handled_total", withCode("UnaryCall", "Internal"), 1},
	} {
		if got := metricValue(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// The in-process chain allocates nothing per call once the method's
// series exist: it sits on every all-in-one request.
func TestLocalInterceptorDoesNotAllocate(t *testing.T) {
	s := NewServer(ServerOptions{SharedKey: testKey, Registerer: prometheus.NewRegistry()})
	local := s.LocalInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/grpc.testing.TestService/EmptyCall"}
	req := &testgrpc.Empty{}
	handler := func(_ context.Context, req any) (any, error) { return req, nil }
	ctx := context.Background()
	if _, err := local(ctx, req, info, handler); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = local(ctx, req, info, handler) }); n != 0 {
		t.Errorf("%v allocations per call", n)
	}
}
