package storage

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/protobuf/types/known/anypb"

	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
)

// Driver is the thin part of a storage backend: what only the backend can
// do. Everything every backend must do the same way (validation, Patch,
// Query, TTL, capacity, lease rules, change-log retention, the replica's
// tail of recent changes) lives once in Store, above the drivers.
//
// Implementations are safe for concurrent use and may be shared by several
// databroker replicas (each with its own Driver on one database): every
// method must then be correct across replicas.
type Driver interface {
	// Versions returns the server version (created on first use and kept
	// by the storage), the earliest version Changes can start after and
	// the latest version a reader may pass: every write up to it is
	// committed or abandoned, none is still in flight.
	Versions(ctx context.Context) (Versions, error)

	// Append applies writes atomically: each gets the next version of the
	// store (strictly increasing, gaps allowed), is stored with modified
	// time now (and as a delete when Delete is set) and is appended to the
	// change log; followers are woken. When a Write has Conditional set and
	// the record's current version is not Version (0: absent), nothing is
	// written and Append fails with ErrConflict. It returns the server
	// version and each write's version.
	Append(ctx context.Context, writes []Write, now time.Time) (uint64, []uint64, error)

	// Get returns the live record of typ and id, or ErrNotFound.
	Get(ctx context.Context, typ, id string) (*databrokerv1.Record, error)
	// Records returns every live record of typ ("" for every type), in
	// any order.
	Records(ctx context.Context, typ string) ([]*databrokerv1.Record, error)
	// Oldest returns up to limit live records of typ, lowest version first.
	Oldest(ctx context.Context, typ string, limit int) ([]*databrokerv1.Record, error)
	// Count returns the number of live records of typ.
	Count(ctx context.Context, typ string) (int, error)
	// Types returns every type written or given options, in any order.
	Types(ctx context.Context) ([]string, error)

	// Changes returns up to limit changes of every type with a version
	// above after, in version order, never passing the latest version of
	// Versions. It fails with ErrServerVersionMismatch and ErrVersionTooOld
	// as Backend.Changes does.
	Changes(ctx context.Context, serverVersion, after uint64, limit int) (*ChangeBatch, error)
	// Changed returns a channel closed on the next write by any replica (or
	// by a safety poll). Callers take it before calling Changes.
	Changed() <-chan struct{}
	// Prune drops the changes older than before and all but the newest keep
	// changes, raising the earliest version.
	Prune(ctx context.Context, before time.Time, keep int) error

	// Lease returns lease name's current value (the zero Lease when none).
	Lease(ctx context.Context, name string) (Lease, error)
	// SwapLease replaces lease name's value with next when it is old
	// (compare-and-set; the zero Lease means none) and reports whether it
	// did.
	SwapLease(ctx context.Context, name string, old, next Lease) (bool, error)

	// TypeOptions returns the options of every type that has some.
	TypeOptions(ctx context.Context) (map[string]*databrokerv1.Options, error)
	// SetTypeOptions stores the options of typ.
	SetTypeOptions(ctx context.Context, typ string, opts *databrokerv1.Options) error

	// Ping reports whether the storage is reachable.
	Ping(ctx context.Context) error
	// Close releases the driver's resources.
	Close() error
}

// Write is one record write handed to Driver.Append.
type Write struct {
	// Type and ID name the record.
	Type, ID string
	// Data is the record's data (kept in the change log of a delete too).
	Data *anypb.Any
	// Delete makes the write a delete.
	Delete bool
	// Conditional makes the write apply only when the record's current
	// version is Version (0: the record is absent).
	Conditional bool
	Version     uint64
}

// Lease is the value of a lease: its holder and when it expires. Expires
// has microsecond precision, so that drivers store it exactly.
type Lease struct {
	Holder  string
	Expires time.Time
}

// IsZero reports whether l is the zero Lease (no lease).
func (l Lease) IsZero() bool { return l.Holder == "" }

// Equal reports whether l and o are the same lease value.
func (l Lease) Equal(o Lease) bool { return l.Holder == o.Holder && l.Expires.Equal(o.Expires) }

// Tuning is what every network driver's options share: how long an
// operation may take and how often Sync streams wake without a
// notification.
type Tuning struct {
	// Timeout bounds every operation (default 5s); past it the call fails
	// with ErrUnavailable.
	Timeout time.Duration
	// PollInterval is the safety poll that wakes Sync streams even when a
	// notification was lost, e.g. across a reconnect (default 2s).
	PollInterval time.Duration
	// Logger receives connection problems (default slog.Default()).
	Logger *slog.Logger
}

// SetDefaults fills what is unset.
func (t *Tuning) SetDefaults() {
	if t.Timeout <= 0 {
		t.Timeout = 5 * time.Second
	}
	if t.PollInterval <= 0 {
		t.PollInterval = 2 * time.Second
	}
	if t.Logger == nil {
		t.Logger = slog.Default()
	}
}
