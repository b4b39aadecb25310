// Package storagetest is the conformance suite every databroker storage
// backend passes, plus shared benchmarks. A backend's test calls Run with a
// factory that returns a fresh, empty store.
package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gatehouse/gatehouse/pkg/databroker"
	"github.com/gatehouse/gatehouse/pkg/testutil"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	userv1 "github.com/gatehouse/gatehouse/proto/gatehouse/user/v1"
	"github.com/gatehouse/gatehouse/services/databroker/storage"
)

// Options are the backend settings a test needs; the factory applies them.
type Options struct {
	// Retention is the change log retention (zero: the backend default).
	Retention time.Duration
	// MaxChanges caps the change log length (zero: the backend default).
	MaxChanges int
	// Now is the store's clock (storage.StoreOptions.Now); the suite
	// passes a fake one and moves it instead of sleeping.
	Now func() time.Time
}

// StoreOptions returns the storage.StoreOptions of o, for factories.
func (o Options) StoreOptions() storage.StoreOptions {
	return storage.StoreOptions{Retention: o.Retention, MaxChanges: o.MaxChanges, Now: o.Now}
}

// Factory returns a fresh, empty backend configured with opts; it
// registers its own cleanup with t.
type Factory func(t testing.TB, opts Options) storage.Backend

// UserRecord returns a record holding a user with the given id and email.
func UserRecord(id, email string) *databrokerv1.Record {
	data, err := anypb.New(&userv1.User{Id: id, Email: email, Name: "user " + id})
	if err != nil {
		panic(err)
	}
	return &databrokerv1.Record{Type: databroker.UserType, Id: id, Data: data}
}

// DeleteRecord returns a delete of typ/id.
func DeleteRecord(typ, id string) *databrokerv1.Record {
	return &databrokerv1.Record{Type: typ, Id: id, DeletedAt: timestamppb.Now()}
}

