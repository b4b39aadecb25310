package databroker_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gatehouse/gatehouse/pkg/testutil"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	"github.com/gatehouse/gatehouse/services/databroker"
)

func redisOpts(srv *testutil.Redis, prefix string) databroker.Options {
	return databroker.Options{
		StorageType:      databroker.StorageTypeRedis,
		ConnectionString: srv.URL(),
		KeyPrefix:        prefix,
		Timeout:          time.Second,
	}
}

func syncLatest(t *testing.T, c databrokerv1.DataBrokerServiceClient) ([]*databrokerv1.Record, *databrokerv1.Versions) {
	t.Helper()
	s, err := c.SyncLatest(ctxT(t), &databrokerv1.SyncLatestRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var recs []*databrokerv1.Record
	var vs *databrokerv1.Versions
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return recs, vs
		} else if err != nil {
			t.Fatal(err)
		}
		if m.GetRecord() != nil {
			recs = append(recs, m.GetRecord())
		} else {
			vs = m.GetVersions()
		}
	}
}

// Two replicas on one Redis: a Put through one reaches a Sync stream on the
// other by pub/sub (the safety poll is a minute).
func TestRedisReplicas(t *testing.T) {
	testReplicasShareChanges(t, redisOpts(testutil.StartRedis(t), "replicas"))
}

// A new instance on the same Redis serves every record, and so does one
// after Redis itself restarts (append-only persistence).
func TestRedisRestart(t *testing.T) {
	srv := testutil.StartRedis(t)
	ctx := ctxT(t)
	svc1, c1 := newService(t, redisOpts(srv, "restart"))
	var recs []*databrokerv1.Record
	for i := range 50 {
		recs = append(recs, userRecord(t, fmt.Sprintf("u%02d", i), fmt.Sprintf("u%02d@example.com", i)))
	}
	put, err := c1.Put(ctx, &databrokerv1.PutRequest{Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	_ = svc1.Close()

	check := func(c databrokerv1.DataBrokerServiceClient) {
		t.Helper()
		got, vs := syncLatest(t, c)
		if len(got) != 50 || vs.GetServerVersion() != put.GetServerVersion() || vs.GetLatestRecordVersion() != 50 {
			t.Fatalf("SyncLatest: %d records, versions %v; want 50 at server version %d", len(got), vs, put.GetServerVersion())
		}
		r, err := c.Get(ctx, &databrokerv1.GetRequest{Type: userType, Id: "u42"})
		if err != nil || r.GetRecord().GetVersion() != put.GetRecords()[42].GetVersion() {
			t.Fatalf("Get u42 = %v, %v", r, err)
		}
	}
	_, c2 := newService(t, redisOpts(srv, "restart"))
	check(c2)
	srv.Stop()
	srv.Start()
	_, c3 := newService(t, redisOpts(srv, "restart"))
	check(c3)
}

// Redis stopped: Put fails with Unavailable within the timeout, nothing
// panics; Redis back: writes succeed without a restart and an open Sync
// stream resumes without losing a change.
func TestRedisOutage(t *testing.T) {
	srv := testutil.StartRedis(t)
	ctx := ctxT(t)
	opts := redisOpts(srv, "outage")
	_, a := newService(t, opts)
	logsB := &logBuffer{}
	optsB := opts
	optsB.Logger = slog.New(slog.NewTextHandler(logsB, nil))
	svcB, b := newService(t, optsB)
	info, err := b.ServerInfo(ctx, &databrokerv1.ServerInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := b.Sync(ctx, &databrokerv1.SyncRequest{ServerVersion: info.GetServerVersion(), RecordVersion: info.GetLatestRecordVersion()})
	if err != nil {
		t.Fatal(err)
	}
	first, err := a.Put(ctx, &databrokerv1.PutRequest{Records: []*databrokerv1.Record{userRecord(t, "before", "")}})
	if err != nil {
		t.Fatal(err)
	}
	if r := recv(t, stream, 5*time.Second); r.GetId() != "before" {
		t.Fatalf("got %v", r)
	}

	srv.Stop()
	start := time.Now()
	_, err = a.Put(ctx, &databrokerv1.PutRequest{Records: []*databrokerv1.Record{userRecord(t, "during", "")}})
	if d := time.Since(start); d > opts.Timeout+time.Second {
		t.Errorf("Put took %v with Redis down; timeout is %v", d, opts.Timeout)
	}
	wantCode(t, err, codes.Unavailable)
	_, err = b.Get(ctx, &databrokerv1.GetRequest{Type: userType, Id: "before"})
	wantCode(t, err, codes.Unavailable)
	if svcB.StorageHealth() == nil {
		t.Error("StorageHealth reports a healthy storage with Redis down")
	}
	// Still serving: readiness never depends on the storage.
	if err := svcB.Ready(); err != nil {
		t.Errorf("not Ready with Redis down: %v", err)
	}
	// The outage lasts until B's background work has met it.
	testutil.WaitFor(t, 10*time.Second, "a sweep of B to fail with Redis down", func() bool {
		return strings.Contains(logsB.String(), "databroker: sweep failed")
	})

	srv.Start()
	var ids []string
	testutil.WaitFor(t, 10*time.Second, "3 Puts after the Redis restart", func() error {
		id := fmt.Sprint("after", len(ids))
		_, err := a.Put(ctx, &databrokerv1.PutRequest{Records: []*databrokerv1.Record{userRecord(t, id, "")}})
		switch {
		case err == nil:
			ids = append(ids, id)
			if len(ids) < 3 {
				return errors.New("more Puts to make")
			}
			return nil
		case status.Code(err) != codes.Unavailable:
			t.Fatalf("Put after Redis restart: %v", err)
		}
		return err
	})
	for i, id := range ids {
		r := recv(t, stream, 5*time.Second)
		if r.GetId() != id || r.GetVersion() != first.GetRecords()[0].GetVersion()+uint64(i)+1 {
			t.Fatalf("after restart the stream got %v, want %s at version %d", r, id, first.GetRecords()[0].GetVersion()+uint64(i)+1)
		}
	}
	if err := svcB.StorageHealth(); err != nil {
		t.Errorf("storage unhealthy after Redis came back: %v", err)
	}
}

// logBuffer holds a service's log output for a test to wait on. It is safe
// for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
