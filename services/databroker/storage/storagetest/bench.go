package storagetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/pkg/databroker"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	"github.com/gatehouse/gatehouse/services/databroker/storage"
)

// Benchmark runs the shared storage benchmarks (Put, Get, Sync fan-out)
// against backends made by newBackend; each reports ops/s.
func Benchmark(b *testing.B, newBackend Factory) {
	b.Run("Put", func(b *testing.B) { benchPut(b, newBackend(b, Options{})) })
	b.Run("Get", func(b *testing.B) { benchGet(b, newBackend(b, Options{})) })
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("SyncFanout%d", n), func(b *testing.B) { benchFanout(b, newBackend(b, Options{}), n) })
	}
}

func reportOps(b *testing.B, n int, unit string) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(n)/s, unit)
	}
}

func benchPut(b *testing.B, be storage.Backend) {
	rec := UserRecord("x", "x@example.com")
	var ids atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := &databrokerv1.Record{Type: rec.Type, Id: fmt.Sprint(ids.Add(1) % 10000), Data: rec.Data}
			if _, _, err := be.Put(context.Background(), []*databrokerv1.Record{r}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportOps(b, b.N, "puts/s")
}

func benchGet(b *testing.B, be storage.Backend) {
	const n = 1000
	var recs []*databrokerv1.Record
	for i := range n {
		recs = append(recs, UserRecord(fmt.Sprint(i), fmt.Sprintf("%d@example.com", i)))
	}
	if _, _, err := be.Put(context.Background(), recs); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := be.Get(context.Background(), databroker.UserType, fmt.Sprint(rand.IntN(n))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportOps(b, b.N, "gets/s")
}

// benchFanout measures writes delivered to followers Sync-like consumers:
// b.N puts, each reaching every follower.
func benchFanout(b *testing.B, be storage.Backend, followers int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	vs, err := be.Versions(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var wg, ready sync.WaitGroup
	for range followers {
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			got := 0
			first := true
			_ = followReady(ctx, be, vs, func() {
				if first {
					first = false
					ready.Done()
				}
			}, func(*databrokerv1.Record) bool {
				got++
				return got < b.N
			})
		}()
	}
	ready.Wait()
	rec := UserRecord("x", "")
	b.ResetTimer()
	for i := range b.N {
		r := &databrokerv1.Record{Type: rec.Type, Id: fmt.Sprint(i % 1000), Data: rec.Data}
		if _, _, err := be.Put(ctx, []*databrokerv1.Record{r}); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.StopTimer()
	reportOps(b, b.N, "puts/s")
	reportOps(b, b.N*followers, "deliveries/s")
}

// followReady is Follow from the latest version with a callback each time
// the follower is about to wait for changes.
func followReady(ctx context.Context, be storage.Backend, vs storage.Versions, waiting func(), fn func(*databrokerv1.Record) bool) error {
	return follow(ctx, be, vs.Server, "", vs.Latest, fn, waiting)
}
