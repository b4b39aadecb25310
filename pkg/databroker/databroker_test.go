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
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	sessionv1 "github.com/gatehouse/gatehouse/proto/gatehouse/session/v1"
	userv1 "github.com/gatehouse/gatehouse/proto/gatehouse/user/v1"
	"github.com/gatehouse/gatehouse/services/databroker/databrokertest"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
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

// userMap is a databroker.Handler keeping the user records in a map.
type userMap struct {
	mu      sync.Mutex
	items   map[string]*userv1.User
	resets  int
	updates []*databrokerv1.Record
}

func (m *userMap) Reset(records []*databrokerv1.Record) {
	items := map[string]*userv1.User{}
	for _, r := range records {
		if u, err := databroker.Unmarshal[*userv1.User](r); err == nil {
			items[r.GetId()] = u
		}
	}
	m.mu.Lock()
	m.items, m.resets = items, m.resets+1
	m.mu.Unlock()
}

func (m *userMap) Update(r *databrokerv1.Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.updates = append(m.updates, r)
	if r.GetDeletedAt() != nil {
		delete(m.items, r.GetId())
		return
	}
	if u, err := databroker.Unmarshal[*userv1.User](r); err == nil {
		m.items[r.GetId()] = u
	}
}

func (m *userMap) get(id string) (*userv1.User, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.items[id], len(m.items)
}

func TestSyncer(t *testing.T) {
	srv := databrokertest.Start(t)
	c := srv.Client()
	ctx := ctxT(t)
	for i := range 3 {
		if _, err := databroker.Put(ctx, c, &userv1.User{Id: fmt.Sprint(i), Name: "before"}, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	users := &userMap{}
	syncer := databroker.NewSyncer(c, databroker.UserType, users,
		databroker.SyncerOptions{MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if syncer.HasSynced() {
		t.Fatal("synced before Run")
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- syncer.Run(runCtx) }()
	if err := syncer.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if _, n := users.get(""); n != 3 || !syncer.HasSynced() {
		t.Fatalf("after sync: %d records", n)
	}

	// Changes arrive, in order.
	if _, err := databroker.Put(ctx, c, &userv1.User{Id: "1", Name: "after"}, "1"); err != nil {
		t.Fatal(err)
	}
	if err := databroker.Delete(ctx, c, databroker.UserType, "2"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "changes", func() bool { u, _ := users.get("2"); return u == nil })
	if u, _ := users.get("1"); u.GetName() != "after" {
		t.Fatalf("handler has %v", u)
	}
	users.mu.Lock()
	if len(users.updates) != 2 || users.updates[0].GetId() != "1" || users.updates[1].GetDeletedAt() == nil || users.updates[1].GetId() != "2" {
		t.Fatalf("Update got %v", users.updates)
	}
	users.mu.Unlock()
	_, rv := syncer.Versions()
	if rv != 5 {
		t.Errorf("record version %d, want 5", rv)
	}

	// The databroker is replaced by an empty one (new server version): the
	// stream breaks, Sync is ABORTED, and the syncer loads everything again.
	srv.Restart()
	// The client may still be reconnecting.
	testutil.WaitFor(t, 5*time.Second, "a put on the new server", func() error {
		_, err := databroker.Put(ctx, c, &userv1.User{Id: "new"}, "new")
		return err
	})
	testutil.WaitFor(t, 5*time.Second, "resync with the new server", func() bool {
		u, n := users.get("new")
		return u != nil && n == 1
	})
	users.mu.Lock()
	if users.resets < 2 {
		t.Errorf("Reset called %d times, want 2", users.resets)
	}
	users.mu.Unlock()
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestSyncerChangesOnly: a ChangesOnly syncer reads no record, starts at
// the store's latest version (which Versions reports by the time Reset
// runs), delivers the changes after it, says when its stream ends, and
// starts over at the latest version when it reconnects.
func TestSyncerChangesOnly(t *testing.T) {
	srv := databrokertest.Start(t)
	c := srv.Client()
	ctx := ctxT(t)
	for i := range 3 {
		if _, err := databroker.Put(ctx, c, &userv1.User{Id: fmt.Sprint(i)}, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	users := &userMap{}
	var syncer *databroker.Syncer
	var mu sync.Mutex
	var atReset []uint64 // record versions Versions reported during Reset
	disconnects := 0
	h := &versionsAtReset{userMap: users, onReset: func() {
		_, rv := syncer.Versions()
		mu.Lock()
		atReset = append(atReset, rv)
		mu.Unlock()
	}}
	syncer = databroker.NewSyncer(c, databroker.UserType, h, databroker.SyncerOptions{
		ChangesOnly: true, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		Disconnected: func() { mu.Lock(); disconnects++; mu.Unlock() },
	})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- syncer.Run(runCtx) }()
	if err := syncer.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if _, n := users.get(""); n != 0 {
		t.Fatalf("%d records read at start, want none", n)
	}
	mu.Lock()
	if len(atReset) != 1 || atReset[0] != 3 {
		t.Fatalf("versions during Reset %v, want [3] (the latest)", atReset)
	}
	mu.Unlock()
	if _, err := databroker.Put(ctx, c, &userv1.User{Id: "1", Name: "after"}, "1"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "the change", func() bool { u, _ := users.get("1"); return u.GetName() == "after" })

	srv.Stop()
	testutil.WaitFor(t, 5*time.Second, "Disconnected", func() bool { mu.Lock(); defer mu.Unlock(); return disconnects > 0 })
	srv.Restart()
	testutil.WaitFor(t, 10*time.Second, "a Reset after the reconnect", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(atReset) >= 2
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// versionsAtReset is a userMap that runs onReset inside Reset.
type versionsAtReset struct {
	*userMap
	onReset func()
}

func (h *versionsAtReset) Reset(records []*databrokerv1.Record) {
	h.onReset()
	h.userMap.Reset(records)
}
