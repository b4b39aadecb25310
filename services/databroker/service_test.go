package databroker_test

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gatehouse/gatehouse/pkg/testutil"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	userv1 "github.com/gatehouse/gatehouse/proto/gatehouse/user/v1"
	"github.com/gatehouse/gatehouse/services/databroker"
	"github.com/gatehouse/gatehouse/services/databroker/databrokertest"
)

const userType = "type.googleapis.com/gatehouse.user.v1.User"

var prefixes atomic.Int64

// newService returns a started service and a client of it over loopback
// gRPC; Run goes on until the test ends.
func newService(t testing.TB, opts databroker.Options) (*databroker.Service, databrokerv1.DataBrokerServiceClient) {
	t.Helper()
	if (opts.StorageType == databroker.StorageTypeRedis || opts.StorageType == databroker.StorageTypePostgres) && opts.KeyPrefix == "" {
		opts.KeyPrefix = fmt.Sprintf("svc%d", prefixes.Add(1))
	}
	if opts.SweepInterval == 0 {
		opts.SweepInterval = 50 * time.Millisecond
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = 200 * time.Millisecond
	}
	s := databrokertest.Start(t, databrokertest.WithOptions(opts))
	return s.Service(), s.Client()
}

func userRecord(t testing.TB, id, email string) *databrokerv1.Record {
	data, err := anypb.New(&userv1.User{Id: id, Email: email, Name: "Name " + id})
	if err != nil {
		t.Fatal(err)
	}
	return &databrokerv1.Record{Type: userType, Id: id, Data: data}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantCode(t testing.TB, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("error %v, want %s", err, code)
	}
}

// recv reads the next Sync change or fails after a timeout.
func recv(t testing.TB, stream databrokerv1.DataBrokerService_SyncClient, timeout time.Duration) *databrokerv1.Record {
	t.Helper()
	type res struct {
		r   *databrokerv1.SyncResponse
		err error
	}
	ch := make(chan res, 1)
	go func() {
		r, err := stream.Recv()
		ch <- res{r, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Sync Recv: %v", r.err)
		}
		return r.r.GetRecord()
	case <-time.After(timeout):
		t.Fatalf("no Sync change within %v", timeout)
		return nil
	}
}

func forEachStorage(t *testing.T, fn func(t *testing.T, opts databroker.Options)) {
	t.Run("memory", func(t *testing.T) { fn(t, databroker.Options{}) })
	t.Run("redis", func(t *testing.T) {
		srv := testutil.StartRedis(t)
		fn(t, databroker.Options{StorageType: databroker.StorageTypeRedis, ConnectionString: srv.URL()})
	})
}

