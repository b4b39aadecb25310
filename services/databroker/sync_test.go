package databroker_test

import (
	"fmt"
	"testing"
	"time"

	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	"github.com/gatehouse/gatehouse/services/databroker"
)

// A Sync stream far behind pages through a backlog larger than one storage
// read, filtered by type, in order and without gaps.
func TestSyncBacklog(t *testing.T) {
	forEachStorage(t, func(t *testing.T, opts databroker.Options) {
		_, c := newService(t, opts)
		ctx := ctxT(t)
		const n = 2500
		for i := 0; i < n; i += 500 {
			var recs []*databrokerv1.Record
			for j := i; j < i+500; j++ {
				recs = append(recs, userRecord(t, fmt.Sprint(j), ""))
				other := userRecord(t, fmt.Sprint(j), "")
				other.Type = "other"
				recs = append(recs, other)
			}
			if _, err := c.Put(ctx, &databrokerv1.PutRequest{Records: recs}); err != nil {
				t.Fatal(err)
			}
		}
		info, err := c.ServerInfo(ctx, &databrokerv1.ServerInfoRequest{})
		if err != nil {
			t.Fatal(err)
		}
		stream, err := c.Sync(ctx, &databrokerv1.SyncRequest{ServerVersion: info.GetServerVersion(), Type: userType})
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			r := recv(t, stream, 5*time.Second)
			if r.GetId() != fmt.Sprint(i) || r.GetType() != userType || r.GetVersion() != uint64(2*i+1) {
				t.Fatalf("change %d = %s/%s@%d", i, r.GetType(), r.GetId(), r.GetVersion())
			}
		}
	})
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		opts databroker.Options
		ok   bool
	}{
		{databroker.Options{}, true},
		{databroker.Options{StorageType: "memory"}, true},
		{databroker.Options{StorageType: "redis", ConnectionString: "redis://127.0.0.1:6379"}, true},
		{databroker.Options{StorageType: "redis"}, false},
		{databroker.Options{StorageType: "postgres"}, false},
		{databroker.Options{StorageType: "mongodb", ConnectionString: "mongodb://x"}, false},
	} {
		err := tc.opts.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.opts, err)
		}
		if err == nil && (tc.opts.StorageType == "" || tc.opts.Logger == nil || tc.opts.Timeout == 0) {
			t.Errorf("defaults not set: %+v", tc.opts)
		}
	}
	if _, err := databroker.New(ctxT(t), databroker.Options{StorageType: "redis", ConnectionString: "http://x"}); err == nil {
		t.Error("New accepted an http:// connection string")
	}
}
