// Package storage defines the databroker's storage interface, the errors
// its backends return and the helpers they share. The backends live in
// the memory and redis subpackages; storagetest holds the conformance suite
// every backend must pass.
package storage

import (
	"context"
	"errors"
	"time"

	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
)

// Errors returned by backends. The databroker service maps them to gRPC
// status codes; backends wrap them with context (errors.Is still matches).
var (
	// ErrNotFound: the record does not exist or is deleted. (NOT_FOUND)
	ErrNotFound = errors.New("storage: not found")
	// ErrServerVersionMismatch: the caller's server version is not the
	// store's, so the store was wiped or replaced. (ABORTED)
	ErrServerVersionMismatch = errors.New("storage: server version mismatch")
	// ErrVersionTooOld: the change log no longer holds the changes after
	// the requested version. (ABORTED)
	ErrVersionTooOld = errors.New("storage: record version no longer in the change log")
	// ErrLeaseHeld: another holder has the lease. (ALREADY_EXISTS)
	ErrLeaseHeld = errors.New("storage: lease held by another holder")
	// ErrLeaseNotHeld: nobody holds the lease. (NOT_FOUND)
	ErrLeaseNotHeld = errors.New("storage: lease not held")
	// ErrInvalid: the request is malformed. (INVALID_ARGUMENT)
	ErrInvalid = errors.New("storage: invalid argument")
	// ErrUnavailable: the storage cannot be reached. (UNAVAILABLE)
	ErrUnavailable = errors.New("storage: unavailable")
	// ErrConflict: a conditional write lost a race; the caller retries.
	ErrConflict = errors.New("storage: conflicting write")
)

// Backend is a versioned record store with a change log. Implementations
// are safe for concurrent use. Records passed in are not retained (the
// backend copies what it keeps); records returned must not be modified.
type Backend interface {
	// ServerVersion returns the store's server version.
	ServerVersion(ctx context.Context) (uint64, error)
	// Versions returns the server version, the earliest version Sync can
	// start after, and the latest record version.
	Versions(ctx context.Context) (Versions, error)

	// Get returns the live record of typ and id, or ErrNotFound.
	Get(ctx context.Context, typ, id string) (*databrokerv1.Record, error)
	// Put writes records in order, each getting the next version; a record
	// with DeletedAt set is a delete. It returns the stored records. The
	// batch is applied atomically.
	Put(ctx context.Context, records []*databrokerv1.Record) (uint64, []*databrokerv1.Record, error)
	// Patch copies the fields named by paths from each record's data into
	// the stored record's data and writes the result. Records that do not
	// exist are skipped.
	Patch(ctx context.Context, records []*databrokerv1.Record, paths []string) (uint64, []*databrokerv1.Record, error)
	// Query lists the live records of a type matching q.
	Query(ctx context.Context, q Query) (*QueryResult, error)
	// ListTypes returns every type the store has seen, sorted.
	ListTypes(ctx context.Context) ([]string, error)

	// Changes returns up to limit changes with a version above after, of
	// type typ ("" for all), in version order. It fails with
	// ErrServerVersionMismatch when serverVersion is not the store's and
	// ErrVersionTooOld when changes after after were pruned.
	Changes(ctx context.Context, serverVersion uint64, typ string, after uint64, limit int) (*ChangeBatch, error)
	// Changed returns a channel closed on the next write (or, for backends
	// that cannot observe every write, on a safety poll). Callers take the
	// channel before calling Changes, so no write is missed.
	Changed() <-chan struct{}
	// Latest returns every live record of type typ ("" for all) and the
	// versions to Sync from afterwards. Records may be newer than the
	// returned latest version; replaying the changes after it is safe.
	Latest(ctx context.Context, typ string) ([]*databrokerv1.Record, Versions, error)

	// AcquireLease takes lease name for id for ttl; it renews it when id
	// already holds it and fails with ErrLeaseHeld when another id does.
	AcquireLease(ctx context.Context, name, id string, ttl time.Duration) error
	// RenewLease extends a lease id holds; ErrLeaseHeld or ErrLeaseNotHeld.
	RenewLease(ctx context.Context, name, id string, ttl time.Duration) error
	// ReleaseLease releases a lease id holds; otherwise it does nothing.
	ReleaseLease(ctx context.Context, name, id string) error

	// SetOptions sets the options of a type and applies its capacity.
	SetOptions(ctx context.Context, typ string, opts *databrokerv1.Options) error
	// GetOptions returns the options of a type (empty when unset).
	GetOptions(ctx context.Context, typ string) (*databrokerv1.Options, error)

	// Sweep deletes records past their type's TTL or beyond its capacity
	// (as writes, so Sync streams see them) and prunes the change log.
	// Running it concurrently from several replicas is safe.
	Sweep(ctx context.Context) error
	// Ping reports whether the storage is reachable.
	Ping(ctx context.Context) error
	// Close releases the backend's resources.
	Close() error
}

// Versions describes the state of a store's change log.
type Versions struct {
	// Server is the store's server version.
	Server uint64
	// Earliest is the earliest version Sync can start after: every change
	// above it is retained.
	Earliest uint64
	// Latest is the version of the latest write.
	Latest uint64
}

// ChangeBatch is one page of the change log.
type ChangeBatch struct {
	// Records are the changes, in version order.
	Records []*databrokerv1.Record
	// Through is the version the scan covered; the next call passes it as
	// after (it may be above the last record's version when typ filtered
	// changes out).
	Through uint64
	// More is true when the page was full and more changes may follow.
	More bool
}

// Query selects live records of one type.
type Query struct {
	// Type is the record type URL (required).
	Type string
	// Text, when set, keeps records whose id or indexed field values
	// contain it, ignoring case.
	Text string
	// Filter keeps records whose indexed fields equal one of the values.
	Filter map[string][]string
	// Offset skips that many matching records.
	Offset int
	// Limit caps the number of records returned; 0 means all.
	Limit int
}

// QueryResult is the answer to a Query.
type QueryResult struct {
	// Records are the matching records, ordered by id.
	Records []*databrokerv1.Record
	// TotalCount is the number of matches before Offset and Limit.
	TotalCount int
	// ServerVersion is the store's server version.
	ServerVersion uint64
	// RecordVersion is the latest record version at query time.
	RecordVersion uint64
}
