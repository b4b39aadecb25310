package config

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestMain registers storage types shaped like the databroker's (the
// real registry lives in services/databroker, which pkg/config does not
// import; services/databroker's tests check that config reads it).
func TestMain(m *testing.M) {
	registerTestStorageTypes()
	os.Exit(m.Run())
}

func registerTestStorageTypes() {
	RegisterStorageTypes(
		StorageType{Name: "memory"},
		StorageType{Name: "redis", ConnectionForms: "redis://, rediss://, redis+sentinel:// or redis+cluster://", ValidateConnectionString: func(s string) error {
			if !strings.HasPrefix(s, "redis") {
				return errors.New("not a redis URL")
			}
			return nil
		}},
		StorageType{Name: "postgres", ConnectionForms: "postgres:// or key=value", ValidateConnectionString: func(string) error { return nil }},
	)
}

func TestStorageTypeCheckedOnlyWhenRegistered(t *testing.T) {
	RegisterStorageTypes()
	defer registerTestStorageTypes()
	if _, err := Parse([]byte(base+"databroker_storage_type: anything\n"), "", nil); err != nil {
		t.Fatalf("without registered types the databroker checks the type, not config: %v", err)
	}
}

func TestStorageConnectionStringChecked(t *testing.T) {
	_, err := Parse([]byte(base+"databroker_storage_type: redis\ndatabroker_storage_connection_string: http://x\n"), "", nil)
	if err == nil || !strings.Contains(err.Error(), "line 5: databroker_storage_connection_string: expected a redis connection string") {
		t.Fatalf("got %v", err)
	}
}
