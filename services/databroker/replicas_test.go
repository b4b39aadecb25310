package databroker_test

import (
	"fmt"
	"testing"
	"time"

	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	"github.com/gatehouse/gatehouse/services/databroker"
)

// testReplicasShareChanges starts two databroker replicas on the shared
// storage of opts and checks that they report the same server version and
// that every Put through A reaches a Sync stream on B. The safety poll is
// set to a minute, so only the storage's own notification (Redis pub/sub,
// PostgreSQL NOTIFY) can deliver within recv's bound.
func testReplicasShareChanges(t *testing.T, opts databroker.Options) {
	t.Helper()
	opts.PollInterval = time.Minute
	_, a := newService(t, opts)
	_, b := newService(t, opts)
	ctx := ctxT(t)
	ia, err := a.ServerInfo(ctx, &databrokerv1.ServerInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ib, err := b.ServerInfo(ctx, &databrokerv1.ServerInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if ia.GetServerVersion() == 0 || ia.GetServerVersion() != ib.GetServerVersion() {
		t.Fatalf("server versions %d and %d", ia.GetServerVersion(), ib.GetServerVersion())
	}
	stream, err := b.Sync(ctx, &databrokerv1.SyncRequest{ServerVersion: ib.GetServerVersion(), RecordVersion: ib.GetLatestRecordVersion()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		put, err := a.Put(ctx, &databrokerv1.PutRequest{Records: []*databrokerv1.Record{userRecord(t, fmt.Sprint("r", i), "")}})
		if err != nil {
			t.Fatal(err)
		}
		r := recv(t, stream, 5*time.Second)
		if r.GetId() != fmt.Sprint("r", i) || r.GetVersion() != put.GetRecords()[0].GetVersion() {
			t.Fatalf("replica B got %v", r)
		}
	}
}
