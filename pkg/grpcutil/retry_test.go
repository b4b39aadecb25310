package grpcutil

import (
	"context"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/gatehouse/gatehouse/pkg/testutil"
)

// checkServer answers every Check with code, counting them.
type checkServer struct {
	authv3.UnimplementedAuthorizationServer
	code  codes.Code
	calls atomic.Int64
}

func (s *checkServer) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	s.calls.Add(1)
	if s.code != codes.OK {
		return nil, status.Error(s.code, "replica going away")
	}
	return &authv3.CheckResponse{}, nil
}

func startCheckServer(t *testing.T, srv *checkServer) string {
	t.Helper()
	s := NewServer(ServerOptions{SharedKey: testKey})
	authv3.RegisterAuthorizationServer(s, srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

// A Check that fails UNAVAILABLE on one replica (as one in flight on a
// replica that dies does) is tried again on another, so the caller sees
// no error; a Check refused for another reason is not tried again.
func TestCheckRetriedOnAnotherReplica(t *testing.T) {
	dying := &checkServer{code: codes.Unavailable}
	healthy := &checkServer{}
	cc, err := Dial(ClientOptions{
		Targets:   []*url.URL{{Scheme: "http", Host: startCheckServer(t, dying)}, {Scheme: "http", Host: startCheckServer(t, healthy)}},
		SharedKey: testKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := authv3.NewAuthorizationClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Both replicas connected, so round-robin alternates between them.
	for dying.calls.Load() == 0 || healthy.calls.Load() == 0 {
		if _, err := client.Check(ctx, &authv3.CheckRequest{}, grpc.WaitForReady(true)); err != nil && status.Code(err) != codes.Unavailable {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatal("round-robin never reached both replicas")
		}
	}
	for i := range 20 {
		if _, err := client.Check(ctx, &authv3.CheckRequest{}); err != nil {
			t.Fatalf("Check %d: %v (not retried on the healthy replica)", i, err)
		}
	}
	if dying.calls.Load() < 5 {
		t.Errorf("the dying replica got %d Checks; round-robin should have sent it about half", dying.calls.Load())
	}

	// A refusal that is not UNAVAILABLE is an answer, not a lost replica.
	refusing := &checkServer{code: codes.PermissionDenied}
	cc2, err := Dial(ClientOptions{Targets: []*url.URL{{Scheme: "http", Host: startCheckServer(t, refusing)}}, SharedKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer cc2.Close()
	if _, err := authv3.NewAuthorizationClient(cc2).Check(ctx, &authv3.CheckRequest{}, grpc.WaitForReady(true)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("Check = %v, want PermissionDenied", err)
	}
	if n := refusing.calls.Load(); n != 1 {
		t.Fatalf("a PermissionDenied Check was sent %d times, want once", n)
	}
}

// A replica that came back while the client sits in reconnect backoff is
// used at once, instead of the call failing until the backoff ends (the
// moment of a rolling restart when the other replica is leaving); with no
// replica up the call still fails at once.
func TestCallReconnectsWhenNoReplicaIsReady(t *testing.T) {
	saved := ReconnectBackoff
	ReconnectBackoff.BaseDelay, ReconnectBackoff.MaxDelay = time.Hour, time.Hour // never by itself
	t.Cleanup(func() { ReconnectBackoff = saved })

	addr := testutil.FreeAddr(t)
	cc, err := Dial(ClientOptions{Targets: []*url.URL{{Scheme: "http", Host: addr}}, SharedKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := authv3.NewAuthorizationClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Nothing listens: the call fails closed, promptly.
	start := time.Now()
	if _, err := client.Check(ctx, &authv3.CheckRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("Check with no replica = %v, want Unavailable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Check with no replica took %v", d)
	}
	testutil.WaitFor(t, 5*time.Second, "the connection to fail", func() bool {
		return cc.GetState() == connectivity.TransientFailure
	})

	// The replica starts while the client waits out its (hour-long) backoff.
	srv := &checkServer{}
	startCheckServerAt(t, addr, srv)
	if _, err := client.Check(ctx, &authv3.CheckRequest{}); err != nil {
		t.Fatalf("Check once the replica is back: %v", err)
	}
}
