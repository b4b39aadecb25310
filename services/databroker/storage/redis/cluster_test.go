package redis_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/pkg/testutil"
	"github.com/gatehouse/gatehouse/services/databroker/storage"
	"github.com/gatehouse/gatehouse/services/databroker/storage/redis"
	"github.com/gatehouse/gatehouse/services/databroker/storage/storagetest"
)

// The suite passes on Redis Cluster too (a single node holding every
// slot: the scripts run under cluster-mode key checks, through
// go-redis's ClusterClient, with redis+cluster:// connection strings).
func TestConformanceCluster(t *testing.T) {
	// The cluster bus listens on port+10000 unless told otherwise, which
	// lands in the kernel's ephemeral range where an outgoing connection may
	// hold it: give it a free port of the test range (Redis 7's cluster-port).
	srv := testutil.StartRedis(t, testutil.WithRedisArgs("--cluster-enabled", "yes",
		"--cluster-port", strconv.Itoa(testutil.FreePort(t))))
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer c.Close()
	ctx := context.Background()
	if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "cluster_state:ok", func() error {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("cluster info %q", info)
		}
		return err
	})
	storagetest.Run(t, func(t testing.TB, o storagetest.Options) storage.Backend {
		b, err := redis.New(redis.Options{
			ConnectionString: "redis+cluster://" + srv.Addr(),
			Prefix:           fmt.Sprintf("cluster%d", prefixes.Add(1)),
			Tuning:           storage.Tuning{PollInterval: 200 * time.Millisecond},
		}, o.StoreOptions())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b
	})
}
