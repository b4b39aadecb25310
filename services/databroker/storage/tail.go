package storage

import (
	"context"
	"errors"
	"sort"
	"sync"

	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
)

// tailSize is how many recent changes a Store keeps in memory.
const tailSize = 10000

// tail is a replica's in-memory copy of the newest changes, read from the
// driver once per wake-up by the Store's follower goroutine and shared by
// every Sync stream of the replica that keeps up. It holds every change
// with a version in (start, latest], in version order (versions may have
// gaps).
type tail struct {
	mu     sync.RWMutex
	valid  bool
	sv     uint64
	start  uint64
	latest uint64
	recs   []*databrokerv1.Record
}

// refresh appends the changes written since the last refresh. Only the
// follower goroutine calls it.
func (t *tail) refresh(ctx context.Context, d Driver) {
	t.mu.RLock()
	valid, sv, latest := t.valid, t.sv, t.latest
	t.mu.RUnlock()
	if !valid {
		vs, err := d.Versions(ctx)
		if err != nil {
			return
		}
		sv, latest = vs.Server, vs.Latest
		t.mu.Lock()
		t.valid, t.sv, t.start, t.latest, t.recs = true, sv, latest, latest, nil
		t.mu.Unlock()
	}
	for {
		batch, err := d.Changes(ctx, sv, latest, 1000)
		if errors.Is(err, ErrServerVersionMismatch) || errors.Is(err, ErrVersionTooOld) {
			t.invalidate() // the store was wiped or we fell behind
			return
		}
		if err != nil {
			return
		}
		t.mu.Lock()
		for _, r := range batch.Records {
			if r.GetVersion() <= t.latest { // never expected: start over
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
			t.start = t.recs[over-1].GetVersion()
			clear(t.recs[:over])
			t.recs = t.recs[over:]
		}
		latest = t.latest
		t.mu.Unlock()
		if !batch.More {
			return
		}
	}
}

func (t *tail) invalidate() {
	t.mu.Lock()
	t.valid, t.recs = false, nil
	t.mu.Unlock()
}

// changes serves a Changes call from the tail when it covers after.
func (t *tail) changes(serverVersion uint64, typ string, after uint64, limit int) (*ChangeBatch, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if !t.valid || serverVersion != t.sv || after < t.start || after > t.latest {
		return nil, false
	}
	batch := &ChangeBatch{Through: t.latest}
	scanLimit := limit * 16
	i := sort.Search(len(t.recs), func(i int) bool { return t.recs[i].GetVersion() > after })
	recs := t.recs[i:]
	for n, r := range recs {
		if len(batch.Records) == limit || n == scanLimit {
			batch.More = true
			batch.Through = recs[n-1].GetVersion()
			break
		}
		if typ == "" || r.GetType() == typ {
			batch.Records = append(batch.Records, r)
		}
	}
	return batch, true
}
