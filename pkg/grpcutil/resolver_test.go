package grpcutil

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"

	"github.com/gatehouse/gatehouse/pkg/testutil"
)

// fakeDNS answers host lookups with addresses a test changes.
type fakeDNS struct {
	mu    sync.Mutex
	addrs []string
}

func (f *fakeDNS) set(addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addrs = addrs
}

func (f *fakeDNS) lookup(context.Context, string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.addrs...), nil
}

func startCheckServerAt(t *testing.T, addr string, srv *checkServer) {
	t.Helper()
	s := NewServer(ServerOptions{SharedKey: testKey})
	authv3.RegisterAuthorizationServer(s, srv)
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(lis)
	t.Cleanup(s.Stop)
}

// A replica added behind a service name (docker compose --scale, a
// Deployment scaled up) gets calls without the client restarting; one
// removed from the name stops getting them (issue 19: new authorize
// replicas got 0 of 60 Checks until the proxy restarted).
func TestDialFollowsReplicasAddedToTheName(t *testing.T) {
	saved := ResolveInterval
	ResolveInterval = 20 * time.Millisecond
	t.Cleanup(func() { ResolveInterval = saved })

	_, port, _ := net.SplitHostPort(testutil.FreeAddr(t))
	first, second := &checkServer{}, &checkServer{}
	startCheckServerAt(t, net.JoinHostPort("127.0.0.1", port), first)
	startCheckServerAt(t, net.JoinHostPort("127.0.0.2", port), second)
	dns := &fakeDNS{}
	dns.set("127.0.0.1")
	p, _ := strconv.Atoi(port)
	cc, err := Dial(ClientOptions{
		Targets:   []*url.URL{{Scheme: "http", Host: net.JoinHostPort("authorize", strconv.Itoa(p))}},
		SharedKey: testKey,
		lookup:    dns.lookup,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := authv3.NewAuthorizationClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call := func() {
		if _, err := client.Check(ctx, &authv3.CheckRequest{}, grpc.WaitForReady(true)); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		call()
	}
	if second.calls.Load() != 0 {
		t.Fatal("a replica not in DNS got calls")
	}

	dns.set("127.0.0.1", "127.0.0.2")
	testutil.WaitFor(t, 10*time.Second, "the added replica to get calls", func() bool {
		call()
		return second.calls.Load() > 0
	})

	dns.set("127.0.0.2")
	testutil.WaitFor(t, 10*time.Second, "the removed replica to stop getting calls", func() bool {
		before := first.calls.Load()
		for range 10 {
			call()
		}
		return first.calls.Load() == before
	})
}
