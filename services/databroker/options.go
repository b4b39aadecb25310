package databroker

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Storage types accepted in Options.StorageType (see StorageTypes for the
// registry they come from).
const (
	StorageTypeMemory   = "memory"
	StorageTypeRedis    = "redis"
	StorageTypePostgres = "postgres"
)

// Options configure the databroker service. The zero value is a memory
// store with the defaults.
type Options struct {
	// StorageType is a registered storage type (databroker_storage_type):
	// "memory" (default), "redis" or "postgres".
	StorageType string
	// ConnectionString is the storage's connection string
	// (databroker_storage_connection_string), in the forms the storage
	// type lists.
	ConnectionString string
	// Logger receives the service's logs (default slog.Default()).
	Logger *slog.Logger
	// Metrics receives the service's metrics (storage errors, record
	// counts by type, the latest record version); nil registers none.
	Metrics prometheus.Registerer
	// Timeout bounds each storage operation (default 5s); past it the
	// RPC fails with UNAVAILABLE.
	Timeout time.Duration
	// Retention is how long the change log keeps changes (default 1h).
	Retention time.Duration
	// MaxChanges caps the change log length (default 1,000,000).
	MaxChanges int
	// SweepInterval is how often Run expires records past their TTL,
	// applies capacities and prunes the change log (default 1s).
	SweepInterval time.Duration
	// PollInterval is the safety poll of Sync streams, for notifications
	// lost across a reconnect (default 2s).
	PollInterval time.Duration
	// KeyPrefix separates independent stores on one server: the Redis key
	// hash tag name (default "gatehouse"), the PostgreSQL schema (default
	// "gatehouse").
	KeyPrefix string
	// Now is the storage's clock (default time.Now); tests pass a fake one.
	Now func() time.Time
}

// Validate checks the options against the storage registry and fills in
// defaults.
func (o *Options) Validate() error {
	if o.StorageType == "" {
		o.StorageType = StorageTypeMemory
	}
	if err := StorageTypes.Validate(o.StorageType, o.ConnectionString); err != nil {
		return fmt.Errorf("databroker: %w", err)
	}
	o.setDefaults()
	return nil
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = time.Second
	}
}
