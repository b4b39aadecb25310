package redis

import (
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

func TestNewClient(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want string // type of client
		ok   bool
	}{
		{"redis://127.0.0.1:6379/2", "*redis.Client", true},
		{"rediss://user:pw@redis.example:6380", "*redis.Client", true},
		{"redis+sentinel://:pw@s1:26379,s2:26379/mymaster/1", "*redis.Client", true},
		{"redis-sentinel://s1:26379?master_name=mymaster", "*redis.Client", true},
		{"redis+sentinel://s1:26379", "", false},
		{"redis+cluster://c1:7000,c2:7001", "*redis.ClusterClient", true},
		{"rediss-cluster://c1:7000", "*redis.ClusterClient", true},
		{"http://x", "", false},
		{"redis+cluster://c1:7000/3", "", false},
	} {
		c, err := NewClient(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v", tc.url, err)
			continue
		}
		if err != nil {
			continue
		}
		switch c.(type) {
		case *goredis.Client:
			if tc.want != "*redis.Client" {
				t.Errorf("%s: got *redis.Client", tc.url)
			}
		case *goredis.ClusterClient:
			if tc.want != "*redis.ClusterClient" {
				t.Errorf("%s: got *redis.ClusterClient", tc.url)
			}
			if addrs := c.(*goredis.ClusterClient).Options().Addrs; tc.url == "redis+cluster://c1:7000,c2:7001" && len(addrs) != 2 {
				t.Errorf("cluster addrs = %v", addrs)
			}
		}
		_ = c.Close()
	}
}
