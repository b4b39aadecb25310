package authorize

import (
	"context"
	"io"
	"log/slog"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/pkg/extauthz"
	"github.com/gatehouse/gatehouse/pkg/grpcutil"
)

// benchSetup returns a service with alice signed in, and a func that
// checks the request a browser sends to the Grafana guide's route with her
// cookie. The decision log is at debug level, below the logger's: see
// BenchmarkCheckDecisionLog for its cost when it is on.
func benchSetup(b *testing.B) (*Service, func() bool) {
	s := newTestService(b, testConfig(b, testConfigYAML))
	s.logLevel = slog.LevelDebug
	tok := signIn(b, s, alice, "sess-alice", 2)
	req := newReq("GET", "https://grafana.localhost.pomerium.io/d/abc?orgId=1", cookie(tok), fromBrowser(),
		header("user-agent", "Mozilla/5.0"), header("x-forwarded-for", "192.0.2.10"))
	ctx := context.Background()
	check := func() bool {
		resp, err := s.Check(ctx, req)
		return err == nil && extauthz.Allowed(resp)
	}
	if !check() {
		b.Fatal("not allowed")
	}
	return s, check
}

// BenchmarkCheck is a whole Check, in process, with the JWT cache warm:
// the steady state of a signed-in user browsing.
func BenchmarkCheck(b *testing.B) {
	_, check := benchSetup(b)
	b.ReportAllocs()
	for b.Loop() {
		if !check() {
			b.Fatal("not allowed")
		}
	}
}

// BenchmarkCheckDecisionLog is BenchmarkCheck with the decision log on
// (JSON, to io.Discard): the price of one log line per request.
func BenchmarkCheckDecisionLog(b *testing.B) {
	s, check := benchSetup(b)
	s.logLevel = slog.LevelInfo
	s.logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	b.ReportAllocs()
	for b.Loop() {
		if !check() {
			b.Fatal("not allowed")
		}
	}
}

// BenchmarkCheckParallel is BenchmarkCheck from every core at once, to
// show the caches' locks do not serialise Checks.
func BenchmarkCheckParallel(b *testing.B) {
	_, check := benchSetup(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !check() {
				b.Error("not allowed")
				return
			}
		}
	})
}

// BenchmarkCheckColdJWT is a whole Check that signs a new identity JWT
// every time (the first request of a session on a route, or once every
// four minutes after).
func BenchmarkCheckColdJWT(b *testing.B) {
	s, check := benchSetup(b)
	jwts := s.state.Load().jwts
	b.ReportAllocs()
	for b.Loop() {
		jwts.mu.Lock()
		clear(jwts.m)
		jwts.mu.Unlock()
		if !check() {
			b.Fatal("not allowed")
		}
	}
}

// BenchmarkCheckDenied is a Check refused with the 403 JSON answer.
func BenchmarkCheckDenied(b *testing.B) {
	s := newTestService(b, testConfig(b, testConfigYAML))
	tok := signIn(b, s, bob, "sess-bob", 2)
	req := newReq("GET", "https://grafana.localhost.pomerium.io/api", cookie(tok), header("accept", "application/json"))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := s.Check(ctx, req)
		if err != nil || extauthz.DeniedStatus(resp) != 403 {
			b.Fatal("not denied")
		}
	}
}

// BenchmarkCheckInProcess is BenchmarkCheck as all-in-one's proxy calls
// it: through extauthz.LocalClient, directly ("direct") or, as
// cmd/gatehouse wires it, through the gRPC server's in-process
// interceptors, panic recovery and metrics ("interceptors"). The
// interceptors must add no allocation.
func BenchmarkCheckInProcess(b *testing.B) {
	s, _ := benchSetup(b)
	tok := signIn(b, s, alice, "sess-alice", 2)
	req := newReq("GET", "https://grafana.localhost.pomerium.io/d/abc?orgId=1", cookie(tok),
		header("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
		header("user-agent", "Mozilla/5.0"), header("x-forwarded-for", "192.0.2.10"))
	srv := grpcutil.NewServer(grpcutil.ServerOptions{Registerer: prometheus.NewRegistry(), Logger: discardLogger()})
	for _, c := range []struct {
		name   string
		client authv3.AuthorizationClient
	}{
		{"direct", extauthz.LocalClient{Server: s}},
		{"interceptors", extauthz.NewLocalClient(s, srv.LocalInterceptor())},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				resp, err := c.client.Check(ctx, req)
				if err != nil || !extauthz.Allowed(resp) {
					b.Fatal("not allowed", err)
				}
			}
		})
	}
}
