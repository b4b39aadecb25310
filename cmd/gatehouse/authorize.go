package main

import (
	"context"
	"log/slog"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/services/authorize"
)

// addAuthorize serves the authorize service on the process's gRPC server,
// its caches synced from the databroker of this process or of
// databroker_service_url(s). It returns the service, for a proxy in the
// same process to call without the network.
func (p *process) addAuthorize(ctx context.Context) (*authorize.Service, error) {
	cc, err := p.conn(config.ServiceDataBroker)
	if err != nil {
		return nil, err
	}
	svc, err := authorize.New(ctx, authorize.Options{
		Source:     p.src,
		Logger:     p.logger, // the service adds service=authorize
		DataBroker: cc,
		// Allowed requests are logged at debug: a log line per request
		// would cost more than the Check itself. Denials stay at info.
		DecisionLogLevel: slog.LevelDebug,
		TracerProvider:   p.tracing.TracerProvider(),
		Metrics:          p.metrics,
	})
	if err != nil {
		return nil, err
	}
	svc.Register(p.grpc)
	p.add(config.ServiceAuthorize, svc)
	return svc, nil
}
