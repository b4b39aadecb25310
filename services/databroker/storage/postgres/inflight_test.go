package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/databroker"
	"github.com/gatehouse/gatehouse/pkg/testutil"
	"github.com/gatehouse/gatehouse/services/databroker/storage"
	"github.com/gatehouse/gatehouse/services/databroker/storage/storagetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openT(t testing.TB, url, schema string, poll time.Duration) *Driver {
	t.Helper()
	d, err := Open(ctxT(t), Options{ConnectionString: url, Schema: schema, Tuning: storage.Tuning{PollInterval: poll, Timeout: 2 * time.Second, Logger: quiet}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func write(id string) []storage.Write {
	r := storagetest.UserRecord(id, id+"@example.com")
	return []storage.Write{{Type: r.GetType(), ID: r.GetId(), Data: r.GetData()}}
}

// TestServer runs the driver's own cases on one PostgreSQL server.
func TestServer(t *testing.T) {
	pg := testutil.StartPostgres(t)
	t.Run("InFlightVersionHoldsReadersBack", func(t *testing.T) { testInFlightVersionHoldsReadersBack(t, pg) })
	t.Run("ConcurrentStartMigratesOnce", func(t *testing.T) { testConcurrentStartMigratesOnce(t, pg) })
	t.Run("WipedDatabaseGetsNewServerVersion", func(t *testing.T) { testWipedDatabaseGetsNewServerVersion(t, pg) })
	t.Run("VersionRegressionRotatesServerVersion", func(t *testing.T) { testVersionRegressionRotatesServerVersion(t, pg) })
}

// A transaction that took a version but has not committed holds readers
// back: a later version that commits first is not passed, so the earlier
// one is not skipped when it commits.
func testInFlightVersionHoldsReadersBack(t *testing.T, pg *testutil.Postgres) {
	url := pg.CreateDatabase(t, "inflight")
	d := openT(t, url, "gatehouse", time.Minute)
	ctx := ctxT(t)
	sv, _, err := d.Append(ctx, write("before"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	start, err := d.Versions(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// A writer that stalls between taking its version and committing,
	// running the driver's own statements.
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, d.q.lockWrite, d.tag); err != nil {
		t.Fatal(err)
	}
	slow := storagetest.UserRecord("slow", "")
	data, _ := marshalData(slow.GetData())
	var slowVersion int64
	if err := tx.QueryRow(ctx, d.q.put, slow.GetType(), slow.GetId(), time.Now().UnixMicro(), data).Scan(&slowVersion); err != nil {
		t.Fatal(err)
	}

	_, fast, err := d.Append(ctx, write("fast"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if fast[0] <= uint64(slowVersion) {
		t.Fatalf("fast write got %d, not above the in-flight %d", fast[0], slowVersion)
	}
	vs, err := d.Versions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if vs.Latest >= uint64(slowVersion) {
		t.Fatalf("latest %d passes the in-flight version %d", vs.Latest, slowVersion)
	}
	batch, err := d.Changes(ctx, sv, start.Latest, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(batch.Records) != 0 || batch.Through >= uint64(slowVersion) {
		t.Fatalf("changes while %d is in flight: %v through %d", slowVersion, batch.Records, batch.Through)
	}

	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	batch, err = d.Changes(ctx, sv, batch.Through, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(batch.Records) != 2 || batch.Records[0].GetId() != "slow" || batch.Records[1].GetId() != "fast" {
		t.Fatalf("after commit: %v", batch.Records)
	}
}

// Replicas starting at once on an empty database migrate it once.
func testConcurrentStartMigratesOnce(t *testing.T, pg *testutil.Postgres) {
	url := pg.CreateDatabase(t, "concurrent")
	var wg sync.WaitGroup
	drivers := make([]*Driver, 6)
	errs := make([]error, len(drivers))
	for i := range drivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			drivers[i], errs[i] = Open(context.Background(), Options{ConnectionString: url, Tuning: storage.Tuning{Logger: quiet}})
		}()
	}
	wg.Wait()
	var server uint64
	for i, d := range drivers {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		defer d.Close()
		vs, err := d.Versions(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && vs.Server != server {
			t.Fatalf("replica %d has server version %d, replica 0 %d", i, vs.Server, server)
		}
		server = vs.Server
	}
}

// A wiped database (the schema dropped) is created again with a new
// server version: clients that synced from the old one are told to
// start over.
func testWipedDatabaseGetsNewServerVersion(t *testing.T, pg *testutil.Postgres) {
	url := pg.CreateDatabase(t, "wiped")
	d := openT(t, url, "gatehouse", time.Minute)
	ctx := ctxT(t)
	sv, _, err := d.Append(ctx, write("a"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.pool.Exec(ctx, "DROP SCHEMA gatehouse CASCADE"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "the schema created again", func() error {
		_, err := d.Versions(ctx)
		return err
	})
	vs, _ := d.Versions(ctx)
	if vs.Server == sv {
		t.Fatal("same server version after a wipe")
	}
	if _, err := d.Changes(ctx, sv, 1, 10); !errors.Is(err, storage.ErrServerVersionMismatch) {
		t.Fatalf("Changes with the old server version: %v", err)
	}
	if _, err := d.Get(ctx, databroker.UserType, "a"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get after wipe: %v", err)
	}
}

// A database restored from an older backup hands out versions clients
// already saw: a client asking for changes after a version the store does
// not have makes it take a new server version.
func testVersionRegressionRotatesServerVersion(t *testing.T, pg *testutil.Postgres) {
	d := openT(t, pg.CreateDatabase(t, "regress"), "gatehouse", time.Minute)
	ctx := ctxT(t)
	var sv uint64
	for i := range 5 {
		s, _, err := d.Append(ctx, write(fmt.Sprint(i)), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		sv = s
	}
	if _, err := d.pool.Exec(ctx, "SELECT setval('gatehouse.record_version', 3)"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Changes(ctx, sv, 5, 10); !errors.Is(err, storage.ErrServerVersionMismatch) {
		t.Fatalf("Changes after a lost version: %v", err)
	}
	if vs, _ := d.Versions(ctx); vs.Server == sv {
		t.Fatal("server version not replaced")
	}
}

func TestValidateConnectionString(t *testing.T) {
	for _, tc := range []struct {
		s  string
		ok bool
	}{
		{"postgres://u:pw@db.example:5432/gatehouse?sslmode=require", true},
		{"postgresql://u@db.example/gatehouse?sslmode=verify-full", true},
		{"postgres:///gatehouse?host=/var/run/postgresql", true},
		{"host=db.example port=5432 user=u password=pw dbname=gatehouse sslmode=disable", true},
		{"postgres://u:pw@db.example/gatehouse?sslmode=sometimes", false},
		{"redis://127.0.0.1:6379", false},
		{"gatehouse", false},
		{"host=db.example sslmode=bogus", false},
	} {
		err := ValidateConnectionString(tc.s)
		if (err == nil) != tc.ok {
			t.Errorf("%q: %v", tc.s, err)
		}
		if err != nil && strings.Contains(err.Error(), "pw") && strings.Contains(tc.s, ":pw@") {
			t.Errorf("%q: the error shows the password: %v", tc.s, err)
		}
	}
}
