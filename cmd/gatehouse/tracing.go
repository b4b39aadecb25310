package main

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/tracing"
)

// tracingFlushTimeout bounds how long a stopping process waits to export
// the spans still queued.
const tracingFlushTimeout = 5 * time.Second

// startTracing sets up OpenTelemetry tracing from the otel_* options, when
// otel_traces_exporter is otlp. The options are read at start-up: a
// change takes a restart.
func (p *process) startTracing(ctx context.Context) error {
	var services []string
	for _, s := range config.AllServices {
		if p.cfg.Runs(s) {
			services = append(services, s)
		}
	}
	tp, err := tracing.New(ctx, p.cfg.Tracing, tracing.Options{Services: services, Logger: p.logger})
	if err != nil {
		return err
	}
	if tp == nil {
		return nil
	}
	p.tracing = tp
	p.logger.Info("tracing on", "protocol", p.cfg.Tracing.Protocol, "endpoint", p.cfg.Tracing.Endpoint.Redacted(),
		"sample_ratio", p.cfg.Tracing.SampleRatio)
	p.closers = append(p.closers, func() {
		sctx, cancel := context.WithTimeout(context.Background(), tracingFlushTimeout)
		defer cancel()
		_ = tp.Shutdown(sctx)
	})
	return nil
}
