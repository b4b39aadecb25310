package main

import (
	"context"

	"github.com/gatehouse/gatehouse/pkg/config"
	// The record types, so that reflection (grpcurl) can print their Any data.
	_ "github.com/gatehouse/gatehouse/proto/gatehouse/session/v1"
	_ "github.com/gatehouse/gatehouse/proto/gatehouse/user/v1"
	"github.com/gatehouse/gatehouse/services/databroker"
)

// addDataBroker serves the databroker service on the process's gRPC
// server, with the storage of databroker_storage_type. A change of storage
// in the config file takes a restart.
func (p *process) addDataBroker(ctx context.Context) error {
	svc, err := databroker.New(ctx, databroker.Options{
		StorageType:      p.cfg.DataBrokerStorageType,
		ConnectionString: p.cfg.DataBrokerStorageConnectionString,
		Logger:           p.logger.With("service", config.ServiceDataBroker),
		Metrics:          p.metrics,
	})
	if err != nil {
		return err
	}
	svc.Register(p.grpc)
	p.closers = append(p.closers, func() { _ = svc.Close() })
	p.add(config.ServiceDataBroker, svc)
	// Ready means serving; whether the storage answers is reported apart
	// (a Redis outage fails writes, not the service: Sync streams and the
	// caches built from them go on).
	p.health.AddDependency(config.ServiceDataBroker+" storage", svc.StorageHealth)
	return nil
}
