package main

import (
	"context"
	"net/http"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/services/authenticate"
)

// addAuthenticate adds the authenticate service, writing sessions to the
// databroker of this process or of databroker_service_url(s), and returns
// its HTTP handler (the authenticate_service_url host). Its Run is the
// session refresher.
func (p *process) addAuthenticate(ctx context.Context) (http.Handler, error) {
	cc, err := p.conn(config.ServiceDataBroker)
	if err != nil {
		return nil, err
	}
	svc, err := authenticate.New(ctx, authenticate.Options{
		Source: p.src, Logger: p.logger, DataBroker: cc, TracerProvider: p.tracing.TracerProvider(), Metrics: p.metrics,
	})
	if err != nil {
		return nil, err
	}
	p.add(config.ServiceAuthenticate, svc)
	// Sign-outs not written yet: reported (readyz detail, metric, logs),
	// never unready.
	p.health.AddDependency("authenticate sign-outs written", svc.PendingSignOuts)
	return svc.Handler(), nil
}
