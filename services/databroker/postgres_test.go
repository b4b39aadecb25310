package databroker_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/testutil"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	"github.com/gatehouse/gatehouse/services/databroker"
)

func postgresOpts(url, schema string) databroker.Options {
	return databroker.Options{
		StorageType:      databroker.StorageTypePostgres,
		ConnectionString: url,
		KeyPrefix:        schema,
		Timeout:          time.Second,
	}
}

// The databroker on PostgreSQL, one server for every case.
func TestPostgres(t *testing.T) {
	pg := testutil.StartPostgres(t)
	url := pg.CreateDatabase(t, "databroker")
	t.Run("Replicas", func(t *testing.T) { testPostgresReplicas(t, url) })
	t.Run("StartupErrors", func(t *testing.T) { testPostgresStartupErrors(t, pg) })
	t.Run("RestartAndOutage", func(t *testing.T) { testPostgresRestartAndOutage(t, pg, url) })
}

// Two databroker replicas on one PostgreSQL: a Put on A arrives on a Sync
// stream on B, woken by NOTIFY (the safety poll is a minute).
func testPostgresReplicas(t *testing.T, url string) {
	testReplicasShareChanges(t, postgresOpts(url, "replicas"))
}

// A wrong password, a missing database or an unreachable server stops
// start-up with an error naming the option; config validation catches a
// malformed connection string before that.
func testPostgresStartupErrors(t *testing.T, pg *testutil.Postgres) {
	for _, tc := range []struct {
		name, url, want string
	}{
		{"wrong password", "postgres://" + testutil.PostgresUser + ":wrong@" + pg.Addr() + "/databroker?sslmode=disable", "password authentication failed"},
		{"missing database", "postgres://" + testutil.PostgresUser + ":" + testutil.PostgresPassword + "@" + pg.Addr() + "/nope?sslmode=disable", `database "nope" does not exist`},
		{"unreachable", "host=127.0.0.1 port=" + fmt.Sprint(testutil.FreePort(t)) + " user=x password=y dbname=z sslmode=disable", "connect"},
	} {
		start := time.Now()
		_, err := databroker.New(ctxT(t), postgresOpts(tc.url, "startup"))
		if err == nil || !strings.Contains(err.Error(), "databroker_storage_connection_string") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
		if err != nil && strings.Contains(err.Error(), "wrong") {
			t.Errorf("%s: the error shows the password: %v", tc.name, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: took %v", tc.name, d)
		}
	}
	// The databroker's registry is what config validation reads.
	_, err := config.Parse([]byte("services: databroker\nshared_secret: "+testSecret+"\ndatabroker_storage_type: postgres\ndatabroker_storage_connection_string: postgres://u@h/db?sslmode=sometimes\n"), "", nil)
	if err == nil || !strings.Contains(err.Error(), "line 4: databroker_storage_connection_string: expected a postgres connection string") {
		t.Errorf("config with a bad sslmode: %v", err)
	}
	_, err = config.Parse([]byte("services: databroker\nshared_secret: "+testSecret+"\ndatabroker_storage_type: postgres\ndatabroker_storage_connection_string: host=db user=gatehouse dbname=gatehouse sslmode=require\n"), "", nil)
	if err != nil {
		t.Errorf("config with a key=value connection string: %v", err)
	}
}

// PostgreSQL stopped: Put fails with Unavailable within the timeout and an
// open Sync stream stays open; PostgreSQL back: writes succeed without a
// restart, the stream resumes without losing a change, and every record
// committed before the restart is there.
func testPostgresRestartAndOutage(t *testing.T, pg *testutil.Postgres, url string) {
	ctx := ctxT(t)
	opts := postgresOpts(url, "outage")
	_, a := newService(t, opts)
	logsB := &logBuffer{}
	optsB := opts
	optsB.Logger = slog.New(slog.NewTextHandler(logsB, nil))
	svcB, b := newService(t, optsB)
	var recs []*databrokerv1.Record
	for i := range 50 {
		recs = append(recs, userRecord(t, fmt.Sprintf("u%02d", i), fmt.Sprintf("u%02d@example.com", i)))
	}
	put, err := a.Put(ctx, &databrokerv1.PutRequest{Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	info, err := b.ServerInfo(ctx, &databrokerv1.ServerInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := b.Sync(ctx, &databrokerv1.SyncRequest{ServerVersion: info.GetServerVersion(), RecordVersion: info.GetLatestRecordVersion()})
	if err != nil {
		t.Fatal(err)
	}

	pg.Stop()
	start := time.Now()
	_, err = a.Put(ctx, &databrokerv1.PutRequest{Records: []*databrokerv1.Record{userRecord(t, "during", "")}})
	if d := time.Since(start); d > 2*opts.Timeout+time.Second {
		t.Errorf("Put took %v with PostgreSQL down; timeout is %v", d, opts.Timeout)
	}
	wantCode(t, err, codes.Unavailable)
	if svcB.StorageHealth() == nil {
		t.Error("StorageHealth reports a healthy storage with PostgreSQL down")
	}
	// Still serving: readiness never depends on the storage.
	if err := svcB.Ready(); err != nil {
		t.Errorf("not Ready with PostgreSQL down: %v", err)
	}
	testutil.WaitFor(t, 10*time.Second, "a sweep of B to fail with PostgreSQL down", func() bool {
		return strings.Contains(logsB.String(), "databroker: sweep failed")
	})

	pg.Start()
	var ids []string
	var versions []uint64
	testutil.WaitFor(t, 15*time.Second, "3 Puts after the PostgreSQL restart", func() error {
		id := fmt.Sprint("after", len(ids))
		res, err := a.Put(ctx, &databrokerv1.PutRequest{Records: []*databrokerv1.Record{userRecord(t, id, "")}})
		switch {
		case err == nil:
			ids = append(ids, id)
			versions = append(versions, res.GetRecords()[0].GetVersion())
			if len(ids) < 3 {
				return errors.New("more Puts to make")
			}
			return nil
		case status.Code(err) != codes.Unavailable:
			t.Fatalf("Put after PostgreSQL restart: %v", err)
		}
		return err
	})
	for i, id := range ids {
		r := recv(t, stream, 10*time.Second)
		if r.GetId() != id || r.GetVersion() != versions[i] {
			t.Fatalf("after restart the stream got %v, want %s at version %d", r, id, versions[i])
		}
	}
	got, vs := syncLatest(t, b)
	if len(got) != 53 || vs.GetServerVersion() != put.GetServerVersion() {
		t.Fatalf("SyncLatest after restart: %d records, versions %v; want 53 at server version %d", len(got), vs, put.GetServerVersion())
	}
	r, err := b.Get(ctx, &databrokerv1.GetRequest{Type: userType, Id: "u42"})
	if err != nil || r.GetRecord().GetVersion() != put.GetRecords()[42].GetVersion() {
		t.Fatalf("Get u42 = %v, %v", r, err)
	}
	if err := svcB.StorageHealth(); err != nil {
		t.Errorf("storage unhealthy after PostgreSQL came back: %v", err)
	}
}

// testSecret is a shared_secret for configs parsed in tests.
const testSecret = "dMXr3u3t9Jh+kfIt98FUERH3Ch6tC/n4CuPoywVunmM="
