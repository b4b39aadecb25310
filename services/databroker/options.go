package databroker

import (
	"fmt"
	"log/slog"
	"time"
)

// Storage types accepted in Options.StorageType.
const (
	StorageTypeMemory = "memory"
	StorageTypeRedis  = "redis"
)

// Options configure the databroker service. The zero value is a memory
// store with the defaults.
type Options struct {
	// StorageType is "memory" (default) or "redis"
	// (databroker_storage_type).
	StorageType string
	// ConnectionString is the Redis URL for the redis storage
	// (databroker_storage_connection_string): redis://, rediss://,
	// redis+sentinel://, redis+cluster://.
	ConnectionString string
	// Logger receives the service's logs (default slog.Default()).
	Logger *slog.Logger
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
	// PollInterval is the Redis safety poll of Sync streams, for pub/sub
	// messages lost across a reconnect (default 2s).
	PollInterval time.Duration
	// KeyPrefix is the Redis key hash tag name (default "gatehouse").
	KeyPrefix string
}

// Validate checks the options and fills in defaults.
func (o *Options) Validate() error {
	switch o.StorageType {
	case "":
		o.StorageType = StorageTypeMemory
	case StorageTypeMemory:
	case StorageTypeRedis:
		if o.ConnectionString == "" {
			return fmt.Errorf("databroker: storage type redis needs a connection string (databroker_storage_connection_string)")
		}
	default:
		return fmt.Errorf("databroker: unknown storage type %q (want memory or redis)", o.StorageType)
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
