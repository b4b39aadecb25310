package storage_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/pkg/testutil"
	"github.com/gatehouse/gatehouse/services/databroker/storage"
	"github.com/gatehouse/gatehouse/services/databroker/storage/memory"
	"github.com/gatehouse/gatehouse/services/databroker/storage/postgres"
	"github.com/gatehouse/gatehouse/services/databroker/storage/redis"
	"github.com/gatehouse/gatehouse/services/databroker/storage/storagetest"
)

var namespaces atomic.Int64

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// BenchmarkBackends runs the shared storage benchmarks (Put, Get, Sync
// fan-out) on every backend in one run, each beside its server's own
// benchmark tool on the same server as the anchor: redis-benchmark (GET
// and SET) for Redis, pgbench -S (select-only) for PostgreSQL.
//
//	go test -run '^$' -bench Backends ./services/databroker/storage/
func BenchmarkBackends(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		storagetest.Benchmark(b, func(t testing.TB, o storagetest.Options) storage.Backend {
			s := memory.New(o.StoreOptions())
			t.Cleanup(func() { _ = s.Close() })
			return s
		})
	})
	b.Run("redis", func(b *testing.B) {
		srv := testutil.StartRedis(b)
		storagetest.Benchmark(b, func(t testing.TB, o storagetest.Options) storage.Backend {
			s, err := redis.New(redis.Options{ConnectionString: srv.URL(), Prefix: fmt.Sprint("bench", namespaces.Add(1))}, o.StoreOptions())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		})
		b.Run("anchor-redis-benchmark", func(b *testing.B) { redisBenchmark(b, srv) })
	})
	b.Run("postgres", func(b *testing.B) {
		pg := testutil.StartPostgres(b)
		url := pg.CreateDatabase(b, "bench")
		storagetest.Benchmark(b, func(t testing.TB, o storagetest.Options) storage.Backend {
			s, err := postgres.New(context.Background(), postgres.Options{ConnectionString: url, Schema: fmt.Sprint("bench", namespaces.Add(1)), Tuning: storage.Tuning{Logger: quiet}}, o.StoreOptions())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		})
		b.Run("anchor-pgbench-S", func(b *testing.B) { pgbench(b, pg, url) })
	})
}

// redisBenchmark runs redis-benchmark once (whatever b.N) and reports its
// requests per second.
func redisBenchmark(b *testing.B, srv *testutil.Redis) {
	if b.N > 1 {
		b.Skip("runs once")
	}
	host, port, _ := strings.Cut(srv.Addr(), ":")
	out, err := exec.Command("redis-benchmark", "-h", host, "-p", port, "-t", "get,set", "-n", "100000", "-c", "8", "--csv").Output()
	if err != nil {
		b.Skipf("redis-benchmark: %v", err)
	}
	rows, err := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range rows[1:] {
		rps, _ := strconv.ParseFloat(r[1], 64)
		b.ReportMetric(rps, strings.ToLower(r[0])+"/s")
	}
}

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// pgbench runs pgbench -S (its select-only TPC-B-like read) for 5s once
// (whatever b.N) and reports its transactions per second.
func pgbench(b *testing.B, pg *testutil.Postgres, url string) {
	if b.N > 1 {
		b.Skip("runs once")
	}
	bin := filepath.Join(pg.BinDir(), "pgbench")
	run := func(args ...string) string {
		cmd := exec.Command(bin, append(args, url)...)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+testutil.PostgresPassword)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("pgbench %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("-i", "-q", "-s", "1")
	m := tpsRE.FindStringSubmatch(run("-S", "-n", "-c", "8", "-j", "2", "-T", "5"))
	if m == nil {
		b.Fatal("no tps in pgbench's output")
	}
	tps, _ := strconv.ParseFloat(m[1], 64)
	b.ReportMetric(tps, "selects/s")
}