// Run runs the conformance suite against backends made by newBackend.
// Time-dependent cases (TTL, lease expiry, change-log retention) run on a
// fake clock that the suite moves: no case sleeps.
func Run(t *testing.T, newBackend Factory) {
	t.Run("PutGetDelete", func(t *testing.T) { t.Parallel(); testPutGetDelete(t, newBackend(t, Options{})) })
	t.Run("ConcurrentVersions", func(t *testing.T) { t.Parallel(); testConcurrentVersions(t, newBackend(t, Options{})) })
	t.Run("SyncExactlyOnceInOrder", func(t *testing.T) { t.Parallel(); testSyncExactlyOnce(t, newBackend(t, Options{})) })
	t.Run("SyncDeletes", func(t *testing.T) { t.Parallel(); testSyncDeletes(t, newBackend(t, Options{})) })
	t.Run("Aborted", func(t *testing.T) { t.Parallel(); testAborted(t, newBackend(t, Options{MaxChanges: 10})) })
	t.Run("PruneKeepsUpToDateStream", func(t *testing.T) {
		t.Parallel()
		clock := testutil.NewClock(time.Now())
		testPruneKeepsStream(t, newBackend(t, Options{Retention: 300 * time.Millisecond, Now: clock.Now}), clock)
	})
	t.Run("TTL", func(t *testing.T) {
		t.Parallel()
		clock := testutil.NewClock(time.Now())
		testTTL(t, newBackend(t, Options{Now: clock.Now}), clock)
	})
	t.Run("Capacity", func(t *testing.T) { t.Parallel(); testCapacity(t, newBackend(t, Options{})) })
	t.Run("Leases", func(t *testing.T) {
		t.Parallel()
		clock := testutil.NewClock(time.Now())
		testLeases(t, newBackend(t, Options{Now: clock.Now}), clock)
	})
	t.Run("Query", func(t *testing.T) { t.Parallel(); testQuery(t, newBackend(t, Options{})) })
	t.Run("Patch", func(t *testing.T) { t.Parallel(); testPatch(t, newBackend(t, Options{})) })
	t.Run("LatestAndTypes", func(t *testing.T) { t.Parallel(); testLatest(t, newBackend(t, Options{})) })
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func put(t testing.TB, b storage.Backend, recs ...*databrokerv1.Record) []*databrokerv1.Record {
	t.Helper()
	_, out, err := b.Put(ctxT(t), recs)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return out
}

// Follow calls fn with every change after after, in order, until fn
// returns false or ctx ends; it waits on Changed between pages like the
// Sync RPC does.
func Follow(ctx context.Context, b storage.Backend, serverVersion uint64, typ string, after uint64, fn func(*databrokerv1.Record) bool) error {
	return follow(ctx, b, serverVersion, typ, after, fn, func() {})
}

// follow is Follow calling waiting each time it is about to wait on
// Changed, so that a test can write exactly when the follower waits.
func follow(ctx context.Context, b storage.Backend, serverVersion uint64, typ string, after uint64, fn func(*databrokerv1.Record) bool, waiting func()) error {
	for {
		ch := b.Changed()
		batch, err := b.Changes(ctx, serverVersion, typ, after, 100)
		if err != nil {
			return err
		}
		for _, r := range batch.Records {
			if !fn(r) {
				return nil
			}
		}
		after = batch.Through
		if batch.More {
			continue
		}
		waiting()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// collect gathers n changes after after.
func collect(t testing.TB, b storage.Backend, typ string, after uint64, n int) []*databrokerv1.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sv := must[uint64](t)(b.ServerVersion(ctx))
	var got []*databrokerv1.Record
	err := Follow(ctx, b, sv, typ, after, func(r *databrokerv1.Record) bool {
		got = append(got, r)
		return len(got) < n
	})
	if err != nil {
		t.Fatalf("after %d of %d changes: %v", len(got), n, err)
	}
	return got
}

func testPutGetDelete(t *testing.T, b storage.Backend) {
	ctx := ctxT(t)
	if _, err := b.Get(ctx, databroker.UserType, "u1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get missing: %v, want ErrNotFound", err)
	}
	before := time.Now().Add(-time.Second)
	out := put(t, b, UserRecord("u1", "u1@example.com"))
	if len(out) != 1 || out[0].GetVersion() == 0 || out[0].GetModifiedAt().AsTime().Before(before) {
		t.Fatalf("Put returned %v", out)
	}
	got := must[*databrokerv1.Record](t)(b.Get(ctx, databroker.UserType, "u1"))
	if got.GetVersion() != out[0].GetVersion() || !proto.Equal(got.GetData(), out[0].GetData()) {
		t.Fatalf("Get = %v, want %v", got, out[0])
	}
	var u userv1.User
	if err := got.GetData().UnmarshalTo(&u); err != nil || u.GetEmail() != "u1@example.com" {
		t.Fatalf("data = %v (%v)", &u, err)
	}
	del := put(t, b, DeleteRecord(databroker.UserType, "u1"))
	if del[0].GetDeletedAt() == nil || del[0].GetVersion() <= out[0].GetVersion() {
		t.Fatalf("delete returned %v", del[0])
	}
	if _, err := b.Get(ctx, databroker.UserType, "u1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get deleted: %v, want ErrNotFound", err)
	}
	if _, _, err := b.Put(ctx, []*databrokerv1.Record{{Type: databroker.UserType}}); !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("Put without id: %v, want ErrInvalid", err)
	}
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testConcurrentVersions(t *testing.T, b storage.Backend) {
	const writers, perWriter = 8, 40
	v0 := must[storage.Versions](t)(b.Versions(ctxT(t))).Latest
	var wg sync.WaitGroup
	versions := make([][]uint64, writers)
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				recs := []*databrokerv1.Record{UserRecord(fmt.Sprintf("w%d-%d", w, i), "")}
				if i%4 == 0 { // some batches
					recs = append(recs, UserRecord(fmt.Sprintf("w%d-%d-b", w, i), ""))
				}
				_, out, err := b.Put(context.Background(), recs)
				if err != nil {
					errs <- err
					return
				}
				for _, r := range out {
					versions[w] = append(versions[w], r.GetVersion())
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	total := 0
	for w, vs := range versions {
		for i, v := range vs {
			if v <= v0 || seen[v] {
				t.Fatalf("writer %d: version %d repeated or not above %d", w, v, v0)
			}
			if i > 0 && v <= vs[i-1] {
				t.Fatalf("writer %d: version %d after %d", w, v, vs[i-1])
			}
			seen[v] = true
			total++
		}
	}
	got := collect(t, b, "", v0, total)
	for i, r := range got {
		if !seen[r.GetVersion()] || (i > 0 && r.GetVersion() <= got[i-1].GetVersion()) {
			t.Fatalf("change %d has version %d", i, r.GetVersion())
		}
	}
	if l := must[storage.Versions](t)(b.Versions(ctxT(t))).Latest; l != got[len(got)-1].GetVersion() {
		t.Fatalf("latest %d, last change %d", l, got[len(got)-1].GetVersion())
	}
}

func testSyncExactlyOnce(t *testing.T, b storage.Backend) {
	ctx := ctxT(t)
	put(t, b, UserRecord("before", ""))
	vs := must[storage.Versions](t)(b.Versions(ctx))
	const writers, perWriter = 4, 50
	type result struct {
		recs []*databrokerv1.Record
		err  error
	}
	// Two followers: one on the user type, one on every type.
	follow := func(typ string, n int) chan result {
		ch := make(chan result, 1)
		go func() {
			var got []*databrokerv1.Record
			err := Follow(ctx, b, vs.Server, typ, vs.Latest, func(r *databrokerv1.Record) bool {
				got = append(got, r)
				return len(got) < n
			})
			ch <- result{got, err}
		}()
		return ch
	}
	users := follow(databroker.UserType, writers*perWriter)
	all := follow("", writers*perWriter*2)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				other := &databrokerv1.Record{Type: "other", Id: fmt.Sprint(w, i), Data: UserRecord("x", "").GetData()}
				if _, _, err := b.Put(ctx, []*databrokerv1.Record{UserRecord(fmt.Sprintf("%d-%d", w, i), ""), other}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for name, ch := range map[string]chan result{"user": users, "all": all} {
		res := <-ch
		if res.err != nil {
			t.Fatalf("%s follower: %v", name, res.err)
		}
		ids := map[string]bool{}
		for i, r := range res.recs {
			if i > 0 && r.GetVersion() <= res.recs[i-1].GetVersion() {
				t.Fatalf("%s follower: version %d after %d", name, r.GetVersion(), res.recs[i-1].GetVersion())
			}
			if name == "user" && r.GetType() != databroker.UserType {
				t.Fatalf("user follower got type %q", r.GetType())
			}
			key := r.GetType() + "/" + r.GetId()
			if ids[key] {
				t.Fatalf("%s follower: %s delivered twice", name, key)
			}
			ids[key] = true
		}
	}
	// Nothing more is pending for the user type.
	batch := must[*storage.ChangeBatch](t)(b.Changes(ctx, vs.Server, databroker.UserType, must[storage.Versions](t)(b.Versions(ctx)).Latest, 10))
	if len(batch.Records) != 0 || batch.More {
		t.Fatalf("unexpected extra changes: %v", batch.Records)
	}
}

func testSyncDeletes(t *testing.T, b storage.Backend) {
	ctx := ctxT(t)
	out := put(t, b, UserRecord("a", ""), UserRecord("b", ""))
	sv := must[uint64](t)(b.ServerVersion(ctx))
	done := make(chan []*databrokerv1.Record, 1)
	waiting := make(chan struct{})
	var once sync.Once
	go func() {
		var got []*databrokerv1.Record
		_ = follow(ctx, b, sv, databroker.UserType, out[1].GetVersion(), func(r *databrokerv1.Record) bool {
			got = append(got, r)
			return len(got) < 2
		}, func() { once.Do(func() { close(waiting) }) })
		done <- got
	}()
	// Write while the follower waits, so the wake-up path is exercised.
	select {
	case <-waiting:
	case got := <-done: // it ends by itself only when ctx (bounded) does
		t.Fatalf("the follower ended before it waited, with %v", got)
	}
	put(t, b, DeleteRecord(databroker.UserType, "a"))
	put(t, b, UserRecord("c", ""))
	got := <-done
	if len(got) != 2 || got[0].GetId() != "a" || got[0].GetDeletedAt() == nil || got[1].GetId() != "c" || got[1].GetDeletedAt() != nil {
		t.Fatalf("changes = %v", got)
	}
	recs, _ := must2(t)(b.Latest(ctx, databroker.UserType))
	if len(recs) != 2 {
		t.Fatalf("Latest = %v, want b and c", recs)
	}
}

func must2(t testing.TB) func([]*databrokerv1.Record, storage.Versions, error) ([]*databrokerv1.Record, storage.Versions) {
	return func(r []*databrokerv1.Record, v storage.Versions, err error) ([]*databrokerv1.Record, storage.Versions) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r, v
	}
}

func testAborted(t *testing.T, b storage.Backend) {
	ctx := ctxT(t)
	sv := must[uint64](t)(b.ServerVersion(ctx))
	if _, err := b.Changes(ctx, sv+1, "", 0, 10); !errors.Is(err, storage.ErrServerVersionMismatch) {
		t.Fatalf("stale server version: %v, want ErrServerVersionMismatch", err)
	}
	for i := range 25 {
		put(t, b, UserRecord(fmt.Sprint(i), ""))
	}
	if err := b.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	vs := must[storage.Versions](t)(b.Versions(ctx))
	if vs.Earliest < 15 || vs.Earliest >= vs.Latest {
		t.Fatalf("versions after pruning to 10 changes: %+v", vs)
	}
	if _, err := b.Changes(ctx, sv, "", 0, 10); !errors.Is(err, storage.ErrVersionTooOld) {
		t.Fatalf("too old: %v, want ErrVersionTooOld", err)
	}
	if _, err := b.Changes(ctx, sv, "", vs.Earliest-1, 10); !errors.Is(err, storage.ErrVersionTooOld) {
		t.Fatalf("one before earliest: %v, want ErrVersionTooOld", err)
	}
	got := collect(t, b, "", vs.Earliest, int(vs.Latest-vs.Earliest))
	if got[0].GetVersion() != vs.Earliest+1 {
		t.Fatalf("first change %d, want %d", got[0].GetVersion(), vs.Earliest+1)
	}
}

func testPruneKeepsStream(t *testing.T, b storage.Backend, clock *testutil.Clock) {
	ctx := ctxT(t)
	sv := must[uint64](t)(b.ServerVersion(ctx))
	first := put(t, b, UserRecord("a", ""))[0].GetVersion()
	got := make(chan []*databrokerv1.Record, 1)
	sawB := make(chan struct{})
	go func() {
		var recs []*databrokerv1.Record
		err := Follow(ctx, b, sv, "", first, func(r *databrokerv1.Record) bool {
			recs = append(recs, r)
			if len(recs) == 1 {
				close(sawB)
			}
			return len(recs) < 2
		})
		if err != nil {
			t.Errorf("follower: %v", err)
		}
		got <- recs
	}()
	put(t, b, UserRecord("b", ""))
	// The stream is up to date (it has b) when the log is pruned past b.
	select {
	case <-sawB:
	case <-ctx.Done():
		t.Fatal("the follower did not get b")
	}
	clock.Advance(400 * time.Millisecond) // past the 300ms retention
	if err := b.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	vs := must[storage.Versions](t)(b.Versions(ctx))
	if vs.Earliest < first+1 {
		t.Fatalf("change log not pruned: %+v", vs)
	}
	put(t, b, UserRecord("c", ""))
	recs := <-got
	if len(recs) != 2 || recs[0].GetId() != "b" || recs[1].GetId() != "c" {
		t.Fatalf("stream got %v", recs)
	}
	// The records themselves outlive the change log.
	for _, id := range []string{"a", "b", "c"} {
		must[*databrokerv1.Record](t)(b.Get(ctx, databroker.UserType, id))
	}
}

func testTTL(t *testing.T, b storage.Backend, clock *testutil.Clock) {
	ctx := ctxT(t)
	const typ = databroker.SessionType
	ttl := 600 * time.Millisecond
	if err := b.SetOptions(ctx, typ, &databrokerv1.Options{Ttl: durationpb.New(ttl)}); err != nil {
		t.Fatal(err)
	}
	if o := must[*databrokerv1.Options](t)(b.GetOptions(ctx, typ)); o.GetTtl().AsDuration() != ttl {
		t.Fatalf("GetOptions = %v", o)
	}
	rec := func(id string) *databrokerv1.Record {
		r := UserRecord(id, "")
		r.Type = typ
		return r
	}
	out := put(t, b, rec("old1"), rec("old2"))
	if err := b.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	must[*databrokerv1.Record](t)(b.Get(ctx, typ, "old1"))
	clock.Advance(ttl - time.Microsecond)
	if err := b.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	must[*databrokerv1.Record](t)(b.Get(ctx, typ, "old2")) // not yet: expiry is at ttl exactly
	clock.Advance(time.Microsecond)
	put(t, b, rec("fresh"))
	if err := b.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"old1", "old2"} {
		if _, err := b.Get(ctx, typ, id); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("expired %s: %v, want ErrNotFound", id, err)
		}
	}
	must[*databrokerv1.Record](t)(b.Get(ctx, typ, "fresh"))
	changes := collect(t, b, typ, out[1].GetVersion(), 3)
	deleted := map[string]bool{}
	for _, c := range changes {
		if c.GetDeletedAt() != nil {
			deleted[c.GetId()] = true
		}
	}
	if !deleted["old1"] || !deleted["old2"] || deleted["fresh"] {
		t.Fatalf("Sync saw deletes %v", deleted)
	}
}

