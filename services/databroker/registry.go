package databroker

import (
	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/services/databroker/storage"
	"github.com/gatehouse/gatehouse/services/databroker/storage/memory"
	"github.com/gatehouse/gatehouse/services/databroker/storage/postgres"
	"github.com/gatehouse/gatehouse/services/databroker/storage/redis"
)

// StorageTypes is the one list of the databroker's storage types: New
// opens them, configuration validation checks databroker_storage_type and
// its connection string against it, and the README's storage table is
// tested against it. A new backend is a storage.Type added here.
var StorageTypes = storage.NewRegistry(memory.Type, redis.Type, postgres.Type)

// ConfigStorageTypes returns the registry in the form pkg/config reads.
func ConfigStorageTypes() []config.StorageType {
	var out []config.StorageType
	for _, t := range StorageTypes.Types() {
		out = append(out, config.StorageType{Name: t.Name, ConnectionForms: t.ConnectionForms, ValidateConnectionString: t.ValidateConnectionString})
	}
	return out
}

// A program that links the databroker validates its storage options
// against the registry (pkg/config cannot import the services).
func init() { config.RegisterStorageTypes(ConfigStorageTypes()...) }
