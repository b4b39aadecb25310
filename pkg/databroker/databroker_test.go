package databroker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gatehouse/gatehouse/pkg/databroker"
	"github.com/gatehouse/gatehouse/pkg/testutil"
	userv1 "github.com/gatehouse/gatehouse/proto/gatehouse/user/v1"
	"github.com/gatehouse/gatehouse/services/databroker/databrokertest"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestTypedHelpers(t *testing.T) {
	c := databrokertest.Start(t).Client()
	ctx := ctxT(t)
	if got := databroker.TypeURLOf[*userv1.User](); got != "type.googleapis.com/gatehouse.user.v1.User" {
		t.Fatalf("TypeURLOf = %q", got)
	}
	rec, err := databroker.Put(ctx, c, &userv1.User{Id: "u1", Email: "a@example.com"}, "u1")
	if err != nil || rec.GetVersion() == 0 {
		t.Fatalf("Put = %v, %v", rec, err)
	}
	u, err := databroker.Get[*userv1.User](ctx, c, "u1")
	if err != nil || u.GetEmail() != "a@example.com" {
		t.Fatalf("Get = %v, %v", u, err)
	}
	if err := databroker.Delete(ctx, c, databroker.TypeURLOf[*userv1.User](), "u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := databroker.Get[*userv1.User](ctx, c, "u1"); status.Code(err) != codes.NotFound {
		t.Fatalf("Get deleted: %v, want NotFound", err)
	}
}

func TestCache(t *testing.T) {
	srv := databrokertest.Start(t)
	c := srv.Client()
	ctx := ctxT(t)
	for i := range 3 {
		if _, err := databroker.Put(ctx, c, &userv1.User{Id: fmt.Sprint(i), Name: "before"}, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var changes []databroker.Change[*userv1.User]
	resets := 0
	cache := databroker.NewCache(c, databroker.CacheOptions[*userv1.User]{
		OnChange: func(ch databroker.Change[*userv1.User]) { mu.Lock(); changes = append(changes, ch); mu.Unlock() },
		OnReset:  func() { mu.Lock(); resets++; mu.Unlock() },
		Syncer:   databroker.SyncerOptions{MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond},
	})
	if cache.HasSynced() {
		t.Fatal("synced before Run")
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cache.Run(runCtx) }()
	if err := cache.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if cache.Len() != 3 || !cache.HasSynced() {
		t.Fatalf("after sync: %d records", cache.Len())
	}

	// Changes arrive, with OnChange.
	if _, err := databroker.Put(ctx, c, &userv1.User{Id: "1", Name: "after"}, "1"); err != nil {
		t.Fatal(err)
	}
	if err := databroker.Delete(ctx, c, databroker.TypeURLOf[*userv1.User](), "2"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "changes", func() bool { _, ok := cache.Get("2"); return !ok })
	if u, _ := cache.Get("1"); u.GetName() != "after" {
		t.Fatalf("cache has %v", u)
	}
	mu.Lock()
	if len(changes) != 2 || changes[0].Old.GetName() != "before" || changes[0].New.GetName() != "after" || !changes[1].Deleted || changes[1].ID != "2" {
		t.Fatalf("OnChange got %v", changes)
	}
	mu.Unlock()

	// The databroker is replaced by an empty one (new server version): the
	// cache's stream breaks, Sync is ABORTED, and the cache reloads.
	srv.Restart()
	// The client may still be reconnecting.
	testutil.WaitFor(t, 5*time.Second, "a put on the new server", func() error {
		_, err := databroker.Put(ctx, c, &userv1.User{Id: "new"}, "new")
		return err
	})
	testutil.WaitFor(t, 5*time.Second, "resync with the new server", func() bool {
		_, ok := cache.Get("new")
		return ok && cache.Len() == 1
	})
	mu.Lock()
	if resets < 2 {
		t.Errorf("OnReset called %d times, want 2", resets)
	}
	mu.Unlock()
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Readers run concurrently with the sync goroutine (run with -race).
func TestCacheConcurrentReads(t *testing.T) {
	c := databrokertest.Start(t).Client()
	ctx := ctxT(t)
	cache := databroker.NewCache(c, databroker.CacheOptions[*userv1.User]{})
	go func() { _ = cache.Run(ctx) }()
	if err := cache.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				cache.Get("u5")
				cache.Range(func(string, *userv1.User) bool { return true })
			}
		}()
	}
	for i := range 20 {
		if _, err := databroker.Put(ctx, c, &userv1.User{Id: fmt.Sprint("u", i)}, fmt.Sprint("u", i)); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 5*time.Second, "20 records", func() bool { return cache.Len() == 20 })
	close(stop)
	wg.Wait()
	_, rv := cache.Versions()
	if rv != 20 {
		t.Fatalf("record version %d, want 20", rv)
	}
}