func testCapacity(t *testing.T, b storage.Backend) {
	ctx := ctxT(t)
	const typ = "capped"
	if err := b.SetOptions(ctx, typ, &databrokerv1.Options{Capacity: 3}); err != nil {
		t.Fatal(err)
	}
	rec := func(id string) *databrokerv1.Record {
		r := UserRecord(id, "")
		r.Type = typ
		return r
	}
	start := must[storage.Versions](t)(b.Versions(ctx)).Latest
	for _, id := range []string{"a", "b", "c", "d"} {
		put(t, b, rec(id))
	}
	put(t, b, rec("b")) // touching b makes c the oldest
	put(t, b, rec("e"))
	live, _ := must2(t)(b.Latest(ctx, typ))
	ids := map[string]bool{}
	for _, r := range live {
		ids[r.GetId()] = true
	}
	if len(ids) != 3 || !ids["b"] || !ids["d"] || !ids["e"] {
		t.Fatalf("live after capacity 3: %v", ids)
	}
	var deletes []string
	for _, c := range collect(t, b, typ, start, 8) {
		if c.GetDeletedAt() != nil {
			deletes = append(deletes, c.GetId())
		}
	}
	if fmt.Sprint(deletes) != "[a c]" {
		t.Fatalf("deletes %v, want [a c]", deletes)
	}
	if err := b.SetOptions(ctx, typ, &databrokerv1.Options{Capacity: 1}); err != nil {
		t.Fatal(err)
	}
	if err := b.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	live, _ = must2(t)(b.Latest(ctx, typ))
	if len(live) != 1 || live[0].GetId() != "e" {
		t.Fatalf("live after capacity 1: %v", live)
	}
}

