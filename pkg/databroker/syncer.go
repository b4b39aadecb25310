package databroker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
)

// Handler receives what a Syncer reads. The Syncer calls it from one
// goroutine, never concurrently.
type Handler interface {
	// Reset replaces the local state with records, every live record of
	// the type (after a start or an ABORTED Sync).
	Reset(records []*databrokerv1.Record)
	// Update applies one change, in version order; a change with
	// DeletedAt set is a delete.
	Update(record *databrokerv1.Record)
}

// SyncerOptions configure a Syncer.
type SyncerOptions struct {
	// Logger receives stream errors (default slog.Default()).
	Logger *slog.Logger
	// MinBackoff is the first delay before reconnecting (default 100ms).
	MinBackoff time.Duration
	// MaxBackoff caps the exponential backoff (default 10s).
	MaxBackoff time.Duration
	// Metrics receives the syncer's metrics (the version applied, the
	// lag of the latest change, full resyncs); nil registers none.
	Metrics prometheus.Registerer
	// ChangesOnly follows changes from the store's latest version instead
	// of reading every record first: at every (re)connection the handler
	// gets Reset(nil) once ServerInfo answered, then the changes after
	// that point. Changes made while no stream was open are never
	// delivered; the Reset tells the handler it missed some. For callers
	// that only react to changes (a proxy's decision reuse), so that
	// starting costs nothing however many records the store holds.
	ChangesOnly bool
	// Disconnected, when set, is called (from Run's goroutine) each time
	// a stream ends: until the next Reset or change, the handler hears
	// nothing.
	Disconnected func()
}

// Syncer keeps a Handler current with one record type ("" for all): it
// reads SyncLatest, then follows Sync. When a stream breaks it resumes Sync
// from the last version it applied; when Sync fails with ABORTED (the
// store was wiped, or the syncer fell behind the change log) it starts
// over with SyncLatest. Reconnects back off exponentially.
type Syncer struct {
	client  databrokerv1.DataBrokerServiceClient
	typeURL string
	handler Handler
	opts    SyncerOptions
	metrics *syncMetrics

	synced     atomic.Bool
	syncedCh   chan struct{}
	syncedOnce sync.Once

	mu            sync.Mutex
	serverVersion uint64
	recordVersion uint64
}

// NewSyncer returns a syncer of typeURL ("" for every type) into handler.
// Nothing happens until Run.
func NewSyncer(client databrokerv1.DataBrokerServiceClient, typeURL string, handler Handler, opts SyncerOptions) *Syncer {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(10*time.Second, opts.MinBackoff)
	}
	return &Syncer{client: client, typeURL: typeURL, handler: handler, opts: opts, syncedCh: make(chan struct{}),
		metrics: newSyncMetrics(opts.Metrics)}
}

// HasSynced reports whether the handler received a full SyncLatest
// snapshot at least once (for readiness). Safe for concurrent use.
func (s *Syncer) HasSynced() bool { return s.synced.Load() }

// WaitSynced blocks until HasSynced or ctx ends.
func (s *Syncer) WaitSynced(ctx context.Context) error {
	select {
	case <-s.syncedCh:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Versions returns the server version and the last record version applied.
func (s *Syncer) Versions() (serverVersion, recordVersion uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.serverVersion, s.recordVersion
}

// Run syncs until ctx ends, then returns nil.
func (s *Syncer) Run(ctx context.Context) error {
	needLatest := true
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		var progressed bool
		var err error
		if needLatest {
			if s.opts.ChangesOnly {
				err = s.startAtLatest(ctx)
			} else {
				err = s.syncLatest(ctx)
			}
			if err == nil {
				needLatest = false
				progressed = true
			}
		}
		if err == nil {
			progressed, err = s.sync(ctx, progressed)
		}
		if s.opts.Disconnected != nil {
			s.opts.Disconnected()
		}
		if ctx.Err() != nil {
			return nil
		}
		if status.Code(err) == codes.Aborted || s.opts.ChangesOnly {
			needLatest = true
		}
		if progressed {
			backoff = 0
		}
		backoff = min(max(2*backoff, s.opts.MinBackoff), s.opts.MaxBackoff)
		// Jitter spreads the reconnects of many replicas.
		delay := backoff/2 + rand.N(backoff/2+1)
		s.opts.Logger.Warn("databroker: sync stream ended; reconnecting",
			"type", s.typeURL, "error", errString(err), "full_resync", needLatest, "retry_in", delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
	return nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (s *Syncer) syncLatest(ctx context.Context) error {
	stream, err := s.client.SyncLatest(ctx, &databrokerv1.SyncLatestRequest{Type: s.typeURL})
	if err != nil {
		return err
	}
	var recs []*databrokerv1.Record
	for {
		msg, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = status.Error(codes.Internal, "SyncLatest ended without versions")
			}
			return err
		}
		if r := msg.GetRecord(); r != nil {
			recs = append(recs, r)
			continue
		}
		vs := msg.GetVersions()
		s.handler.Reset(recs)
		s.mu.Lock()
		s.serverVersion, s.recordVersion = vs.GetServerVersion(), vs.GetLatestRecordVersion()
		s.mu.Unlock()
		s.metrics.reset(vs.GetLatestRecordVersion())
		s.synced.Store(true)
		s.syncedOnce.Do(func() { close(s.syncedCh) })
		return nil
	}
}

// startAtLatest is syncLatest without the records (ChangesOnly).
func (s *Syncer) startAtLatest(ctx context.Context) error {
	info, err := s.client.ServerInfo(ctx, &databrokerv1.ServerInfoRequest{})
	if err != nil {
		return err
	}
	// Versions first: the handler may read them in Reset.
	s.mu.Lock()
	s.serverVersion, s.recordVersion = info.GetServerVersion(), info.GetLatestRecordVersion()
	s.mu.Unlock()
	s.handler.Reset(nil)
	s.metrics.reset(info.GetLatestRecordVersion())
	s.synced.Store(true)
	s.syncedOnce.Do(func() { close(s.syncedCh) })
	return nil
}

// sync follows a Sync stream until it fails; progressed reports whether
// any change arrived (or the caller already made progress).
func (s *Syncer) sync(ctx context.Context, progressed bool) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sv, rv := s.Versions()
	stream, err := s.client.Sync(ctx, &databrokerv1.SyncRequest{ServerVersion: sv, RecordVersion: rv, Type: s.typeURL})
	if err != nil {
		return progressed, err
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = status.Error(codes.Unavailable, "Sync stream closed by the server")
			}
			return progressed, err
		}
		r := msg.GetRecord()
		if r.GetVersion() <= rv {
			continue // already applied
		}
		s.handler.Update(r)
		s.metrics.applied(r)
		rv = r.GetVersion()
		s.mu.Lock()
		s.recordVersion = rv
		s.mu.Unlock()
		progressed = true
	}
}
