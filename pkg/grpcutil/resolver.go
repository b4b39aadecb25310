package grpcutil

import (
	"context"
	"net"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/resolver"
)

// dnsScheme names gatehouse's DNS resolver: it resolves a service name
// again every ResolveInterval, so replicas added by scaling (docker compose
// --scale, a Deployment's new pods behind a headless Service) get traffic
// without anything restarting. gRPC's own dns resolver re-resolves only
// when a connection fails, so a new replica of a healthy service would
// never be used.
const dnsScheme = "gatehouse-dns"

// ResolveInterval is how often a service name is resolved again; it bounds
// how long a new replica waits for its first request.
var ResolveInterval = 10 * time.Second

// lookupHost resolves a host name to addresses; tests replace it.
type lookupHost func(ctx context.Context, host string) ([]string, error)

type dnsBuilder struct {
	lookup   lookupHost
	interval time.Duration
}

func (b *dnsBuilder) Scheme() string { return dnsScheme }

func (b *dnsBuilder) Build(t resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	host, port, err := net.SplitHostPort(t.Endpoint())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &dnsResolver{host: host, port: port, cc: cc, lookup: b.lookup, interval: b.interval,
		now: make(chan struct{}, 1), cancel: cancel}
	r.wg.Add(1)
	go r.run(ctx)
	return r, nil
}

type dnsResolver struct {
	host, port string
	cc         resolver.ClientConn
	lookup     lookupHost
	interval   time.Duration
	now        chan struct{} // ResolveNow requests
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

func (r *dnsResolver) run(ctx context.Context) {
	defer r.wg.Done()
	var last []string
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-r.now:
		}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		addrs, err := r.lookup(lctx, r.host)
		cancel()
		switch {
		case err != nil && last == nil:
			// Never resolved: gRPC fails the calls with this error until
			// the name resolves.
			r.cc.ReportError(err)
		case err == nil && len(addrs) > 0:
			slices.Sort(addrs)
			if !slices.Equal(addrs, last) {
				last = addrs
				state := resolver.State{Addresses: make([]resolver.Address, len(addrs))}
				for i, a := range addrs {
					state.Addresses[i] = resolver.Address{Addr: net.JoinHostPort(a, r.port)}
				}
				_ = r.cc.UpdateState(state)
			}
		}
		// A failed lookup after a good one keeps the last addresses: a
		// DNS blip must not take every replica away.
		timer.Reset(r.interval)
	}
}

// ResolveNow asks for a resolution at once (gRPC calls it when a
// connection fails).
func (r *dnsResolver) ResolveNow(resolver.ResolveNowOptions) {
	select {
	case r.now <- struct{}{}:
	default:
	}
}

func (r *dnsResolver) Close() {
	r.cancel()
	r.wg.Wait()
}