func testLeases(t *testing.T, b storage.Backend, clock *testutil.Clock) {
	ctx := ctxT(t)
	long := 10 * time.Second
	if err := b.AcquireLease(ctx, "refresher", "one", long); err != nil {
		t.Fatal(err)
	}
	if err := b.AcquireLease(ctx, "refresher", "two", long); !errors.Is(err, storage.ErrLeaseHeld) {
		t.Fatalf("second holder: %v, want ErrLeaseHeld", err)
	}
	if err := b.AcquireLease(ctx, "other", "two", long); err != nil {
		t.Fatalf("other lease: %v", err)
	}
	if err := b.AcquireLease(ctx, "refresher", "one", long); err != nil {
		t.Fatalf("re-acquire by holder: %v", err)
	}
	if err := b.RenewLease(ctx, "refresher", "one", long); err != nil {
		t.Fatal(err)
	}
	if err := b.RenewLease(ctx, "refresher", "two", long); !errors.Is(err, storage.ErrLeaseHeld) {
		t.Fatalf("renew by non-holder: %v, want ErrLeaseHeld", err)
	}
	if err := b.ReleaseLease(ctx, "refresher", "two"); err != nil {
		t.Fatal(err)
	}
	if err := b.AcquireLease(ctx, "refresher", "two", long); !errors.Is(err, storage.ErrLeaseHeld) {
		t.Fatalf("release by non-holder freed the lease: %v", err)
	}
	if err := b.ReleaseLease(ctx, "refresher", "one"); err != nil {
		t.Fatal(err)
	}
	if err := b.RenewLease(ctx, "refresher", "one", long); !errors.Is(err, storage.ErrLeaseNotHeld) {
		t.Fatalf("renew released: %v, want ErrLeaseNotHeld", err)
	}
	short := 400 * time.Millisecond
	if err := b.AcquireLease(ctx, "refresher", "two", short); err != nil {
		t.Fatal(err)
	}
	if err := b.AcquireLease(ctx, "refresher", "one", long); !errors.Is(err, storage.ErrLeaseHeld) {
		t.Fatalf("before expiry: %v, want ErrLeaseHeld", err)
	}
	clock.Advance(short - time.Microsecond)
	if err := b.AcquireLease(ctx, "refresher", "one", long); !errors.Is(err, storage.ErrLeaseHeld) {
		t.Fatalf("a microsecond before expiry: %v, want ErrLeaseHeld", err)
	}
	clock.Advance(time.Microsecond)
	if err := b.RenewLease(ctx, "refresher", "two", long); !errors.Is(err, storage.ErrLeaseNotHeld) {
		t.Fatalf("renew expired: %v, want ErrLeaseNotHeld", err)
	}
	if err := b.AcquireLease(ctx, "refresher", "one", long); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}

