package redis_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/pkg/testutil"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	"github.com/gatehouse/gatehouse/services/databroker/storage"
	"github.com/gatehouse/gatehouse/services/databroker/storage/redis"
	"github.com/gatehouse/gatehouse/services/databroker/storage/storagetest"
)

var prefixes atomic.Int64

// newFactory returns a factory of independent stores on one redis-server
// (each under its own key prefix).
func newFactory(srv *testutil.Redis) storagetest.Factory {
	return func(t testing.TB, o storagetest.Options) storage.Backend {
		b, err := redis.New(redis.Options{
			ConnectionString: srv.URL(),
			Prefix:           fmt.Sprintf("test%d", prefixes.Add(1)),
			Tuning:           storage.Tuning{PollInterval: 200 * time.Millisecond},
		}, o.StoreOptions())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, newFactory(testutil.StartRedis(t)))
}

func BenchmarkRedis(b *testing.B) {
	storagetest.Benchmark(b, newFactory(testutil.StartRedis(b)))
}

// When Redis loses its latest writes (a crash before fsync, a failover to a
// lagging replica), its version counter goes back and new writes would
// reuse version numbers clients already saw. A client asking for changes
// after a version the store does not have makes the store take a new
// server version, so every client starts over instead of skipping writes.
func TestVersionRegressionRotatesServerVersion(t *testing.T) {
	srv := testutil.StartRedis(t)
	b := newFactory(srv)(t, storagetest.Options{})
	ctx := context.Background()
	for i := range 5 {
		if _, _, err := b.Put(ctx, []*databrokerv1.Record{storagetest.UserRecord(fmt.Sprint(i), "")}); err != nil {
			t.Fatal(err)
		}
	}
	vs, err := b.Versions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Simulate the loss of the last two writes.
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer c.Close()
	keys, err := c.Keys(ctx, "*:version").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("version key: %v %v", keys, err)
	}
	if err := c.Set(ctx, keys[0], vs.Latest-2, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Changes(ctx, vs.Server, "", vs.Latest, 10); !errors.Is(err, storage.ErrServerVersionMismatch) {
		t.Fatalf("Changes after a lost version: %v, want ErrServerVersionMismatch", err)
	}
	if sv, _ := b.ServerVersion(ctx); sv == vs.Server {
		t.Fatal("server version not replaced")
	}
}
