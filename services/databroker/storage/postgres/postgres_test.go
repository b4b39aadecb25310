package postgres_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/testutil"
	"github.com/gatehouse/gatehouse/services/databroker/storage"
	"github.com/gatehouse/gatehouse/services/databroker/storage/postgres"
	"github.com/gatehouse/gatehouse/services/databroker/storage/storagetest"
)

var schemas atomic.Int64

// newFactory returns a factory of independent stores on one database
// (each in its own schema).
func newFactory(url string) storagetest.Factory {
	return func(t testing.TB, o storagetest.Options) storage.Backend {
		b, err := postgres.New(t.Context(), postgres.Options{
			ConnectionString: url,
			Schema:           fmt.Sprintf("test%d", schemas.Add(1)),
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
	pg := testutil.StartPostgres(t)
	storagetest.Run(t, newFactory(pg.CreateDatabase(t, "conformance")))
}
