package autocert

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/gatehouse/gatehouse/pkg/cryptutil"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
)

// RecordType is the databroker record type of autocert's files; the
// record id is "autocert/" + the certmagic key.
const RecordType = "type.googleapis.com/google.protobuf.BytesValue"

const (
	idPrefix    = "autocert/"
	leasePrefix = "autocert-lock/"
	// lockTTL is how long an order lock lives unless renewed; a replica
	// that dies holding one frees it within that time.
	lockTTL = time.Minute
	// lockPoll is how often a replica waiting for a lock tries again.
	lockPoll = 500 * time.Millisecond
)

// DataBrokerStorage is a certmagic.Storage kept in the databroker: the
// files are records, the locks are leases. Every proxy replica of a split
// deployment given one reads the same account and certificates, and only
// the replica holding an order's lock orders it: the others wait, then
// load what it stored. It is safe for concurrent use.
type DataBrokerStorage struct {
	client databrokerv1.DataBrokerServiceClient
	holder string // lease holder id of this process

	mu    sync.Mutex
	locks map[string]heldLock
}

// heldLock is a lock this process holds: its lease holder id (one per
// Lock call, so that two goroutines of one process exclude each other too)
// and what stops its renewal.
type heldLock struct {
	id     string
	cancel context.CancelFunc
}

var _ certmagic.Storage = (*DataBrokerStorage)(nil)

// NewDataBrokerStorage returns storage in the databroker behind client.
func NewDataBrokerStorage(client databrokerv1.DataBrokerServiceClient) *DataBrokerStorage {
	return &DataBrokerStorage{client: client, holder: "autocert-" + cryptutil.RandomToken(12), locks: map[string]heldLock{}}
}

// Store implements certmagic.Storage.
func (s *DataBrokerStorage) Store(ctx context.Context, key string, value []byte) error {
	data, err := anypb.New(wrapperspb.Bytes(value))
	if err != nil {
		return err
	}
	_, err = s.client.Put(ctx, &databrokerv1.PutRequest{Records: []*databrokerv1.Record{{Type: RecordType, Id: idPrefix + key, Data: data}}})
	if err != nil {
		return fmt.Errorf("autocert storage: store %s: %w", key, err)
	}
	return nil
}

func (s *DataBrokerStorage) get(ctx context.Context, key string) (*databrokerv1.Record, []byte, error) {
	res, err := s.client.Get(ctx, &databrokerv1.GetRequest{Type: RecordType, Id: idPrefix + key})
	if status.Code(err) == codes.NotFound {
		return nil, nil, fs.ErrNotExist
	}
	if err != nil {
		return nil, nil, fmt.Errorf("autocert storage: load %s: %w", key, err)
	}
	var b wrapperspb.BytesValue
	if err := res.GetRecord().GetData().UnmarshalTo(&b); err != nil {
		return nil, nil, fmt.Errorf("autocert storage: load %s: %w", key, err)
	}
	return res.GetRecord(), b.GetValue(), nil
}

// Load implements certmagic.Storage; a missing key is fs.ErrNotExist.
func (s *DataBrokerStorage) Load(ctx context.Context, key string) ([]byte, error) {
	_, b, err := s.get(ctx, key)
	return b, err
}

// Delete implements certmagic.Storage (a key and everything under it).
func (s *DataBrokerStorage) Delete(ctx context.Context, key string) error {
	keys, err := s.List(ctx, key, true)
	if err != nil {
		return err
	}
	keys = append(keys, key)
	recs := make([]*databrokerv1.Record, 0, len(keys))
	for _, k := range keys {
		recs = append(recs, &databrokerv1.Record{Type: RecordType, Id: idPrefix + k, DeletedAt: timestamppb.Now()})
	}
	if _, err := s.client.Put(ctx, &databrokerv1.PutRequest{Records: recs}); err != nil {
		return fmt.Errorf("autocert storage: delete %s: %w", key, err)
	}
	return nil
}

// Exists implements certmagic.Storage.
func (s *DataBrokerStorage) Exists(ctx context.Context, key string) bool {
	_, _, err := s.get(ctx, key)
	return err == nil
}

// List implements certmagic.Storage.
func (s *DataBrokerStorage) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	res, err := s.client.Query(ctx, &databrokerv1.QueryRequest{Type: RecordType, Query: idPrefix + prefix})
	if err != nil {
		return nil, fmt.Errorf("autocert storage: list %s: %w", prefix, err)
	}
	dir := strings.TrimSuffix(prefix, "/") + "/"
	var out []string
	for _, r := range res.GetRecords() {
		key := strings.TrimPrefix(r.GetId(), idPrefix)
		if !strings.HasPrefix(key, dir) || r.GetDeletedAt() != nil {
			continue
		}
		if !recursive {
			rest := strings.TrimPrefix(key, dir)
			first, _, _ := strings.Cut(rest, "/")
			key = path.Join(dir, first)
		}
		if !slices.Contains(out, key) {
			out = append(out, key)
		}
	}
	if len(out) == 0 {
		return nil, fs.ErrNotExist
	}
	return out, nil
}

// Stat implements certmagic.Storage.
func (s *DataBrokerStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	r, b, err := s.get(ctx, key)
	if err != nil {
		return certmagic.KeyInfo{}, err
	}
	return certmagic.KeyInfo{Key: key, Modified: r.GetModifiedAt().AsTime(), Size: int64(len(b)), IsTerminal: true}, nil
}

// Lock implements certmagic.Locker with a databroker lease: it waits
// (until ctx ends) while another replica holds name, and renews the lease
// while this one holds it.
func (s *DataBrokerStorage) Lock(ctx context.Context, name string) error {
	id := s.holder + "-" + cryptutil.RandomToken(6)
	for {
		_, err := s.client.AcquireLease(ctx, &databrokerv1.AcquireLeaseRequest{
			Name: leasePrefix + name, Duration: durationpb.New(lockTTL), Id: id,
		})
		if err == nil {
			break
		}
		if c := status.Code(err); c != codes.AlreadyExists && c != codes.FailedPrecondition && c != codes.Aborted && c != codes.ResourceExhausted && c != codes.Unavailable {
			return fmt.Errorf("autocert storage: lock %s: %w", name, err)
		}
		t := time.NewTimer(lockPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	rctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	if old, ok := s.locks[name]; ok {
		old.cancel()
	}
	s.locks[name] = heldLock{id: id, cancel: cancel}
	s.mu.Unlock()
	go func() {
		tick := time.NewTicker(lockTTL / 3)
		defer tick.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-tick.C:
				_, _ = s.client.RenewLease(rctx, &databrokerv1.RenewLeaseRequest{Name: leasePrefix + name, Id: id, Duration: durationpb.New(lockTTL)})
			}
		}
	}()
	return nil
}

// Unlock implements certmagic.Locker.
func (s *DataBrokerStorage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	held, ok := s.locks[name]
	delete(s.locks, name)
	s.mu.Unlock()
	if !ok {
		return nil
	}
	held.cancel()
	if _, err := s.client.ReleaseLease(ctx, &databrokerv1.ReleaseLeaseRequest{Name: leasePrefix + name, Id: held.id}); err != nil {
		return fmt.Errorf("autocert storage: unlock %s: %w", name, err)
	}
	return nil
}
