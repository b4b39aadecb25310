package memory_test

import (
	"testing"

	"github.com/gatehouse/gatehouse/services/databroker/storage"
	"github.com/gatehouse/gatehouse/services/databroker/storage/memory"
	"github.com/gatehouse/gatehouse/services/databroker/storage/storagetest"
)

func newBackend(t testing.TB, o storagetest.Options) storage.Backend {
	b := memory.New(o.StoreOptions())
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestConformance(t *testing.T) { storagetest.Run(t, newBackend) }

func BenchmarkMemory(b *testing.B) { storagetest.Benchmark(b, newBackend) }
