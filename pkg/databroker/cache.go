package databroker

import (
	"context"
	"log/slog"
	"sync"

	"google.golang.org/protobuf/proto"

	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
)

// Change describes one change applied to a Cache.
type Change[T proto.Message] struct {
	// ID is the record id.
	ID string
	// Version is the record version of the change.
	Version uint64
	// Old is the value before the change (zero when there was none).
	Old T
	// New is the value after the change (zero for a delete).
	New T
	// Deleted is true for a delete.
	Deleted bool
}

// CacheOptions configure a Cache.
type CacheOptions[T proto.Message] struct {
	// OnChange, when set, is called after each incremental change is
	// applied, from the sync goroutine; it must not block for long.
	OnChange func(Change[T])
	// OnReset, when set, is called after a full snapshot replaced the
	// cache's contents.
	OnReset func()
	// Syncer configures reconnects and logging.
	Syncer SyncerOptions
}

// Cache is a local, always-current copy of every record of type T, kept by
// a Syncer. Reads are safe for concurrent use and take only a read lock, so
// many readers proceed in parallel; the values returned are shared and
// must not be modified.
type Cache[T proto.Message] struct {
	*Syncer
	opts CacheOptions[T]
	log  *slog.Logger

	mu    sync.RWMutex
	items map[string]T
}

// NewCache returns a cache of the records of type T (TypeURLOf[T]()).
// Call Run to start syncing.
func NewCache[T proto.Message](client databrokerv1.DataBrokerServiceClient, opts CacheOptions[T]) *Cache[T] {
	c := &Cache[T]{opts: opts, items: map[string]T{}}
	c.Syncer = NewSyncer(client, TypeURLOf[T](), (*cacheHandler[T])(c), opts.Syncer)
	c.log = c.Syncer.opts.Logger
	return c
}

// Run syncs the cache until ctx ends.
func (c *Cache[T]) Run(ctx context.Context) error { return c.Syncer.Run(ctx) }

// Get returns the value of id and whether it exists.
func (c *Cache[T]) Get(id string) (T, bool) {
	c.mu.RLock()
	v, ok := c.items[id]
	c.mu.RUnlock()
	return v, ok
}

// Len returns the number of records.
func (c *Cache[T]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.items)
}

// Range calls fn for each record until fn returns false. It holds the read
// lock meanwhile: fn must not call back into the cache's sync.
func (c *Cache[T]) Range(fn func(id string, v T) bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for id, v := range c.items {
		if !fn(id, v) {
			return
		}
	}
}

// cacheHandler is the Handler side of a Cache, kept off its method set.
type cacheHandler[T proto.Message] Cache[T]

func (h *cacheHandler[T]) Reset(records []*databrokerv1.Record) {
	items := make(map[string]T, len(records))
	for _, r := range records {
		if v, err := Unmarshal[T](r); err == nil {
			items[r.GetId()] = v
		} else {
			h.log.Warn("databroker: cache skips a record it cannot decode", "type", r.GetType(), "id", r.GetId(), "error", err.Error())
		}
	}
	h.mu.Lock()
	h.items = items
	h.mu.Unlock()
	if h.opts.OnReset != nil {
		h.opts.OnReset()
	}
}

func (h *cacheHandler[T]) Update(r *databrokerv1.Record) {
	ch := Change[T]{ID: r.GetId(), Version: r.GetVersion(), Deleted: r.GetDeletedAt() != nil}
	if !ch.Deleted {
		v, err := Unmarshal[T](r)
		if err != nil {
			h.log.Warn("databroker: cache skips a record it cannot decode", "type", r.GetType(), "id", r.GetId(), "error", err.Error())
			return
		}
		ch.New = v
	}
	h.mu.Lock()
	ch.Old = h.items[r.GetId()]
	if ch.Deleted {
		delete(h.items, r.GetId())
	} else {
		h.items[r.GetId()] = ch.New
	}
	h.mu.Unlock()
	if h.opts.OnChange != nil {
		h.opts.OnChange(ch)
	}
}
