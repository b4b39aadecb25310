package main

import (
	"context"
	"net/http"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/connectivity"

	"github.com/gatehouse/gatehouse/pkg/config"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	"github.com/gatehouse/gatehouse/services/proxy"
)

// addProxy adds the proxy service and returns its HTTP handler (every host
// but authenticate's). Every request's Check goes to local, the authorize
// service of this process, when it runs here (nil when not), else over
// gRPC to the replicas of authorize_service_url(s).
func (p *process) addProxy(ctx context.Context, local authv3.AuthorizationClient) (http.Handler, error) {
	opts := proxy.Options{
		Source: p.src,
		Logger: p.logger.With("service", config.ServiceProxy),
		// In process, authorize bounds its own work (a fresh session is
		// waited for at most authorize.SessionWait): no deadline is added.
		Authorizer:          local,
		InProcessAuthorizer: local != nil,
		TracerProvider:      p.tracing.TracerProvider(),
		Metrics:             p.metrics,
	}
	if local == nil {
		cc, err := p.conn(config.ServiceAuthorize)
		if err != nil {
			return nil, err
		}
		opts.Authorizer = authv3.NewAuthorizationClient(cc) // proxy.DefaultCheckTimeout
		if len(p.cfg.DataBrokerTargets) > 0 || p.cfg.Runs(config.ServiceDataBroker) {
			// The proxy can follow the session and user changes itself,
			// and so reuse authorize's allowed answers until one changes.
			db, err := p.conn(config.ServiceDataBroker)
			if err != nil {
				return nil, err
			}
			opts.DataBroker = databrokerv1.NewDataBrokerServiceClient(db)
			opts.AuthorizerReady = func() bool { return cc.GetState() == connectivity.Ready }
		}
	}
	svc, err := proxy.New(ctx, opts)
	if err != nil {
		return nil, err
	}
	p.add(config.ServiceProxy, svc)
	return svc.Handler(), nil
}
