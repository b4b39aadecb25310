package databroker_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/gatehouse/gatehouse/pkg/databroker"
	"github.com/gatehouse/gatehouse/pkg/testutil"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	sessionv1 "github.com/gatehouse/gatehouse/proto/gatehouse/session/v1"
	userv1 "github.com/gatehouse/gatehouse/proto/gatehouse/user/v1"
	dbservice "github.com/gatehouse/gatehouse/services/databroker"
)

// server is a databroker on a fixed loopback address that a test can
// replace by a fresh, empty one.
type server struct {
	t    testing.TB
	addr string
	srv  *grpc.Server
	svc  *dbservice.Service
}

func startServer(t testing.TB, addr string) *server {
	t.Helper()
	s := &server{t: t, addr: addr}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *server) start() {
	svc, err := dbservice.New(context.Background(), dbservice.Options{})
	if err != nil {
		s.t.Fatal(err)
	}
	var lis net.Listener
	for i := 0; ; i++ { // the old listener's port may take a moment to free
		if lis, err = net.Listen("tcp", s.addr); err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.srv, s.svc = grpc.NewServer(), svc
	svc.Register(s.srv)
	go func() { _ = s.srv.Serve(lis) }()
}

func (s *server) stop() {
	if s.srv != nil {
		s.srv.Stop()
		s.svc.Close()
		s.srv = nil
	}
}

func dial(t testing.TB, addr string) databrokerv1.DataBrokerServiceClient {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return databrokerv1.NewDataBrokerServiceClient(conn)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRecordTypes(t *testing.T) {
	for _, tc := range []struct{ name, got, want string }{
		{"session", databroker.SessionType, databroker.TypeURLOf[*sessionv1.Session]()},
		{"user", databroker.UserType, databroker.TypeURLOf[*userv1.User]()},
	} {
		if tc.got != tc.want {
			t.Errorf("%s record type %q, want %q (the proto's Any type URL)", tc.name, tc.got, tc.want)
		}
	}
}

func TestTypedHelpers(t *testing.T) {
	addr := testutil.FreeAddr(t)
	startServer(t, addr)
	c := dial(t, addr)
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
	addr := testutil.FreeAddr(t)
	srv := startServer(t, addr)
	c := dial(t, addr)
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
	eventually(t, "changes", func() bool { _, ok := cache.Get("2"); return !ok })
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
	srv.stop()
	srv.start()
	if _, err := databroker.Put(ctx, c, &userv1.User{Id: "new"}, "new"); err != nil {
		// The client may still be reconnecting.
		eventually(t, "put on the new server", func() bool {
			_, err := databroker.Put(ctx, c, &userv1.User{Id: "new"}, "new")
			return err == nil
		})
	}
	eventually(t, "resync with the new server", func() bool {
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
	addr := testutil.FreeAddr(t)
	startServer(t, addr)
	c := dial(t, addr)
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
	eventually(t, "20 records", func() bool { return cache.Len() == 20 })
	close(stop)
	wg.Wait()
	_, rv := cache.Versions()
	if rv != 20 {
		t.Fatalf("record version %d, want 20", rv)
	}
}
