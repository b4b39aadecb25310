// Package memory is the in-process databroker storage driver: records per
// type in maps, an ordered change log and leases, behind one lock. The
// rules (TTL, capacity, leases, retention) are storage.Store's.
package memory

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	"github.com/gatehouse/gatehouse/services/databroker/storage"
)

// Type is the memory storage type: the default, for one databroker
// process.
var Type = storage.Type{
	Name: "memory",
	Use:  "one databroker process (all-in-one, development); records are lost when it stops",
	Open: func(context.Context, storage.DriverConfig) (storage.Driver, error) { return NewDriver(), nil },
}

// New returns a Store on a new memory driver.
func New(opts storage.StoreOptions) *storage.Store {
	return storage.NewStore(NewDriver(), opts)
}

// Driver is the memory storage driver. It is safe for concurrent use.
type Driver struct {
	serverVersion uint64
	notify        storage.Notifier

	mu      sync.RWMutex
	latest  uint64
	pruned  uint64 // every change up to pruned may be gone from log
	tables  map[string]*table
	log     []*databrokerv1.Record
	leases  map[string]storage.Lease
	options map[string]*databrokerv1.Options
}

var _ storage.Driver = (*Driver)(nil)

type table struct {
	records map[string]*databrokerv1.Record
}

// NewDriver returns an empty memory driver with a fresh server version.
func NewDriver() *Driver {
	return &Driver{
		serverVersion: storage.NewServerVersion(),
		tables:        map[string]*table{},
		leases:        map[string]storage.Lease{},
		options:       map[string]*databrokerv1.Options{},
	}
}

func (d *Driver) tableLocked(typ string) *table {
	t := d.tables[typ]
	if t == nil {
		t = &table{records: map[string]*databrokerv1.Record{}}
		d.tables[typ] = t
	}
	return t
}

// Versions implements storage.Driver.
func (d *Driver) Versions(context.Context) (storage.Versions, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return storage.Versions{Server: d.serverVersion, Earliest: d.pruned, Latest: d.latest}, nil
}

// Append implements storage.Driver.
func (d *Driver) Append(_ context.Context, writes []storage.Write, now time.Time) (uint64, []uint64, error) {
	d.mu.Lock()
	for _, w := range writes {
		if !w.Conditional {
			continue
		}
		var have uint64
		if t := d.tables[w.Type]; t != nil && t.records[w.ID] != nil {
			have = t.records[w.ID].GetVersion()
		}
		if have != w.Version {
			d.mu.Unlock()
			return 0, nil, storage.ErrConflict
		}
	}
	ts := timestamppb.New(now)
	versions := make([]uint64, len(writes))
	for i, w := range writes {
		d.latest++
		versions[i] = d.latest
		var data *anypb.Any
		if w.Data != nil {
			data = proto.Clone(w.Data).(*anypb.Any)
		}
		rec := &databrokerv1.Record{Type: w.Type, Id: w.ID, Data: data, Version: d.latest, ModifiedAt: ts}
		t := d.tableLocked(w.Type)
		if w.Delete {
			rec.DeletedAt = ts
			delete(t.records, w.ID)
		} else {
			t.records[w.ID] = rec
		}
		d.log = append(d.log, rec)
	}
	d.mu.Unlock()
	d.notify.Broadcast()
	return d.serverVersion, versions, nil
}

// Get implements storage.Driver.
func (d *Driver) Get(_ context.Context, typ, id string) (*databrokerv1.Record, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if t := d.tables[typ]; t != nil {
		if r := t.records[id]; r != nil {
			return r, nil
		}
	}
	return nil, fmt.Errorf("%w: %s/%s", storage.ErrNotFound, typ, id)
}

// Records implements storage.Driver.
func (d *Driver) Records(_ context.Context, typ string) ([]*databrokerv1.Record, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var out []*databrokerv1.Record
	for name, t := range d.tables {
		if typ == "" || name == typ {
			for _, r := range t.records {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// Oldest implements storage.Driver.
func (d *Driver) Oldest(ctx context.Context, typ string, limit int) ([]*databrokerv1.Record, error) {
	recs, _ := d.Records(ctx, typ)
	sort.Slice(recs, func(i, j int) bool { return recs[i].GetVersion() < recs[j].GetVersion() })
	if len(recs) > limit {
		recs = recs[:limit]
	}
	return recs, nil
}

// Count implements storage.Driver.
func (d *Driver) Count(_ context.Context, typ string) (int, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if t := d.tables[typ]; t != nil {
		return len(t.records), nil
	}
	return 0, nil
}

// Types implements storage.Driver.
func (d *Driver) Types(context.Context) ([]string, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	types := make([]string, 0, len(d.tables))
	for typ := range d.tables {
		types = append(types, typ)
	}
	return types, nil
}

// Changes implements storage.Driver.
func (d *Driver) Changes(_ context.Context, serverVersion, after uint64, limit int) (*storage.ChangeBatch, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if serverVersion != d.serverVersion {
		return nil, fmt.Errorf("%w: got %d, store has %d", storage.ErrServerVersionMismatch, serverVersion, d.serverVersion)
	}
	if after < d.pruned {
		return nil, fmt.Errorf("%w: asked for changes after %d, earliest retained is after %d", storage.ErrVersionTooOld, after, d.pruned)
	}
	i := sort.Search(len(d.log), func(i int) bool { return d.log[i].GetVersion() > after })
	recs := d.log[i:]
	batch := &storage.ChangeBatch{Through: max(after, d.latest)}
	if len(recs) > limit {
		recs = recs[:limit]
		batch.More = true
		batch.Through = recs[limit-1].GetVersion()
	}
	batch.Records = append([]*databrokerv1.Record(nil), recs...)
	return batch, nil
}

// Changed implements storage.Driver.
func (d *Driver) Changed() <-chan struct{} { return d.notify.C() }

// Prune implements storage.Driver.
func (d *Driver) Prune(_ context.Context, before time.Time, keep int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	cut := max(len(d.log)-keep, 0)
	for cut < len(d.log) && d.log[cut].GetModifiedAt().AsTime().Before(before) {
		cut++
	}
	if cut == 0 {
		return nil
	}
	d.pruned = d.log[cut-1].GetVersion()
	clear(d.log[:cut]) // drop references so pruned records can be freed
	d.log = d.log[cut:]
	return nil
}

// Lease implements storage.Driver.
func (d *Driver) Lease(_ context.Context, name string) (storage.Lease, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.leases[name], nil
}

// SwapLease implements storage.Driver.
func (d *Driver) SwapLease(_ context.Context, name string, old, next storage.Lease) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.leases[name].Equal(old) {
		return false, nil
	}
	if next.IsZero() {
		delete(d.leases, name)
	} else {
		d.leases[name] = next
	}
	return true, nil
}

// TypeOptions implements storage.Driver.
func (d *Driver) TypeOptions(context.Context) (map[string]*databrokerv1.Options, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make(map[string]*databrokerv1.Options, len(d.options))
	for k, v := range d.options {
		out[k] = v
	}
	return out, nil
}

// SetTypeOptions implements storage.Driver.
func (d *Driver) SetTypeOptions(_ context.Context, typ string, opts *databrokerv1.Options) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.options[typ] = proto.Clone(opts).(*databrokerv1.Options)
	d.tableLocked(typ)
	return nil
}

// Ping implements storage.Driver; memory is always reachable.
func (d *Driver) Ping(context.Context) error { return nil }

// Close implements storage.Driver.
func (d *Driver) Close() error { return nil }
