package storage

import (
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"

	"crypto/rand"
	"encoding/binary"
	"fmt"
)

// ValidateRecords checks records passed to Put or Patch: each needs a type
// and an id, and a write that is not a delete needs data.
func ValidateRecords(records []*databrokerv1.Record) error {
	for i, r := range records {
		if r == nil {
			return fmt.Errorf("%w: record %d is null", ErrInvalid, i)
		}
		if r.GetType() == "" {
			return fmt.Errorf("%w: record %d has no type", ErrInvalid, i)
		}
		if r.GetId() == "" {
			return fmt.Errorf("%w: record %d has no id", ErrInvalid, i)
		}
		if r.GetDeletedAt() == nil && r.GetData() == nil {
			return fmt.Errorf("%w: record %d (%s/%s) has no data", ErrInvalid, i, r.GetType(), r.GetId())
		}
	}
	return nil
}

// NewServerVersion returns a random server version in [1, 2^63).
func NewServerVersion() uint64 {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic(err) // crypto/rand never fails on supported platforms
		}
		if v := binary.BigEndian.Uint64(b[:]) >> 1; v != 0 {
			return v
		}
	}
}
