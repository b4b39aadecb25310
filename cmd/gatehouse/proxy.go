package main

import (
	"context"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/services/proxy"
)

func init() { serviceBuilders[config.ServiceProxy] = buildProxy }

// buildProxy adds the proxy service: its HTTP handler (every host but
// authenticate's), its runner and readiness check. Every request's Check
// goes over gRPC to the authorize replicas of authorize_service_url(s), or
// in-process to the authorize service when this process runs it too.
func buildProxy(ctx context.Context, p *process) error {
	authz := p.localAuthorizer
	// In process, authorize bounds its own work (a fresh session is
	// waited for at most authorize.SessionWait), so no deadline is added.
	checkTimeout := time.Duration(-1)
	if authz == nil {
		checkTimeout = 0 // proxy.DefaultCheckTimeout over the network
		cc, err := p.conn(config.ServiceAuthorize)
		if err != nil {
			return err
		}
		authz = authv3.NewAuthorizationClient(cc)
	}
	svc, err := proxy.New(ctx, proxy.Options{
		Source:       p.src,
		Logger:       p.logger.With("service", config.ServiceProxy),
		Authorizer:   authz,
		CheckTimeout: checkTimeout,
	})
	if err != nil {
		return err
	}
	p.proxyHTTP = svc.Handler()
	p.runners = append(p.runners, svc.Run)
	p.health.Add(config.ServiceProxy, svc.Ready)
	return nil
}
