package databroker_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/pkg/testutil"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	"github.com/gatehouse/gatehouse/services/databroker"
)

// BenchmarkGRPC measures the service end to end over loopback gRPC.
func BenchmarkGRPC(b *testing.B) {
	b.Run("memory", func(b *testing.B) { benchService(b, databroker.Options{}) })
	b.Run("redis", func(b *testing.B) {
		srv := testutil.StartRedis(b)
		benchService(b, databroker.Options{StorageType: databroker.StorageTypeRedis, ConnectionString: srv.URL()})
	})
	b.Run("postgres", func(b *testing.B) {
		pg := testutil.StartPostgres(b)
		benchService(b, databroker.Options{StorageType: databroker.StorageTypePostgres, ConnectionString: pg.CreateDatabase(b, "bench")})
	})
}

func benchService(b *testing.B, opts databroker.Options) {
	_, c := newService(b, opts)
	rec := userRecord(b, "x", "x@example.com")
	ctx := context.Background()
	b.Run("Put", func(b *testing.B) {
		var ids atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r := &databrokerv1.Record{Type: rec.Type, Id: fmt.Sprint(ids.Add(1) % 1000), Data: rec.Data}
				if _, err := c.Put(ctx, &databrokerv1.PutRequest{Records: []*databrokerv1.Record{r}}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
	})
	b.Run("Get", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Get(ctx, &databrokerv1.GetRequest{Type: rec.Type, Id: fmt.Sprint(rand.IntN(1000))}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
	})
	b.Run("SyncFanout100", func(b *testing.B) {
		const streams = 100
		info, err := c.ServerInfo(ctx, &databrokerv1.ServerInfoRequest{})
		if err != nil {
			b.Fatal(err)
		}
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		// Each stream first receives a warm-up change, so that all of
		// them are open and caught up before the timer starts.
		var wg, ready sync.WaitGroup
		for range streams {
			s, err := c.Sync(sctx, &databrokerv1.SyncRequest{ServerVersion: info.GetServerVersion(), RecordVersion: info.GetLatestRecordVersion()})
			if err != nil {
				b.Fatal(err)
			}
			wg.Add(1)
			ready.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.Recv()
				ready.Done()
				if err != nil {
					b.Error(err)
					return
				}
				for range b.N {
					if _, err := s.Recv(); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		warmUp := &databrokerv1.Record{Type: rec.Type, Id: "warm-up", Data: rec.Data}
		if _, err := c.Put(ctx, &databrokerv1.PutRequest{Records: []*databrokerv1.Record{warmUp}}); err != nil {
			b.Fatal(err)
		}
		ready.Wait()
		b.ResetTimer()
		for i := range b.N {
			r := &databrokerv1.Record{Type: rec.Type, Id: fmt.Sprint(i % 1000), Data: rec.Data}
			if _, err := c.Put(ctx, &databrokerv1.PutRequest{Records: []*databrokerv1.Record{r}}); err != nil {
				b.Fatal(err)
			}
		}
		wg.Wait()
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
		b.ReportMetric(float64(b.N*streams)/b.Elapsed().Seconds(), "deliveries/s")
	})
}
