package authorize

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse/gatehouse/pkg/databroker"
	"github.com/gatehouse/gatehouse/pkg/extauthz"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
)

// syncedService returns a service whose store is fed as the Syncer feeds
// it, and apply, which hands a record to the store and then records its
// version, in the Syncer's order. The store has alice's user at version 2.
func syncedService(t *testing.T) (s *Service, apply func(*databrokerv1.Record)) {
	t.Helper()
	s = newTestService(t, testConfig(t, testConfigYAML))
	src := &fakeSource{synced: true, server: 1, record: 1}
	s.store.src = src
	h := syncHandler{s.store}
	apply = func(r *databrokerv1.Record) {
		h.Update(r)
		src.mu.Lock()
		src.record = r.GetVersion()
		src.mu.Unlock()
	}
	apply(record(t, databroker.UserType, alice.id, 2, alice.record()))
	return s, apply
}

// A session the Sync stream applies just after Check's first lookup
// missed it (the browser arriving right after sign-in) is found: the
// store, caught up with the handle's version by then, must not make
// Check call the session unknown without looking again.
func TestCheckSessionAppliedDuringLookup(t *testing.T) {
	s, apply := syncedService(t)
	rec := record(t, databroker.SessionType, "sess-new", 3, alice.session("sess-new", time.Now().Add(time.Hour)))
	s.lookupMissed = func() {
		if s.store.get("sess-new") == nil {
			apply(rec)
		}
	}
	tok := handleFor(t, s, alice.id, "sess-new", 1, 3)
	resp, err := s.Check(context.Background(), newReq("GET", "https://grafana.localhost.pomerium.io/", cookie(tok), jsonClient()))
	if err != nil {
		t.Fatal(err)
	}
	if !extauthz.Allowed(resp) {
		t.Fatalf("status %d, want allowed: the session applied during the lookup was seen as unknown", extauthz.DeniedStatus(resp))
	}
}

// The same race without a hook: each round signs a new session in and
// checks its handle while the stream applies it, in step, so that the
// apply lands at a slightly different point of the Check every round.
// Before the fix about half the runs under -race failed.
func TestCheckRacingTheSyncStream(t *testing.T) {
	s, apply := syncedService(t)
	const rounds = 2000
	recs := make([]*databrokerv1.Record, rounds)
	reqs := make([]*authv3.CheckRequest, rounds)
	for i := range recs {
		sid, v := fmt.Sprintf("sess-%d", i), uint64(3+i)
		recs[i] = record(t, databroker.SessionType, sid, v, alice.session(sid, time.Now().Add(time.Hour)))
		reqs[i] = newReq("GET", "https://grafana.localhost.pomerium.io/", cookie(handleFor(t, s, alice.id, sid, 1, v)), jsonClient())
	}
	start, applied := make(chan int), make(chan struct{})
	go func() {
		for i := range start {
			for n := 0; n < i%64; n++ { // a little later every round
				_ = n
			}
			apply(recs[i])
			applied <- struct{}{}
		}
	}()
	defer close(start)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range recs {
		start <- i
		resp, err := s.Check(ctx, reqs[i])
		<-applied
		if err != nil {
			t.Fatal(err)
		}
		if !extauthz.Allowed(resp) {
			st := extauthz.DeniedStatus(resp)
			if st == http.StatusUnauthorized {
				t.Fatalf("round %d: the session applied (version %d) while Check looked it up was seen as unknown", i, recs[i].GetVersion())
			}
			t.Fatalf("round %d: status %d", i, st)
		}
	}
}
