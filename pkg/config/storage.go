package config

import (
	"fmt"
	"strings"
	"sync"
)

// StorageType is a databroker storage type (databroker_storage_type) as
// configuration validation sees it. The list of storage types lives once,
// in the databroker's registry (services/databroker/storage): the
// databroker registers it here with RegisterStorageTypes when a program
// links it, as cmd/gatehouse does.
type StorageType struct {
	// Name is the databroker_storage_type value.
	Name string
	// ConnectionForms lists the connection string forms for messages;
	// empty when the type takes no connection string.
	ConnectionForms string
	// ValidateConnectionString checks databroker_storage_connection_string
	// without contacting the storage; nil when the type takes none.
	ValidateConnectionString func(connectionString string) error
}

var storageTypes struct {
	mu    sync.RWMutex
	types []StorageType
}

// RegisterStorageTypes sets the storage types that validation accepts,
// replacing those set before. It is safe for concurrent use. Until it is
// called (a program without the databroker), the storage options are not
// checked here: a databroker checks them again when it starts.
func RegisterStorageTypes(types ...StorageType) {
	storageTypes.mu.Lock()
	defer storageTypes.mu.Unlock()
	storageTypes.types = append([]StorageType(nil), types...)
}

func registeredStorageTypes() []StorageType {
	storageTypes.mu.RLock()
	defer storageTypes.mu.RUnlock()
	return storageTypes.types
}

// validateStorage checks databroker_storage_type and, in a process that
// runs the databroker, its connection string.
func (c *Config) validateStorage(errs *Errors) {
	o := &c.Options
	at := func(key string) int { return c.lines[key] }
	types := registeredStorageTypes()
	if len(types) == 0 {
		return
	}
	var names []string
	var typ *StorageType
	for i := range types {
		names = append(names, types[i].Name)
		if types[i].Name == o.DataBrokerStorageType {
			typ = &types[i]
		}
	}
	if typ == nil {
		list := strings.Join(names, ", ")
		if n := len(names); n > 1 {
			list = strings.Join(names[:n-1], ", ") + " or " + names[n-1]
		}
		errs.add("databroker_storage_type", at("databroker_storage_type"), fmt.Sprintf("expected %s, got %q", list, o.DataBrokerStorageType))
		return
	}
	if typ.ValidateConnectionString == nil || !c.Runs(ServiceDataBroker) {
		return
	}
	conn := o.DataBrokerStorageConnectionString
	if conn == "" {
		errs.add("databroker_storage_connection_string", at("databroker_storage_type"), fmt.Sprintf("required when databroker_storage_type is %s (%s)", typ.Name, typ.ConnectionForms))
		return
	}
	if err := typ.ValidateConnectionString(conn); err != nil {
		line := at("databroker_storage_connection_string")
		if line == 0 {
			line = at("databroker_storage_connection_string_file")
		}
		errs.add("databroker_storage_connection_string", line, fmt.Sprintf("expected a %s connection string (%s): %v", typ.Name, typ.ConnectionForms, err))
	}
}
