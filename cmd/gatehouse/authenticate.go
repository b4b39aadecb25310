package main

import (
	"context"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/services/authenticate"
)

func init() { serviceBuilders[config.ServiceAuthenticate] = buildAuthenticate }

// buildAuthenticate adds the authenticate service: its HTTP handler (the
// authenticate_service_url host), the refresher as a runner and its
// readiness check. It talks to the databroker of this process or of
// databroker_service_url(s).
func buildAuthenticate(ctx context.Context, p *process) error {
	cc, err := p.conn(config.ServiceDataBroker)
	if err != nil {
		return err
	}
	svc, err := authenticate.New(ctx, authenticate.Options{Source: p.src, Logger: p.logger, DataBroker: cc})
	if err != nil {
		return err
	}
	p.authenticateHTTP = svc.Handler()
	p.runners = append(p.runners, svc.Run)
	p.health.Add(config.ServiceAuthenticate, svc.Ready)
	return nil
}
