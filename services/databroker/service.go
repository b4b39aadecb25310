// Package databroker is the databroker service: the gRPC server of
// gatehouse.databroker.v1.DataBrokerService over a storage backend: a
// storage.Store (the rules every backend shares) over the driver of a
// registered storage type (memory, Redis, PostgreSQL; see StorageTypes).
//
// Life cycle: New builds the service (no goroutines), Register adds it to
// a gRPC server, Run does the background sweeps until its context ends,
// Close releases the storage.
package databroker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	// The record types gatehouse stores are registered so that Query can
	// index their fields and server reflection (grpcurl) can print them.
	_ "github.com/gatehouse/gatehouse/proto/gatehouse/session/v1"
	_ "github.com/gatehouse/gatehouse/proto/gatehouse/user/v1"
	"github.com/gatehouse/gatehouse/services/databroker/storage"
)

// syncBatch is the number of changes a Sync stream reads per storage call.
const syncBatch = 1000

// Service implements databrokerv1.DataBrokerServiceServer. It is safe for
// concurrent use.
type Service struct {
	databrokerv1.UnimplementedDataBrokerServiceServer

	opts    Options
	log     *slog.Logger
	backend storage.Backend
}

var _ databrokerv1.DataBrokerServiceServer = (*Service)(nil)

// New returns a databroker service on the storage named by opts. It starts
// no goroutines. A Redis that is down is logged (RPCs fail with
// UNAVAILABLE until it is back); PostgreSQL is contacted at once, to
// create or migrate its schema, and a wrong password, a missing database
// or an unreachable server is an error naming the option.
func New(ctx context.Context, opts Options) (*Service, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	typ, _ := StorageTypes.Lookup(opts.StorageType) // Validate checked it
	d, err := typ.Open(ctx, storage.DriverConfig{
		ConnectionString: opts.ConnectionString,
		Namespace:        opts.KeyPrefix,
		Timeout:          opts.Timeout,
		PollInterval:     opts.PollInterval,
		Logger:           opts.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("databroker: %w", err)
	}
	backend := storage.NewStore(d, storage.StoreOptions{Retention: opts.Retention, MaxChanges: opts.MaxChanges, Now: opts.Now})
	s := NewWithBackend(backend, opts)
	if err := backend.Ping(ctx); err != nil {
		s.log.Warn("databroker: storage not reachable yet", "storage", opts.StorageType, "error", err.Error())
	} else if vs, err := backend.Versions(ctx); err == nil {
		s.log.Info("databroker: storage ready", "storage", opts.StorageType, "server_version", vs.Server, "record_version", vs.Latest)
	}
	return s, nil
}

// NewWithBackend returns a service on an existing backend, which Close
// closes.
func NewWithBackend(backend storage.Backend, opts Options) *Service {
	opts.setDefaults()
	if opts.Metrics != nil {
		if opts.Metrics.Register(storageErrors) == nil {
			for _, c := range []codes.Code{codes.Unavailable, codes.Internal, codes.DeadlineExceeded} {
				storageErrors.WithLabelValues(c.String())
			}
		}
		_ = opts.Metrics.Register(collector{backend: backend})
	}
	return &Service{opts: opts, log: opts.Logger, backend: backend}
}

// Register registers the DataBrokerService on r.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	databrokerv1.RegisterDataBrokerServiceServer(r, s)
}

// Run sweeps the storage (TTL expiry, capacity, change log pruning) every
// SweepInterval until ctx ends; it then returns nil.
func (s *Service) Run(ctx context.Context) error {
	s.backend.Changed() // starts following the storage before the first Sync stream
	t := time.NewTicker(s.opts.SweepInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := s.backend.Sweep(ctx); err != nil && ctx.Err() == nil {
			if !failing {
				s.log.Warn("databroker: sweep failed", "error", err.Error())
			}
			failing = true
		} else if failing {
			s.log.Info("databroker: sweep recovered")
			failing = false
		}
	}
}

// ErrStorageUnreachable is the error of StorageHealth while the storage
// does not answer.
var ErrStorageUnreachable = errors.New("databroker: storage unreachable")

// Ready reports nil: the service serves once built, whether its storage
// answers or not (writes then fail with UNAVAILABLE; see StorageHealth).
// Readiness tied to storage would take every replica out of service for a
// storage blip.
func (s *Service) Ready() error { return nil }

// StorageHealth reports nil when the storage answers (within a second),
// else an error wrapping ErrStorageUnreachable: for health detail, metrics
// and logs, not for readiness.
func (s *Service) StorageHealth() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.backend.Ping(ctx); err != nil {
		return fmt.Errorf("%w: %v", ErrStorageUnreachable, err)
	}
	return nil
}

// Close releases the storage.
func (s *Service) Close() error { return s.backend.Close() }

// toStatus maps storage errors to gRPC status errors.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrLeaseNotHeld):
		code = codes.NotFound
	case errors.Is(err, storage.ErrServerVersionMismatch), errors.Is(err, storage.ErrVersionTooOld), errors.Is(err, storage.ErrConflict):
		code = codes.Aborted
	case errors.Is(err, storage.ErrLeaseHeld):
		code = codes.AlreadyExists
	case errors.Is(err, storage.ErrInvalid):
		code = codes.InvalidArgument
	case errors.Is(err, storage.ErrUnavailable):
		code = codes.Unavailable
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	}
	countStorageError(code)
	return status.Error(code, err.Error())
}

func newLeaseID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
