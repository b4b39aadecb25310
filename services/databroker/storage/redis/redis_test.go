package redis_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/testutil"
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
			Retention:        o.Retention,
			MaxChanges:       o.MaxChanges,
			PollInterval:     200 * time.Millisecond,
		})
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
