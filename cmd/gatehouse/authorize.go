package main

import (
	"context"
	"log/slog"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/extauthz"
	"github.com/gatehouse/gatehouse/services/authorize"
)

func init() { serviceBuilders[config.ServiceAuthorize] = buildAuthorize }

// buildAuthorize adds the authorize service to the gRPC server and, for a
// proxy in the same process, an in-process client: the same Check, without
// the network hop.
func buildAuthorize(ctx context.Context, p *process) error {
	cc, err := p.conn(config.ServiceDataBroker)
	if err != nil {
		return err
	}
	svc, err := authorize.New(ctx, authorize.Options{
		Source:     p.src,
		Logger:     p.logger, // the service adds service=authorize
		DataBroker: cc,
		// Allowed requests are logged at debug: a log line per request
		// would cost more than the Check itself. Denials stay at info.
		DecisionLogLevel: slog.LevelDebug,
	})
	if err != nil {
		return err
	}
	svc.Register(p.grpc)
	p.runners = append(p.runners, svc.Run)
	p.health.Add(config.ServiceAuthorize, svc.Ready)
	p.localAuthorizer = extauthz.LocalClient{Server: svc}
	return nil
}