func testQuery(t *testing.T, b storage.Backend) {
	ctx := ctxT(t)
	var recs []*databrokerv1.Record
	for i := range 25 {
		domain := "example.com"
		if i%5 == 0 {
			domain = "corp.test"
		}
		recs = append(recs, UserRecord(fmt.Sprintf("u%02d", i), fmt.Sprintf("user%02d@%s", i, domain)))
	}
	put(t, b, recs...)
	put(t, b, DeleteRecord(databroker.UserType, "u24"))
	q := func(q storage.Query) *storage.QueryResult {
		t.Helper()
		q.Type = databroker.UserType
		return must[*storage.QueryResult](t)(b.Query(ctx, q))
	}
	ids := func(r *storage.QueryResult) string {
		var s []string
		for _, rec := range r.Records {
			s = append(s, rec.GetId())
		}
		return fmt.Sprint(s)
	}
	r := q(storage.Query{Offset: 10, Limit: 5})
	if r.TotalCount != 24 || ids(r) != "[u10 u11 u12 u13 u14]" || r.ServerVersion == 0 || r.RecordVersion == 0 {
		t.Fatalf("page = %s total %d", ids(r), r.TotalCount)
	}
	if r := q(storage.Query{Offset: 20, Limit: 10}); r.TotalCount != 24 || ids(r) != "[u20 u21 u22 u23]" {
		t.Fatalf("last page = %s total %d", ids(r), r.TotalCount)
	}
	if r := q(storage.Query{Filter: map[string][]string{"email": {"user07@example.com"}}}); ids(r) != "[u07]" || r.TotalCount != 1 {
		t.Fatalf("email filter = %s", ids(r))
	}
	if r := q(storage.Query{Filter: map[string][]string{"id": {"u03", "u05", "nope"}}}); ids(r) != "[u03 u05]" {
		t.Fatalf("id filter = %s", ids(r))
	}
	if r := q(storage.Query{Text: "CORP.test", Limit: 2}); ids(r) != "[u00 u05]" || r.TotalCount != 5 {
		t.Fatalf("text query = %s total %d", ids(r), r.TotalCount)
	}
	if r := q(storage.Query{Text: "u1", Filter: map[string][]string{"id": {"u10", "u20"}}}); ids(r) != "[u10]" {
		t.Fatalf("text+filter = %s", ids(r))
	}
	if _, err := b.Query(ctx, storage.Query{Type: databroker.UserType, Filter: map[string][]string{"name": {"x"}}}); !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("unindexed filter: %v, want ErrInvalid", err)
	}
	if r := must[*storage.QueryResult](t)(b.Query(ctx, storage.Query{Type: "empty"})); r.TotalCount != 0 {
		t.Fatalf("empty type: %v", r)
	}
}