func TestRPCs(t *testing.T) {
	forEachStorage(t, func(t *testing.T, opts databroker.Options) {
		svc, c := newService(t, opts)
		ctx := ctxT(t)
		if err := svc.Ready(); err != nil {
			t.Fatal(err)
		}

		// Put and Get.
		put, err := c.Put(ctx, &databrokerv1.PutRequest{Records: []*databrokerv1.Record{
			userRecord(t, "u1", "one@example.com"), userRecord(t, "u2", "two@example.com"),
		}})
		if err != nil {
			t.Fatal(err)
		}
		if put.GetServerVersion() == 0 || len(put.GetRecords()) != 2 || put.GetRecords()[1].GetVersion() != put.GetRecords()[0].GetVersion()+1 {
			t.Fatalf("Put = %v", put)
		}
		got, err := c.Get(ctx, &databrokerv1.GetRequest{Type: userType, Id: "u1"})
		if err != nil || !proto.Equal(got.GetRecord(), put.GetRecords()[0]) {
			t.Fatalf("Get = %v, %v; want %v", got, err, put.GetRecords()[0])
		}
		_, err = c.Get(ctx, &databrokerv1.GetRequest{Type: userType, Id: "nope"})
		wantCode(t, err, codes.NotFound)
		_, err = c.Get(ctx, &databrokerv1.GetRequest{Type: userType})
		wantCode(t, err, codes.InvalidArgument)
		_, err = c.Put(ctx, &databrokerv1.PutRequest{Records: []*databrokerv1.Record{{Type: userType, Id: "x"}}})
		wantCode(t, err, codes.InvalidArgument)

		// ServerInfo, SyncLatest, Sync.
		info, err := c.ServerInfo(ctx, &databrokerv1.ServerInfoRequest{})
		if err != nil || info.GetServerVersion() != put.GetServerVersion() || info.GetLatestRecordVersion() != put.GetRecords()[1].GetVersion() {
			t.Fatalf("ServerInfo = %v, %v", info, err)
		}
		sl, err := c.SyncLatest(ctx, &databrokerv1.SyncLatestRequest{Type: userType})
		if err != nil {
			t.Fatal(err)
		}
		var latest []*databrokerv1.Record
		var versions *databrokerv1.Versions
		for {
			m, err := sl.Recv()
			if err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			if r := m.GetRecord(); r != nil {
				latest = append(latest, r)
			} else {
				versions = m.GetVersions()
			}
		}
		if len(latest) != 2 || versions.GetServerVersion() != info.GetServerVersion() || versions.GetLatestRecordVersion() != info.GetLatestRecordVersion() {
			t.Fatalf("SyncLatest = %v then %v", latest, versions)
		}
		sync, err := c.Sync(ctx, &databrokerv1.SyncRequest{ServerVersion: versions.GetServerVersion(), RecordVersion: versions.GetLatestRecordVersion(), Type: userType})
		if err != nil {
			t.Fatal(err)
		}
		del, err := c.Put(ctx, &databrokerv1.PutRequest{Records: []*databrokerv1.Record{{Type: userType, Id: "u2", DeletedAt: timestamppb.Now()}}})
		if err != nil {
			t.Fatal(err)
		}
		if r := recv(t, sync, 5*time.Second); r.GetId() != "u2" || r.GetDeletedAt() == nil || r.GetVersion() != del.GetRecords()[0].GetVersion() {
			t.Fatalf("Sync got %v", r)
		}
		bad, err := c.Sync(ctx, &databrokerv1.SyncRequest{ServerVersion: versions.GetServerVersion() + 1})
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.Recv()
		wantCode(t, err, codes.Aborted)

		// Patch.
		patchData, _ := anypb.New(&userv1.User{Name: "Patched"})
		pr, err := c.Patch(ctx, &databrokerv1.PatchRequest{
			Records:   []*databrokerv1.Record{{Type: userType, Id: "u1", Data: patchData}},
			FieldMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}},
		})
		if err != nil || len(pr.GetRecords()) != 1 {
			t.Fatalf("Patch = %v, %v", pr, err)
		}
		if r := recv(t, sync, 5*time.Second); r.GetId() != "u1" || r.GetVersion() != pr.GetRecords()[0].GetVersion() {
			t.Fatalf("Sync got %v after Patch", r)
		}
		var u userv1.User
		got, _ = c.Get(ctx, &databrokerv1.GetRequest{Type: userType, Id: "u1"})
		if err := got.GetRecord().GetData().UnmarshalTo(&u); err != nil || u.GetName() != "Patched" || u.GetEmail() != "one@example.com" {
			t.Fatalf("patched = %v, %v", &u, err)
		}
		_, err = c.Patch(ctx, &databrokerv1.PatchRequest{Records: []*databrokerv1.Record{{Type: userType, Id: "u1", Data: patchData}}})
		wantCode(t, err, codes.InvalidArgument)

		// Query.
		var recs []*databrokerv1.Record
		for i := range 10 {
			recs = append(recs, userRecord(t, fmt.Sprintf("q%d", i), fmt.Sprintf("q%d@example.com", i)))
		}
		if _, err := c.Put(ctx, &databrokerv1.PutRequest{Records: recs}); err != nil {
			t.Fatal(err)
		}
		qr, err := c.Query(ctx, &databrokerv1.QueryRequest{Type: userType, Query: "q", Offset: 2, Limit: 3})
		if err != nil || qr.GetTotalCount() != 10 || len(qr.GetRecords()) != 3 || qr.GetRecords()[0].GetId() != "q2" || qr.GetServerVersion() != info.GetServerVersion() {
			t.Fatalf("Query = %v, %v", qr, err)
		}
		filter, _ := structpb.NewStruct(map[string]any{"email": []any{"q3@example.com", "one@example.com"}})
		qr, err = c.Query(ctx, &databrokerv1.QueryRequest{Type: userType, Filter: filter})
		if err != nil || qr.GetTotalCount() != 2 || qr.GetRecords()[0].GetId() != "q3" || qr.GetRecords()[1].GetId() != "u1" {
			t.Fatalf("Query filter = %v, %v", qr, err)
		}
		filter, _ = structpb.NewStruct(map[string]any{"name": "x"})
		_, err = c.Query(ctx, &databrokerv1.QueryRequest{Type: userType, Filter: filter})
		wantCode(t, err, codes.InvalidArgument)

		// ListTypes.
		types, err := c.ListTypes(ctx, &databrokerv1.ListTypesRequest{})
		if err != nil || len(types.GetTypes()) != 1 || types.GetTypes()[0] != userType {
			t.Fatalf("ListTypes = %v, %v", types, err)
		}

		// Leases.
		l1, err := c.AcquireLease(ctx, &databrokerv1.AcquireLeaseRequest{Name: "refresher", Duration: durationpb.New(time.Minute)})
		if err != nil || l1.GetId() == "" {
			t.Fatalf("AcquireLease = %v, %v", l1, err)
		}
		_, err = c.AcquireLease(ctx, &databrokerv1.AcquireLeaseRequest{Name: "refresher", Duration: durationpb.New(time.Minute)})
		wantCode(t, err, codes.AlreadyExists)
		_, err = c.RenewLease(ctx, &databrokerv1.RenewLeaseRequest{Name: "refresher", Id: l1.GetId(), Duration: durationpb.New(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.RenewLease(ctx, &databrokerv1.RenewLeaseRequest{Name: "refresher", Id: "other", Duration: durationpb.New(time.Minute)})
		wantCode(t, err, codes.AlreadyExists)
		if _, err := c.ReleaseLease(ctx, &databrokerv1.ReleaseLeaseRequest{Name: "refresher", Id: l1.GetId()}); err != nil {
			t.Fatal(err)
		}
		_, err = c.RenewLease(ctx, &databrokerv1.RenewLeaseRequest{Name: "refresher", Id: l1.GetId(), Duration: durationpb.New(time.Minute)})
		wantCode(t, err, codes.NotFound)
		_, err = c.AcquireLease(ctx, &databrokerv1.AcquireLeaseRequest{Name: "refresher"})
		wantCode(t, err, codes.InvalidArgument)

		// Options, and TTL expiry by Run's sweep reaching the Sync stream.
		so, err := c.SetOptions(ctx, &databrokerv1.SetOptionsRequest{Type: userType, Options: &databrokerv1.Options{Ttl: durationpb.New(300 * time.Millisecond), Capacity: 100}})
		if err != nil || so.GetOptions().GetCapacity() != 100 {
			t.Fatalf("SetOptions = %v, %v", so, err)
		}
		gotOpts, err := c.GetOptions(ctx, &databrokerv1.GetOptionsRequest{Type: userType})
		if err != nil || !proto.Equal(gotOpts.GetOptions(), so.GetOptions()) {
			t.Fatalf("GetOptions = %v, %v", gotOpts, err)
		}
		deleted := map[string]bool{}
		for len(deleted) < 11 { // the q0..q9 writes, then u1 and q0..q9 expire
			if r := recv(t, sync, 5*time.Second); r.GetDeletedAt() != nil {
				deleted[r.GetId()] = true
			}
		}
		qr, err = c.Query(ctx, &databrokerv1.QueryRequest{Type: userType})
		if err != nil || qr.GetTotalCount() != 0 {
			t.Fatalf("after expiry Query = %v, %v", qr, err)
		}
	})
}
