package redis

import (
	"context"
	"errors"
	"sync"

	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	"github.com/gatehouse/gatehouse/services/databroker/storage"
)

// tailSize is how many recent changes a replica keeps decoded in memory.
const tailSize = 10000

// tail is a replica's in-memory copy of the newest changes, read from Redis
// once per wake-up by the subscriber goroutine and shared by every Sync
// stream of the replica that keeps up. It holds every change with a
// version in (start, latest], in order.
type tail struct {
	mu     sync.RWMutex
	valid  bool
	sv     uint64
	start  uint64
	latest uint64
	recs   []*databrokerv1.Record // recs[i].Version == start+1+i
}

// refresh appends the changes written since the last refresh. Only the
// subscriber goroutine calls it.
func (t *tail) refresh(ctx context.Context, b *Backend) {
	t.mu.RLock()
	valid, sv, latest := t.valid, t.sv, t.latest
	t.mu.RUnlock()
	if !valid {
		vs, err := b.Versions(ctx)
		if err != nil {
			return
		}
		sv, latest = vs.Server, vs.Latest
		t.mu.Lock()
		t.valid, t.sv, t.start, t.latest, t.recs = true, sv, latest, latest, nil
		t.mu.Unlock()
	}
	for {
		batch, err := b.changesFromRedis(ctx, sv, "", latest, 1000)
		if errors.Is(err, storage.ErrServerVersionMismatch) || errors.Is(err, storage.ErrVersionTooOld) {
			t.mu.Lock()
			t.valid, t.recs = false, nil // the store was wiped or we fell behind
			t.mu.Unlock()
			return
		}
		if err != nil {
			return
		}
		t.mu.Lock()
		for _, r := range batch.Records {
			if r.GetVersion() != t.latest+1 { // never expected: start over
				t.valid, t.recs = false, nil
				t.mu.Unlock()
				return
			}
			t.recs = append(t.recs, r)
			t.latest = r.GetVersion()
		}
		t.latest = max(t.latest, batch.Through)
		if len(t.recs) == 0 {
			t.start = t.latest
		}
		if over := len(t.recs) - tailSize; over > 0 {
			clear(t.recs[:over])
			t.recs = t.recs[over:]
			t.start = t.recs[0].GetVersion() - 1
		}
		latest = t.latest
		t.mu.Unlock()
		if !batch.More {
			return
		}
	}
}

// changes serves a Changes call from the tail when it covers after.
func (t *tail) changes(serverVersion uint64, typ string, after uint64, limit int) (*storage.ChangeBatch, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if !t.valid || serverVersion != t.sv || after < t.start || after > t.latest {
		return nil, false
	}
	batch := &storage.ChangeBatch{Through: t.latest}
	scanLimit := limit * 16
	recs := t.recs[after-t.start:]
	for i, r := range recs {
		if len(batch.Records) == limit || i == scanLimit {
			batch.More = true
			batch.Through = recs[i-1].GetVersion()
			break
		}
		if typ == "" || r.GetType() == typ {
			batch.Records = append(batch.Records, r)
		}
	}
	return batch, true
}