func testPatch(t *testing.T, b storage.Backend) {
	ctx := ctxT(t)
	orig := put(t, b, UserRecord("p", "p@example.com"))[0]
	patch := UserRecord("p", "ignored@example.com")
	patch.Data = must[*anypb.Any](t)(anypb.New(&userv1.User{Name: "New Name"}))
	_, out, err := b.Patch(ctx, []*databrokerv1.Record{patch, UserRecord("missing", "")}, []string{"name"})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].GetVersion() <= orig.GetVersion() {
		t.Fatalf("Patch returned %v", out)
	}
	var u userv1.User
	if err := must[*databrokerv1.Record](t)(b.Get(ctx, databroker.UserType, "p")).GetData().UnmarshalTo(&u); err != nil {
		t.Fatal(err)
	}
	if u.GetName() != "New Name" || u.GetEmail() != "p@example.com" || u.GetId() != "p" {
		t.Fatalf("patched user = %v", &u)
	}
	if _, err := b.Get(ctx, databroker.UserType, "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Patch created a missing record: %v", err)
	}
	if _, _, err := b.Patch(ctx, []*databrokerv1.Record{patch}, []string{"nope"}); !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("bad mask: %v, want ErrInvalid", err)
	}
}

func testLatest(t *testing.T, b storage.Backend) {
	ctx := ctxT(t)
	put(t, b, UserRecord("a", ""), UserRecord("b", ""), &databrokerv1.Record{Type: "t2", Id: "x", Data: UserRecord("x", "").GetData()})
	put(t, b, DeleteRecord(databroker.UserType, "a"))
	recs, vs := must2(t)(b.Latest(ctx, databroker.UserType))
	if len(recs) != 1 || recs[0].GetId() != "b" {
		t.Fatalf("Latest(user) = %v", recs)
	}
	sv := must[uint64](t)(b.ServerVersion(ctx))
	if vs.Server != sv || vs.Latest != 4 {
		t.Fatalf("versions = %+v, want server %d latest 4", vs, sv)
	}
	all, _ := must2(t)(b.Latest(ctx, ""))
	if len(all) != 2 {
		t.Fatalf("Latest(all) = %v", all)
	}
	if types := must[[]string](t)(b.ListTypes(ctx)); fmt.Sprint(types) != "[t2 "+databroker.UserType+"]" {
		t.Fatalf("ListTypes = %v", types)
	}
}
