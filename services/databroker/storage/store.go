package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
)

// StoreOptions configure a Store. The zero value uses the defaults.
type StoreOptions struct {
	// Retention is how long the change log keeps a change (default 1h).
	Retention time.Duration
	// MaxChanges caps the change log's length (default 1,000,000).
	MaxChanges int
	// Now returns the current time (default time.Now): modified times,
	// TTL expiry, lease expiry and change-log retention read it, so tests
	// pass a fake clock (testutil.Clock.Now) instead of sleeping.
	Now func() time.Time
}

func (o *StoreOptions) setDefaults() {
	if o.Retention <= 0 {
		o.Retention = time.Hour
	}
	if o.MaxChanges <= 0 {
		o.MaxChanges = 1_000_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// optionsCacheTTL is how long a Store trusts the type options it read
// (capacity is applied on every Put). A SetOptions through this Store
// takes effect at once; one through another replica within this time
// (and at the next Sweep in any case).
const optionsCacheTTL = time.Second

// sweepBatch is how many records one Sweep step expires at a time.
const sweepBatch = 100

// Store is a Backend over a Driver: the rules every storage follows the
// same way, once. It is safe for concurrent use.
//
// A Store keeps a tail of the newest changes in memory, read from the
// driver once per wake-up by one goroutine (started by the first call of
// Changed, stopped by Close) and shared by every Sync stream that keeps
// up; streams that fall behind read the driver.
type Store struct {
	d    Driver
	opts StoreOptions

	tail   tail
	notify Notifier
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	optMu   sync.Mutex
	optAt   time.Time // wall time of the cached read
	optVals map[string]*databrokerv1.Options
}

var _ Backend = (*Store)(nil)

// NewStore returns a Store over d, which Close closes. It starts no
// goroutine.
func NewStore(d Driver, opts StoreOptions) *Store {
	opts.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Store{d: d, opts: opts, ctx: ctx, cancel: cancel}
}

// Driver returns the store's driver.
func (s *Store) Driver() Driver { return s.d }

func (s *Store) now() time.Time { return s.opts.Now().Truncate(time.Microsecond) }

// ServerVersion implements Backend.
func (s *Store) ServerVersion(ctx context.Context) (uint64, error) {
	vs, err := s.d.Versions(ctx)
	return vs.Server, err
}

// Versions implements Backend.
func (s *Store) Versions(ctx context.Context) (Versions, error) { return s.d.Versions(ctx) }

// Get implements Backend.
func (s *Store) Get(ctx context.Context, typ, id string) (*databrokerv1.Record, error) {
	return s.d.Get(ctx, typ, id)
}

// Put implements Backend: the writes, then the capacity of their types.
func (s *Store) Put(ctx context.Context, records []*databrokerv1.Record) (uint64, []*databrokerv1.Record, error) {
	if err := ValidateRecords(records); err != nil {
		return 0, nil, err
	}
	if len(records) == 0 {
		sv, err := s.ServerVersion(ctx)
		return sv, nil, err
	}
	writes := make([]Write, len(records))
	for i, r := range records {
		writes[i] = Write{Type: r.GetType(), ID: r.GetId(), Data: r.GetData(), Delete: r.GetDeletedAt() != nil}
	}
	sv, out, err := s.append(ctx, writes)
	if err != nil {
		return 0, nil, err
	}
	touched := map[string]bool{}
	for _, w := range writes {
		if !w.Delete && !touched[w.Type] {
			touched[w.Type] = true
			if err := s.applyCapacity(ctx, w.Type, false); err != nil {
				return 0, nil, err
			}
		}
	}
	return sv, out, nil
}

// append writes through the driver and returns the stored records.
func (s *Store) append(ctx context.Context, writes []Write) (uint64, []*databrokerv1.Record, error) {
	now := s.now()
	sv, versions, err := s.d.Append(ctx, writes, now)
	if err != nil {
		return 0, nil, err
	}
	ts := timestamppb.New(now)
	out := make([]*databrokerv1.Record, len(writes))
	for i, w := range writes {
		out[i] = &databrokerv1.Record{Type: w.Type, Id: w.ID, Data: w.Data, Version: versions[i], ModifiedAt: ts}
		if w.Delete {
			out[i].DeletedAt = ts
		}
	}
	return sv, out, nil
}

// Patch implements Backend: an optimistic read-modify-write that retries
// when a concurrent write changed a record in between.
func (s *Store) Patch(ctx context.Context, records []*databrokerv1.Record, paths []string) (uint64, []*databrokerv1.Record, error) {
	if err := ValidateRecords(records); err != nil {
		return 0, nil, err
	}
	for attempt := 0; ; attempt++ {
		var writes []Write
		for _, r := range records {
			cur, err := s.d.Get(ctx, r.GetType(), r.GetId())
			if errors.Is(err, ErrNotFound) {
				continue
			} else if err != nil {
				return 0, nil, err
			}
			data, err := ApplyFieldMask(cur.GetData(), r.GetData(), paths)
			if err != nil {
				return 0, nil, err
			}
			writes = append(writes, Write{Type: r.GetType(), ID: r.GetId(), Data: data, Conditional: true, Version: cur.GetVersion()})
		}
		if len(writes) == 0 {
			sv, err := s.ServerVersion(ctx)
			return sv, nil, err
		}
		sv, out, err := s.append(ctx, writes)
		if errors.Is(err, ErrConflict) && attempt < 20 {
			continue
		}
		return sv, out, err
	}
}

// Query implements Backend. It scans the type's live records: queries are
// not on a hot path.
func (s *Store) Query(ctx context.Context, q Query) (*QueryResult, error) {
	if err := ValidateFilter(q.Filter); err != nil {
		return nil, err
	}
	q.Text = strings.ToLower(q.Text)
	vs, err := s.d.Versions(ctx)
	if err != nil {
		return nil, err
	}
	recs, err := s.d.Records(ctx, q.Type)
	if err != nil {
		return nil, err
	}
	var matches []*databrokerv1.Record
	for _, r := range recs {
		if Match(&q, r.GetId(), ExtractIndex(r.GetData())) {
			matches = append(matches, r)
		}
	}
	res := &QueryResult{ServerVersion: vs.Server, RecordVersion: vs.Latest}
	res.Records, res.TotalCount = Page(&q, matches)
	return res, nil
}

// ListTypes implements Backend.
func (s *Store) ListTypes(ctx context.Context) ([]string, error) {
	types, err := s.d.Types(ctx)
	if err != nil {
		return nil, err
	}
	types = slices.Clone(types)
	sort.Strings(types)
	return slices.Compact(types), nil
}

// Changes implements Backend. Streams that keep up are served from the
// tail; others read the driver.
func (s *Store) Changes(ctx context.Context, serverVersion uint64, typ string, after uint64, limit int) (*ChangeBatch, error) {
	if limit <= 0 {
		limit = 1000
	}
	if batch, ok := s.tail.changes(serverVersion, typ, after, limit); ok {
		return batch, nil
	}
	batch, err := s.d.Changes(ctx, serverVersion, after, limit)
	if err != nil || typ == "" {
		return batch, err
	}
	kept := batch.Records[:0:0]
	for _, r := range batch.Records {
		if r.GetType() == typ {
			kept = append(kept, r)
		}
	}
	return &ChangeBatch{Records: kept, Through: batch.Through, More: batch.More}, nil
}

// Changed implements Backend. The first call starts the goroutine that
// follows the driver into the tail; it runs until Close.
func (s *Store) Changed() <-chan struct{} {
	s.once.Do(func() {
		s.wg.Add(1)
		go s.follow()
	})
	return s.notify.C()
}

func (s *Store) follow() {
	defer s.wg.Done()
	for {
		ch := s.d.Changed()
		s.tail.refresh(s.ctx, s.d)
		s.notify.Broadcast()
		select {
		case <-s.ctx.Done():
			return
		case <-ch:
		}
	}
}

// Latest implements Backend. It reads the versions first, then the
// records: records written meanwhile may be newer than the versions, and
// Sync from them replays those writes harmlessly.
func (s *Store) Latest(ctx context.Context, typ string) ([]*databrokerv1.Record, Versions, error) {
	vs, err := s.d.Versions(ctx)
	if err != nil {
		return nil, vs, err
	}
	recs, err := s.d.Records(ctx, typ)
	return recs, vs, err
}

// AcquireLease implements Backend.
func (s *Store) AcquireLease(ctx context.Context, name, id string, ttl time.Duration) error {
	return s.swapLease(ctx, name, func(cur Lease, now time.Time) (Lease, error) {
		if !cur.IsZero() && cur.Holder != id && now.Before(cur.Expires) {
			return cur, fmt.Errorf("%w: %s", ErrLeaseHeld, name)
		}
		return Lease{Holder: id, Expires: now.Add(ttl)}, nil
	})
}

// RenewLease implements Backend.
func (s *Store) RenewLease(ctx context.Context, name, id string, ttl time.Duration) error {
	return s.swapLease(ctx, name, func(cur Lease, now time.Time) (Lease, error) {
		switch {
		case cur.IsZero() || !now.Before(cur.Expires):
			return cur, fmt.Errorf("%w: %s", ErrLeaseNotHeld, name)
		case cur.Holder != id:
			return cur, fmt.Errorf("%w: %s", ErrLeaseHeld, name)
		}
		return Lease{Holder: id, Expires: now.Add(ttl)}, nil
	})
}

// ReleaseLease implements Backend.
func (s *Store) ReleaseLease(ctx context.Context, name, id string) error {
	return s.swapLease(ctx, name, func(cur Lease, _ time.Time) (Lease, error) {
		if cur.Holder != id {
			return cur, nil
		}
		return Lease{}, nil
	})
}

// swapLease reads lease name, asks decide for its next value and
// compare-and-sets it, retrying when another replica changed it between.
func (s *Store) swapLease(ctx context.Context, name string, decide func(cur Lease, now time.Time) (Lease, error)) error {
	for attempt := 0; ; attempt++ {
		cur, err := s.d.Lease(ctx, name)
		if err != nil {
			return err
		}
		next, err := decide(cur, s.now())
		if err != nil || next.Equal(cur) {
			return err
		}
		ok, err := s.d.SwapLease(ctx, name, cur, next)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if attempt == 20 {
			return fmt.Errorf("%w: lease %s", ErrConflict, name)
		}
	}
}

// SetOptions implements Backend.
func (s *Store) SetOptions(ctx context.Context, typ string, opts *databrokerv1.Options) error {
	if typ == "" {
		return fmt.Errorf("%w: options need a type", ErrInvalid)
	}
	if opts == nil {
		opts = &databrokerv1.Options{}
	}
	if err := s.d.SetTypeOptions(ctx, typ, opts); err != nil {
		return err
	}
	s.optMu.Lock()
	s.optVals = nil
	s.optMu.Unlock()
	return s.applyCapacity(ctx, typ, true)
}

// GetOptions implements Backend.
func (s *Store) GetOptions(ctx context.Context, typ string) (*databrokerv1.Options, error) {
	all, err := s.typeOptions(ctx, true)
	if err != nil {
		return nil, err
	}
	if o := all[typ]; o != nil {
		return proto.Clone(o).(*databrokerv1.Options), nil
	}
	return &databrokerv1.Options{}, nil
}

// typeOptions returns the options of every type, from the cache unless
// fresh is set.
func (s *Store) typeOptions(ctx context.Context, fresh bool) (map[string]*databrokerv1.Options, error) {
	s.optMu.Lock()
	if !fresh && s.optVals != nil && time.Since(s.optAt) < optionsCacheTTL {
		v := s.optVals
		s.optMu.Unlock()
		return v, nil
	}
	s.optMu.Unlock()
	all, err := s.d.TypeOptions(ctx)
	if err != nil {
		return nil, err
	}
	s.optMu.Lock()
	s.optVals, s.optAt = all, time.Now()
	s.optMu.Unlock()
	return all, nil
}

// applyCapacity deletes the oldest records of typ beyond its capacity.
func (s *Store) applyCapacity(ctx context.Context, typ string, fresh bool) error {
	all, err := s.typeOptions(ctx, fresh)
	if err != nil {
		return err
	}
	capacity := all[typ].GetCapacity()
	if capacity == 0 {
		return nil
	}
	for {
		n, err := s.d.Count(ctx, typ)
		if err != nil {
			return err
		}
		over := n - int(min(capacity, uint64(n)))
		if over <= 0 {
			return nil
		}
		old, err := s.d.Oldest(ctx, typ, min(over, sweepBatch))
		if err != nil {
			return err
		}
		if err := s.deleteIfUnchanged(ctx, old); err != nil {
			return err
		}
	}
}

// deleteIfUnchanged deletes records unless another write changed them
// first (then that write wins and they are skipped).
func (s *Store) deleteIfUnchanged(ctx context.Context, recs []*databrokerv1.Record) error {
	if len(recs) == 0 {
		return nil
	}
	writes := make([]Write, len(recs))
	for i, r := range recs {
		writes[i] = Write{Type: r.GetType(), ID: r.GetId(), Data: r.GetData(), Delete: true, Conditional: true, Version: r.GetVersion()}
	}
	_, _, err := s.d.Append(ctx, writes, s.now())
	if !errors.Is(err, ErrConflict) {
		return err
	}
	for _, w := range writes { // one by one, skipping those that changed
		if _, _, err := s.d.Append(ctx, []Write{w}, s.now()); err != nil && !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return nil
}

// Sweep implements Backend: TTL expiry and capacity of every type with
// options, then the change log's retention. Replicas may run it
// concurrently: its deletes are conditional on the version they saw.
func (s *Store) Sweep(ctx context.Context) error {
	all, err := s.typeOptions(ctx, true)
	if err != nil {
		return err
	}
	for typ, o := range all {
		if ttl := o.GetTtl().AsDuration(); o.GetTtl() != nil && ttl > 0 {
			if err := s.expire(ctx, typ, ttl); err != nil {
				return err
			}
		}
		if err := s.applyCapacity(ctx, typ, false); err != nil {
			return err
		}
	}
	return s.d.Prune(ctx, s.now().Add(-s.opts.Retention), s.opts.MaxChanges)
}

// expire deletes the records of typ last written ttl or more ago, oldest
// first.
func (s *Store) expire(ctx context.Context, typ string, ttl time.Duration) error {
	for {
		now := s.now()
		old, err := s.d.Oldest(ctx, typ, sweepBatch)
		if err != nil {
			return err
		}
		var expired []*databrokerv1.Record
		for _, r := range old {
			if now.Before(r.GetModifiedAt().AsTime().Add(ttl)) {
				break
			}
			expired = append(expired, r)
		}
		if err := s.deleteIfUnchanged(ctx, expired); err != nil {
			return err
		}
		if len(expired) < sweepBatch {
			return nil
		}
	}
}

// Ping implements Backend.
func (s *Store) Ping(ctx context.Context) error { return s.d.Ping(ctx) }

// Close stops the follower and closes the driver.
func (s *Store) Close() error {
	s.cancel()
	s.wg.Wait()
	return s.d.Close()
}
