package databroker_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pkgdatabroker "github.com/gatehouse/gatehouse/pkg/databroker"
	"github.com/gatehouse/gatehouse/pkg/testutil"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	sessionv1 "github.com/gatehouse/gatehouse/proto/gatehouse/session/v1"
	"github.com/gatehouse/gatehouse/services/databroker"
)

// countingHandler counts what a Syncer hands it.
type countingHandler struct{ reset, updates atomic.Int64 }

func (h *countingHandler) Reset(records []*databrokerv1.Record) { h.reset.Store(int64(len(records))) }
func (h *countingHandler) Update(*databrokerv1.Record)          { h.updates.Add(1) }

// benchSessionRecord is a session as authenticate writes it after an OIDC
// sign-in: claims, the raw ID token, OAuth tokens (about 1.5 KB).
func benchSessionRecord(i int) *databrokerv1.Record {
	uid, sid := fmt.Sprintf("%032x", i), fmt.Sprintf("session-%022d", i)
	claims := map[string]*structpb.ListValue{}
	for k, v := range map[string]string{"iss": "https://idp.example.com", "sub": uid, "aud": "gatehouse",
		"email": fmt.Sprintf("user%d@example.com", i), "name": fmt.Sprintf("User Number %d", i), "groups": "dev"} {
		claims[k] = &structpb.ListValue{Values: []*structpb.Value{structpb.NewStringValue(v)}}
	}
	s := &sessionv1.Session{Id: sid, UserId: uid, Claims: claims,
		IdToken:    &sessionv1.IDToken{Issuer: "https://idp.example.com", Subject: uid, Raw: strings.Repeat("t", 900)},
		OauthToken: &sessionv1.OAuthToken{AccessToken: strings.Repeat("a", 43), RefreshToken: strings.Repeat("r", 43), TokenType: "Bearer"},
		IssuedAt:   timestamppb.Now(), ExpiresAt: timestamppb.New(time.Now().Add(14 * time.Hour))}
	d, _ := anypb.New(s)
	return &databrokerv1.Record{Type: "type.googleapis.com/gatehouse.session.v1.Session", Id: sid, Data: d}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func redisCPU(ctx context.Context, c *redis.Client) time.Duration {
	info, err := c.Info(ctx, "cpu").Result()
	if err != nil {
		return 0
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}

// BenchmarkReplicaStartupSync is the start-up of an authorize replica
// against a databroker whose Redis holds GATEHOUSE_BENCH_SYNC_SESSIONS
// sessions (issue 21 asks for 1,000,000; unset, the benchmark is skipped,
// so `make test` never runs it): the time from a new Syncer to its first
// complete SyncLatest, and what the catch-up costs the databroker side —
// the process's CPU (databroker and the syncer share it here), Redis's CPU,
// and the databroker's heap growth while it streams.
//
//	GATEHOUSE_BENCH_SYNC_SESSIONS=1000000 go test -run X -bench ReplicaStartupSync -benchtime 1x -timeout 30m ./services/databroker
func BenchmarkReplicaStartupSync(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("GATEHOUSE_BENCH_SYNC_SESSIONS"))
	if n <= 0 {
		b.Skip("set GATEHOUSE_BENCH_SYNC_SESSIONS=1000000 to run")
	}
	srv := testutil.StartRedis(b, testutil.WithRedisArgs("--appendonly", "no"))
	_, c := newService(b, databroker.Options{StorageType: databroker.StorageTypeRedis, ConnectionString: srv.URL()})
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rc.Close()
	ctx := context.Background()
	const batch = 1000
	fill := time.Now()
	for i := 0; i < n; i += batch {
		recs := make([]*databrokerv1.Record, 0, batch)
		for j := i; j < min(n, i+batch); j++ {
			recs = append(recs, benchSessionRecord(j))
		}
		if _, err := c.Put(ctx, &databrokerv1.PutRequest{Records: recs}); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("filled Redis with %d sessions in %s", n, time.Since(fill).Round(time.Millisecond))
	for b.Loop() {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap0 := ms.HeapAlloc
		cpu0, rcpu0 := processCPU(), redisCPU(ctx, rc)
		h := &countingHandler{}
		sctx, cancel := context.WithCancel(ctx)
		s := pkgdatabroker.NewSyncer(c, "", h, pkgdatabroker.SyncerOptions{})
		start := time.Now()
		go func() { _ = s.Run(sctx) }()
		var peak uint64
		for !s.HasSynced() {
			time.Sleep(20 * time.Millisecond)
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
		took := time.Since(start)
		cpu, rcpu := processCPU()-cpu0, redisCPU(ctx, rc)-rcpu0
		cancel()
		if got := h.reset.Load(); got < int64(n) {
			b.Fatalf("synced %d records, want %d", got, n)
		}
		b.ReportMetric(took.Seconds(), "sync-s")
		b.ReportMetric(cpu.Seconds(), "process-cpu-s")
		b.ReportMetric(rcpu.Seconds(), "redis-cpu-s")
		b.ReportMetric(float64(peak-min(peak, heap0))/(1<<20), "peak-heap-growth-MB")
		b.ReportMetric(float64(n)/took.Seconds(), "records/s")
	}
}
