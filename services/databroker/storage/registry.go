package storage

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Type is one storage type of the databroker (databroker_storage_type):
// its name, what the docs say of it, how its connection string is checked
// and how a driver is opened. Each backend package exports its Type; the
// databroker builds the one Registry of them, which configuration
// validation, the service and the docs read.
type Type struct {
	// Name is the databroker_storage_type value.
	Name string
	// Use says when to choose this type (one sentence, for the docs).
	Use string
	// ConnectionForms lists the connection string forms, for messages and
	// docs; empty when the type takes no connection string.
	ConnectionForms string
	// ValidateConnectionString checks a connection string without
	// contacting the storage; nil when the type takes none.
	ValidateConnectionString func(connectionString string) error
	// Open returns a driver for cfg. It may contact the storage (and fail
	// with a clear error naming what is wrong).
	Open func(ctx context.Context, cfg DriverConfig) (Driver, error)
}

// DriverConfig is what Type.Open gets.
type DriverConfig struct {
	// ConnectionString is databroker_storage_connection_string.
	ConnectionString string
	// Namespace separates independent stores on one server (a Redis key
	// prefix, a PostgreSQL schema); empty for the driver's default.
	Namespace string
	// Timeout bounds each storage operation; past it the operation fails
	// with ErrUnavailable.
	Timeout time.Duration
	// PollInterval is the safety poll that wakes followers when a
	// notification was lost (zero: the driver's default).
	PollInterval time.Duration
	// Logger receives connection problems.
	Logger *slog.Logger
}

// Registry is a fixed set of storage types. It is safe for concurrent use.
type Registry struct {
	types map[string]Type
	names []string
}

// NewRegistry returns a registry of types, in the given order.
func NewRegistry(types ...Type) *Registry {
	r := &Registry{types: map[string]Type{}}
	for _, t := range types {
		if _, dup := r.types[t.Name]; dup {
			panic("storage: type " + t.Name + " registered twice")
		}
		r.types[t.Name] = t
		r.names = append(r.names, t.Name)
	}
	return r
}

// Lookup returns the type called name.
func (r *Registry) Lookup(name string) (Type, bool) {
	t, ok := r.types[name]
	return t, ok
}

// Types returns the types in registration order.
func (r *Registry) Types() []Type {
	out := make([]Type, len(r.names))
	for i, n := range r.names {
		out[i] = r.types[n]
	}
	return out
}

// Names returns "memory, redis or postgres"-style text of the names.
func (r *Registry) Names() string {
	n := r.names
	switch len(n) {
	case 0:
		return ""
	case 1:
		return n[0]
	}
	return strings.Join(n[:len(n)-1], ", ") + " or " + n[len(n)-1]
}

// Validate checks a storage type and its connection string.
func (r *Registry) Validate(name, connectionString string) error {
	t, ok := r.types[name]
	if !ok {
		return fmt.Errorf("unknown storage type %q (want %s)", name, r.Names())
	}
	if t.ValidateConnectionString == nil {
		return nil
	}
	if connectionString == "" {
		return fmt.Errorf("storage type %s needs a connection string (databroker_storage_connection_string: %s)", name, t.ConnectionForms)
	}
	return t.ValidateConnectionString(connectionString)
}
