// Package memory is the in-process databroker storage backend: records per
// type in maps, an ordered and bounded change log, TTL and capacity
// eviction, and Sync wake-ups through a broadcast channel.
package memory

import (
	"container/list"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	"github.com/gatehouse/gatehouse/services/databroker/storage"
)

// Options configure a memory backend. The zero value uses the defaults.
type Options struct {
	// Retention is how long the change log keeps a change (default 1h).
	Retention time.Duration
	// MaxChanges caps the change log's length (default 1,000,000).
	MaxChanges int
	// Now returns the current time (default time.Now); tests inject it.
	Now func() time.Time
}

func (o *Options) setDefaults() {
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

// Backend is the memory storage backend. It is safe for concurrent use.
type Backend struct {
	opts          Options
	serverVersion uint64
	notify        storage.Notifier

	mu     sync.RWMutex
	latest uint64
	pruned uint64 // every change up to pruned may be gone from log
	tables map[string]*table
	log    []change
	leases map[string]lease
}

var _ storage.Backend = (*Backend)(nil)

type change struct {
	rec *databrokerv1.Record
	at  time.Time
}

type lease struct {
	id      string
	expires time.Time
}

type table struct {
	records map[string]*entry
	order   list.List // *entry, least recently modified first
	index   map[string]map[string]map[string]struct{}
	options *databrokerv1.Options
}

type entry struct {
	rec  *databrokerv1.Record
	idx  storage.Index
	elem *list.Element
}

// New returns an empty memory backend with a fresh server version.
func New(opts Options) *Backend {
	opts.setDefaults()
	return &Backend{
		opts:          opts,
		serverVersion: storage.NewServerVersion(),
		tables:        map[string]*table{},
		leases:        map[string]lease{},
	}
}

func (b *Backend) tableLocked(typ string) *table {
	t := b.tables[typ]
	if t == nil {
		t = &table{records: map[string]*entry{}, index: map[string]map[string]map[string]struct{}{}}
		b.tables[typ] = t
	}
	return t
}

// ServerVersion implements storage.Backend.
func (b *Backend) ServerVersion(context.Context) (uint64, error) { return b.serverVersion, nil }

// Versions implements storage.Backend.
func (b *Backend) Versions(context.Context) (storage.Versions, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.versionsLocked(), nil
}

func (b *Backend) versionsLocked() storage.Versions {
	return storage.Versions{Server: b.serverVersion, Earliest: b.pruned, Latest: b.latest}
}

// Get implements storage.Backend.
func (b *Backend) Get(_ context.Context, typ, id string) (*databrokerv1.Record, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if t := b.tables[typ]; t != nil {
		if e := t.records[id]; e != nil {
			return e.rec, nil
		}
	}
	return nil, fmt.Errorf("%w: %s/%s", storage.ErrNotFound, typ, id)
}

// Put implements storage.Backend.
func (b *Backend) Put(_ context.Context, records []*databrokerv1.Record) (uint64, []*databrokerv1.Record, error) {
	if err := storage.ValidateRecords(records); err != nil {
		return 0, nil, err
	}
	b.mu.Lock()
	now := b.opts.Now()
	out := make([]*databrokerv1.Record, 0, len(records))
	touched := map[string]struct{}{}
	for _, r := range records {
		var data *anypb.Any
		if r.GetData() != nil {
			data = proto.Clone(r.GetData()).(*anypb.Any)
		}
		out = append(out, b.writeLocked(r.GetType(), r.GetId(), data, r.GetDeletedAt() != nil, now))
		touched[r.GetType()] = struct{}{}
	}
	for typ := range touched {
		b.enforceCapacityLocked(typ, now)
	}
	b.pruneLocked(now)
	b.mu.Unlock()
	b.notify.Broadcast()
	return b.serverVersion, out, nil
}

// writeLocked stores one write with the next version and logs it.
func (b *Backend) writeLocked(typ, id string, data *anypb.Any, del bool, now time.Time) *databrokerv1.Record {
	b.latest++
	ts := timestamppb.New(now)
	rec := &databrokerv1.Record{Type: typ, Id: id, Data: data, Version: b.latest, ModifiedAt: ts}
	t := b.tableLocked(typ)
	if old := t.records[id]; old != nil {
		t.order.Remove(old.elem)
		t.unindex(id, old.idx)
		delete(t.records, id)
	}
	if del {
		rec.DeletedAt = ts
	} else {
		e := &entry{rec: rec, idx: storage.ExtractIndex(data)}
		e.elem = t.order.PushBack(e)
		t.records[id] = e
		t.reindex(id, e.idx)
	}
	b.log = append(b.log, change{rec: rec, at: now})
	return rec
}

func (t *table) reindex(id string, idx storage.Index) {
	for f, v := range idx {
		byValue := t.index[f]
		if byValue == nil {
			byValue = map[string]map[string]struct{}{}
			t.index[f] = byValue
		}
		ids := byValue[v]
		if ids == nil {
			ids = map[string]struct{}{}
			byValue[v] = ids
		}
		ids[id] = struct{}{}
	}
}

func (t *table) unindex(id string, idx storage.Index) {
	for f, v := range idx {
		if ids := t.index[f][v]; ids != nil {
			delete(ids, id)
			if len(ids) == 0 {
				delete(t.index[f], v)
			}
		}
	}
}

func (b *Backend) enforceCapacityLocked(typ string, now time.Time) int {
	t := b.tables[typ]
	if t == nil || t.options.GetCapacity() == 0 {
		return 0
	}
	n := 0
	for uint64(len(t.records)) > t.options.GetCapacity() {
		e := t.order.Front().Value.(*entry)
		b.writeLocked(typ, e.rec.GetId(), e.rec.GetData(), true, now)
		n++
	}
	return n
}

func (b *Backend) pruneLocked(now time.Time) {
	cut := 0
	if over := len(b.log) - b.opts.MaxChanges; over > 0 {
		cut = over
	}
	limit := now.Add(-b.opts.Retention)
	for cut < len(b.log) && b.log[cut].at.Before(limit) {
		cut++
	}
	if cut == 0 {
		return
	}
	b.pruned = b.log[cut-1].rec.GetVersion()
	clear(b.log[:cut]) // drop references so pruned records can be freed
	b.log = b.log[cut:]
}

// Patch implements storage.Backend.
func (b *Backend) Patch(_ context.Context, records []*databrokerv1.Record, paths []string) (uint64, []*databrokerv1.Record, error) {
	if err := storage.ValidateRecords(records); err != nil {
		return 0, nil, err
	}
	b.mu.Lock()
	now := b.opts.Now()
	// Compute every patch first so that a bad one changes nothing.
	patched := make([]*databrokerv1.Record, 0, len(records))
	for _, r := range records {
		t := b.tables[r.GetType()]
		if t == nil {
			continue
		}
		e := t.records[r.GetId()]
		if e == nil {
			continue
		}
		data, err := storage.ApplyFieldMask(e.rec.GetData(), r.GetData(), paths)
		if err != nil {
			b.mu.Unlock()
			return 0, nil, err
		}
		patched = append(patched, &databrokerv1.Record{Type: r.GetType(), Id: r.GetId(), Data: data})
	}
	out := make([]*databrokerv1.Record, 0, len(patched))
	for _, r := range patched {
		out = append(out, b.writeLocked(r.GetType(), r.GetId(), r.GetData(), false, now))
	}
	b.pruneLocked(now)
	b.mu.Unlock()
	if len(out) > 0 {
		b.notify.Broadcast()
	}
	return b.serverVersion, out, nil
}

// Query implements storage.Backend.
func (b *Backend) Query(_ context.Context, q storage.Query) (*storage.QueryResult, error) {
	if err := storage.ValidateFilter(q.Filter); err != nil {
		return nil, err
	}
	q.Text = strings.ToLower(q.Text)
	b.mu.RLock()
	defer b.mu.RUnlock()
	res := &storage.QueryResult{ServerVersion: b.serverVersion, RecordVersion: b.latest}
	t := b.tables[q.Type]
	if t == nil {
		return res, nil
	}
	var matches []*databrokerv1.Record
	consider := func(e *entry) {
		if e != nil && storage.Match(&q, e.rec.GetId(), e.idx) {
			matches = append(matches, e.rec)
		}
	}
	switch {
	case len(q.Filter["id"]) > 0:
		for _, id := range dedupe(q.Filter["id"]) {
			consider(t.records[id])
		}
	case t.indexedFilter(&q) != "":
		f := t.indexedFilter(&q)
		seen := map[string]struct{}{}
		for _, v := range q.Filter[f] {
			for id := range t.index[f][v] {
				if _, ok := seen[id]; !ok {
					seen[id] = struct{}{}
					consider(t.records[id])
				}
			}
		}
	default:
		for _, e := range t.records {
			consider(e)
		}
	}
	res.Records, res.TotalCount = storage.Page(&q, matches)
	return res, nil
}

func (t *table) indexedFilter(q *storage.Query) string {
	for f := range q.Filter {
		if f != "id" {
			return f
		}
	}
	return ""
}

func dedupe(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// ListTypes implements storage.Backend.
func (b *Backend) ListTypes(context.Context) ([]string, error) {
	b.mu.RLock()
	types := make([]string, 0, len(b.tables))
	for typ := range b.tables {
		types = append(types, typ)
	}
	b.mu.RUnlock()
	sort.Strings(types)
	return types, nil
}

// Changes implements storage.Backend.
func (b *Backend) Changes(_ context.Context, serverVersion uint64, typ string, after uint64, limit int) (*storage.ChangeBatch, error) {
	if limit <= 0 {
		limit = 1000
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if serverVersion != b.serverVersion {
		return nil, fmt.Errorf("%w: got %d, store has %d", storage.ErrServerVersionMismatch, serverVersion, b.serverVersion)
	}
	if after < b.pruned {
		return nil, fmt.Errorf("%w: asked for changes after %d, earliest retained is after %d", storage.ErrVersionTooOld, after, b.pruned)
	}
	batch := &storage.ChangeBatch{Through: max(after, b.latest)}
	i := sort.Search(len(b.log), func(i int) bool { return b.log[i].rec.GetVersion() > after })
	// Bound the scan so a filtered stream does not hold the lock for long.
	scanLimit := limit * 16
	for n := 0; i < len(b.log); i, n = i+1, n+1 {
		if len(batch.Records) == limit || n == scanLimit {
			batch.More = true
			batch.Through = b.log[i-1].rec.GetVersion()
			break
		}
		if r := b.log[i].rec; typ == "" || r.GetType() == typ {
			batch.Records = append(batch.Records, r)
		}
	}
	return batch, nil
}

// Changed implements storage.Backend.
func (b *Backend) Changed() <-chan struct{} { return b.notify.C() }

// Latest implements storage.Backend.
func (b *Backend) Latest(_ context.Context, typ string) ([]*databrokerv1.Record, storage.Versions, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var out []*databrokerv1.Record
	add := func(t *table) {
		for e := t.order.Front(); e != nil; e = e.Next() {
			out = append(out, e.Value.(*entry).rec)
		}
	}
	if typ != "" {
		if t := b.tables[typ]; t != nil {
			add(t)
		}
	} else {
		for _, t := range b.tables {
			add(t)
		}
	}
	return out, b.versionsLocked(), nil
}

// AcquireLease implements storage.Backend.
func (b *Backend) AcquireLease(_ context.Context, name, id string, ttl time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.opts.Now()
	if l, ok := b.leases[name]; ok && l.id != id && now.Before(l.expires) {
		return fmt.Errorf("%w: %s", storage.ErrLeaseHeld, name)
	}
	b.leases[name] = lease{id: id, expires: now.Add(ttl)}
	return nil
}

// RenewLease implements storage.Backend.
func (b *Backend) RenewLease(_ context.Context, name, id string, ttl time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.opts.Now()
	l, ok := b.leases[name]
	switch {
	case !ok || !now.Before(l.expires):
		return fmt.Errorf("%w: %s", storage.ErrLeaseNotHeld, name)
	case l.id != id:
		return fmt.Errorf("%w: %s", storage.ErrLeaseHeld, name)
	}
	b.leases[name] = lease{id: id, expires: now.Add(ttl)}
	return nil
}

// ReleaseLease implements storage.Backend.
func (b *Backend) ReleaseLease(_ context.Context, name, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if l, ok := b.leases[name]; ok && l.id == id {
		delete(b.leases, name)
	}
	return nil
}

// SetOptions implements storage.Backend.
func (b *Backend) SetOptions(_ context.Context, typ string, opts *databrokerv1.Options) error {
	if typ == "" {
		return fmt.Errorf("%w: options need a type", storage.ErrInvalid)
	}
	b.mu.Lock()
	b.tableLocked(typ).options = proto.Clone(opts).(*databrokerv1.Options)
	n := b.enforceCapacityLocked(typ, b.opts.Now())
	b.mu.Unlock()
	if n > 0 {
		b.notify.Broadcast()
	}
	return nil
}

// GetOptions implements storage.Backend.
func (b *Backend) GetOptions(_ context.Context, typ string) (*databrokerv1.Options, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if t := b.tables[typ]; t != nil && t.options != nil {
		return proto.Clone(t.options).(*databrokerv1.Options), nil
	}
	return &databrokerv1.Options{}, nil
}

// Sweep implements storage.Backend.
func (b *Backend) Sweep(context.Context) error {
	b.mu.Lock()
	now := b.opts.Now()
	before := b.latest
	for typ, t := range b.tables {
		ttl := t.options.GetTtl().AsDuration()
		if t.options.GetTtl() != nil && ttl > 0 {
			for f := t.order.Front(); f != nil; f = t.order.Front() {
				e := f.Value.(*entry)
				if now.Before(e.rec.GetModifiedAt().AsTime().Add(ttl)) {
					break
				}
				b.writeLocked(typ, e.rec.GetId(), e.rec.GetData(), true, now)
			}
		}
		b.enforceCapacityLocked(typ, now)
	}
	for name, l := range b.leases {
		if !now.Before(l.expires) {
			delete(b.leases, name)
		}
	}
	b.pruneLocked(now)
	changed := b.latest != before
	b.mu.Unlock()
	if changed {
		b.notify.Broadcast()
	}
	return nil
}

// Ping implements storage.Backend; memory is always reachable.
func (b *Backend) Ping(context.Context) error { return nil }

// Close implements storage.Backend.
func (b *Backend) Close() error { return nil }
