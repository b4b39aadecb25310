package authorize

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/gatehouse/gatehouse/pkg/extauthz"
	"github.com/gatehouse/gatehouse/pkg/grpcutil"
)

// grpcBenchConns is how many requests the proxy has in flight at once in
// the load test the split deployment was profiled under (wrk, 32
// connections).
const grpcBenchConns = 32

// BenchmarkCheckGRPC is one Check as the split deployment's proxy makes
// it: over loopback gRPC, through the production client (grpcutil.Dial:
// service token, metrics, retry policy, reconnectWhenNoneReady) and
// server (grpcutil.NewServer: metrics, recovery, service-token check),
// from grpcBenchConns goroutines at once, each with the proxy's deadline.
// Both ends run in this process, so cpu-µs/op (the process's user+system
// CPU per call) is the whole round trip's price: what the proxy and
// authorize processes together spend on one request's Check. ns/op is
// wall time, bounded by the cores, and says less. The collector runs at
// cmd/gatehouse's target (GOGC=200 unless GOGC is set), since most of the
// garbage a Check makes is gRPC's and its cost depends on that.
func BenchmarkCheckGRPC(b *testing.B) {
	if _, set := os.LookupEnv("GOGC"); !set {
		defer debug.SetGCPercent(debug.SetGCPercent(200))
	}
	for _, cred := range []string{"cookie", "bearer"} {
		b.Run(cred, func(b *testing.B) {
			client, reqs := grpcBenchSetup(b, cred)
			next := make(chan *authv3.CheckRequest, len(reqs))
			for _, r := range reqs {
				next <- r
			}
			b.ReportAllocs()
			b.SetParallelism((grpcBenchConns + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			cpu := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				// Each goroutine sends its own request, as the proxy's
				// pooled buffers are one per request in flight.
				req := <-next
				defer func() { next <- req }()
				for pb.Next() {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // proxy.DefaultCheckTimeout
					resp, err := client.Check(ctx, req)
					cancel()
					if err != nil || !extauthz.Allowed(resp) {
						b.Error("not allowed", err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// grpcBenchSetup serves a Service with alice signed in on a loopback gRPC
// server and returns a client of it and grpcBenchConns requests like the
// proxy's for the Grafana guide's route, carrying her session handle as
// cred: "cookie" (a browser) or "bearer" (an API client).
func grpcBenchSetup(b *testing.B, cred string) (authv3.AuthorizationClient, []*authv3.CheckRequest) {
	b.Helper()
	s, _ := benchSetup(b)
	st := s.state.Load()
	tok := signIn(b, s, alice, "sess-alice", 2)

	srv := grpcutil.NewServer(grpcutil.ServerOptions{
		SharedKey: st.cfg.SharedKey, Registerer: prometheus.NewRegistry(), Logger: discardLogger(),
	})
	s.Register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()
	b.Cleanup(func() { srv.Stop(); <-served })

	u, err := url.Parse("http://" + lis.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	cc, err := grpcutil.Dial(grpcutil.ClientOptions{
		Targets: []*url.URL{u}, SharedKey: st.cfg.SharedKey, Insecure: true, Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cc.Close() })
	client := authv3.NewAuthorizationClient(cc)

	credential := cookie(tok)
	if cred == "bearer" {
		credential = header("authorization", "Bearer Pomerium-"+tok)
	}
	host := "grafana.localhost.pomerium.io"
	// What proxy.checkBuf.fill sends: the request line, the client
	// address, the headers authorize reads and the matched route's id.
	proto0 := newReq("GET", "https://"+host+"/d/abc?orgId=1", credential,
		header("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
		header("user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
		ctxExt(extauthz.ContextRouteID, st.match(host, "/d/abc").id))
	delete(proto0.Attributes.Request.Http.Headers, ":authority") // the proxy sends Host, not this
	proto0.Attributes.Request.Http.Protocol = "HTTP/1.1"
	reqs := make([]*authv3.CheckRequest, grpcBenchConns)
	for i := range reqs {
		r := proto.Clone(proto0).(*authv3.CheckRequest)
		id := fmt.Sprintf("%032x", i) // as long as requestid.New's
		r.Attributes.Request.Http.Id = id
		r.Attributes.Request.Http.Headers["x-request-id"] = id
		reqs[i] = r
	}
	// The first call waits for the connection; it must succeed.
	resp, err := client.Check(context.Background(), reqs[0], grpc.WaitForReady(true))
	if err != nil || !extauthz.Allowed(resp) {
		b.Fatal("not allowed", err)
	}
	return client, reqs
}

// processCPU is the user plus system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
