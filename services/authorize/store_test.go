package authorize

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gatehouse/gatehouse/pkg/databroker"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
)

// fakeSource stands for the Syncer's versions.
type fakeSource struct {
	mu             sync.Mutex
	synced         bool
	server, record uint64
}

func (f *fakeSource) HasSynced() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.synced
}

func (f *fakeSource) Versions() (uint64, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.server, f.record
}

func record(t *testing.T, typ, id string, version uint64, msg proto.Message) *databrokerv1.Record {
	t.Helper()
	r := &databrokerv1.Record{Type: typ, Id: id, Version: version}
	if msg == nil {
		r.DeletedAt = timestamppb.Now()
		return r
	}
	data, err := anypb.New(msg)
	if err != nil {
		t.Fatal(err)
	}
	r.Data = data
	return r
}

func TestStoreSyncHandler(t *testing.T) {
	s := newStore()
	src := &fakeSource{}
	s.src = src
	h := syncHandler{s}
	if s.isSynced() || !s.behind(7, 1) {
		t.Fatal("synced before any snapshot")
	}

	// A snapshot with the session before its user, and a record of
	// another type.
	h.Reset([]*databrokerv1.Record{
		record(t, databroker.SessionType, "s1", 5, alice.session("s1", time.Now().Add(time.Hour))),
		record(t, "type.googleapis.com/other.Thing", "x", 6, alice.record()),
		record(t, databroker.UserType, alice.id, 4, alice.record()),
	})
	src.mu.Lock()
	src.synced, src.server, src.record = true, 7, 6
	src.mu.Unlock()
	if !s.isSynced() {
		t.Fatal("not synced")
	}
	id := s.get("s1")
	if id == nil || id.subject.Email != alice.email || len(id.subject.Groups) != 2 {
		t.Fatalf("identity %+v", id)
	}
	if s.behind(7, 6) || !s.behind(7, 8) || s.behind(8, 100) {
		t.Error("behind is wrong")
	}

	// A user change rebuilds the identity; a session delete removes it.
	u := alice.record()
	u.Name = "Alice B."
	h.Update(record(t, databroker.UserType, alice.id, 8, u))
	if got := s.get("s1"); got == id || got.subject.Name != "Alice B." {
		t.Errorf("identity after user change: %+v", got)
	}
	// The store's own count covers the moment before the Syncer records
	// the version.
	if s.behind(7, 8) {
		t.Error("behind a version the store has applied")
	}
	h.Update(record(t, databroker.SessionType, "s1", 9, nil))
	if s.get("s1") != nil {
		t.Error("deleted session still there")
	}
	// A record that does not decode is no session.
	h.Update(record(t, databroker.SessionType, "s2", 10, alice.session("s2", time.Now().Add(time.Hour))))
	bad := &databrokerv1.Record{Type: databroker.SessionType, Id: "s2", Version: 11, Data: &anypb.Any{TypeUrl: databroker.SessionType, Value: []byte{0xff, 0xff}}}
	h.Update(bad)
	if s.get("s2") != nil {
		t.Error("undecodable session kept")
	}

	// A snapshot from a wiped store (new server version, low versions)
	// starts the count over.
	h.Reset(nil)
	src.mu.Lock()
	src.server, src.record = 9, 2
	src.mu.Unlock()
	if !s.behind(9, 3) {
		t.Error("not behind a new store's version after a reset")
	}
}

func TestStoreWaitWakesOnChange(t *testing.T) {
	s := newStore()
	s.markSynced(1, 1)
	done := make(chan *identity)
	go func() {
		done <- s.waitFor(context.Background(), "s1", 1, 3, 10*time.Second)
	}()
	s.putUser(alice.record(), 2) // wakes the waiter, which waits again
	s.putSession(alice.session("s1", time.Now().Add(time.Hour)), 3)
	select {
	case id := <-done:
		if id == nil {
			t.Fatal("no identity")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter not woken")
	}
}
