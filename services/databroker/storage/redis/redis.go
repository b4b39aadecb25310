// Package redis is the databroker storage backend on Redis (standalone,
// sentinel or cluster, through go-redis's UniversalClient). Several
// databroker replicas may share one Redis: versions are assigned by Lua
// scripts in Redis, server_version lives in Redis, and a pub/sub channel
// wakes every replica's Sync streams. See scripts.go for the key layout.
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	"github.com/gatehouse/gatehouse/services/databroker/storage"
)

// Options configure a Redis backend.
type Options struct {
	// ConnectionString is the Redis URL; see NewClient for the forms.
	ConnectionString string
	// Prefix names the hash tag all keys live under (default "gatehouse",
	// giving keys "{gatehouse}:..."). Stores with different prefixes on one
	// Redis are independent.
	Prefix string
	// Timeout bounds every Redis operation (default 5s); past it the call
	// fails with storage.ErrUnavailable.
	Timeout time.Duration
	// Retention is how long the change log keeps a change (default 1h).
	Retention time.Duration
	// MaxChanges caps the change log's length (default 1,000,000).
	MaxChanges int
	// PollInterval is the safety poll that wakes Sync streams even when a
	// pub/sub message was lost, e.g. across a reconnect (default 2s).
	PollInterval time.Duration
	// Logger receives connection problems (default slog.Default()).
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.Prefix == "" {
		o.Prefix = "gatehouse"
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Retention <= 0 {
		o.Retention = time.Hour
	}
	if o.MaxChanges <= 0 {
		o.MaxChanges = 1_000_000
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// sweepBudget caps the deletions of one sweep script call.
const sweepBudget = 10000

// Backend is the Redis storage backend. It is safe for concurrent use.
type Backend struct {
	opts    Options
	client  goredis.UniversalClient
	prefix  string // "{name}"
	keySV   []string
	channel string
	notify  storage.Notifier

	ctx    context.Context // ends on Close; the subscriber runs under it
	cancel context.CancelFunc
	once   sync.Once
	wg     sync.WaitGroup
	down   atomic.Bool // logs only the transitions between reachable and not
	tail   tail
}

var _ storage.Backend = (*Backend)(nil)

// New returns a backend for opts.ConnectionString. It does not contact
// Redis (so a databroker starts while Redis is down); the first operation
// does, and installs the server version when the store has none.
func New(opts Options) (*Backend, error) {
	opts.setDefaults()
	quietOnce.Do(func() { goredis.SetLogger(debugLogger{opts.Logger}) })
	client, err := NewClient(opts.ConnectionString)
	if err != nil {
		return nil, err
	}
	return newBackend(client, opts), nil
}

// NewFromClient returns a backend on an existing client, which Close
// closes.
func NewFromClient(client goredis.UniversalClient, opts Options) *Backend {
	opts.setDefaults()
	return newBackend(client, opts)
}

func newBackend(client goredis.UniversalClient, opts Options) *Backend {
	ctx, cancel := context.WithCancel(context.Background())
	p := "{" + opts.Prefix + "}"
	return &Backend{
		opts:    opts,
		client:  client,
		prefix:  p,
		keySV:   []string{p + ":server_version"},
		channel: p + ":changes",
		ctx:     ctx,
		cancel:  cancel,
	}
}

// op bounds one Redis operation by the configured timeout.
func (b *Backend) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.opts.Timeout)
}

// reachable notes a successful round trip.
func (b *Backend) reachable() {
	if b.down.Load() && b.down.CompareAndSwap(true, false) {
		b.opts.Logger.Info("databroker: redis reachable again")
	}
}

// unavailable logs a connection problem (at warning level once per outage)
// and returns it as storage.ErrUnavailable.
func (b *Backend) unavailable(what string, err error) error {
	if b.down.CompareAndSwap(false, true) {
		b.opts.Logger.Warn("databroker: redis unreachable; writes fail with UNAVAILABLE until it is back", "op", what, "error", err.Error())
	} else {
		b.opts.Logger.Debug("databroker: redis still unreachable", "op", what, "error", err.Error())
	}
	return fmt.Errorf("%w: redis %s: %v", storage.ErrUnavailable, what, err)
}

// wrap classifies a go-redis error: connection problems and timeouts
// become storage.ErrUnavailable.
func (b *Backend) wrap(what string, err error) error {
	if err == nil {
		b.reachable()
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var rerr goredis.Error
	if errors.As(err, &rerr) && !errors.Is(err, context.DeadlineExceeded) {
		msg := rerr.Error()
		for _, transient := range []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "NOREPLICAS"} {
			if strings.HasPrefix(msg, transient) {
				return b.unavailable(what, err)
			}
		}
		return fmt.Errorf("redis %s: %w", what, err)
	}
	return b.unavailable(what, err)
}

func (b *Backend) run(ctx context.Context, s *goredis.Script, keys []string, args ...any) (any, error) {
	ctx, cancel := b.op(ctx)
	defer cancel()
	res, err := s.Run(ctx, b.client, keys, append([]any{b.prefix, strconv.FormatUint(storage.NewServerVersion(), 10)}, args...)...).Result()
	if err == nil {
		b.reachable()
	}
	return res, err
}

// encodePayload is the protobuf of a record's type, id and data.
func encodePayload(r *databrokerv1.Record) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(&databrokerv1.Record{Type: r.GetType(), Id: r.GetId(), Data: r.GetData()})
}

// decode parses "<version>|<modified µs>|<deleted µs>|<protobuf>".
func decode(val string) (*databrokerv1.Record, error) {
	parts := strings.SplitN(val, "|", 4)
	if len(parts) != 4 {
		return nil, fmt.Errorf("redis: malformed record %.40q", val)
	}
	v, err1 := strconv.ParseUint(parts[0], 10, 64)
	mod, err2 := strconv.ParseInt(parts[1], 10, 64)
	del, err3 := strconv.ParseInt(parts[2], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, fmt.Errorf("redis: malformed record header %q: %w", parts[0]+"|"+parts[1]+"|"+parts[2], err)
	}
	r := &databrokerv1.Record{}
	if err := proto.Unmarshal([]byte(parts[3]), r); err != nil {
		return nil, fmt.Errorf("redis: malformed record protobuf: %w", err)
	}
	r.Version = v
	r.ModifiedAt = timestamppb.New(time.UnixMicro(mod))
	if del != 0 {
		r.DeletedAt = timestamppb.New(time.UnixMicro(del))
	}
	return r, nil
}

func parseUint(v any) uint64 {
	switch x := v.(type) {
	case string:
		n, _ := strconv.ParseUint(x, 10, 64)
		return n
	case int64:
		return uint64(x)
	}
	return 0
}

// ServerVersion implements storage.Backend.
func (b *Backend) ServerVersion(ctx context.Context) (uint64, error) {
	vs, err := b.Versions(ctx)
	return vs.Server, err
}

// Versions implements storage.Backend.
func (b *Backend) Versions(ctx context.Context) (storage.Versions, error) {
	res, err := b.run(ctx, infoScript, b.keySV)
	if err != nil {
		return storage.Versions{}, b.wrap("info", err)
	}
	a := res.([]any)
	return storage.Versions{Server: parseUint(a[0]), Earliest: parseUint(a[1]), Latest: parseUint(a[2])}, nil
}

// Get implements storage.Backend.
func (b *Backend) Get(ctx context.Context, typ, id string) (*databrokerv1.Record, error) {
	ctx, cancel := b.op(ctx)
	defer cancel()
	val, err := b.client.HGet(ctx, b.prefix+":records:"+typ, id).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("%w: %s/%s", storage.ErrNotFound, typ, id)
	}
	if err != nil {
		return nil, b.wrap("get", err)
	}
	b.reachable()
	return decode(val)
}

// Put implements storage.Backend.
func (b *Backend) Put(ctx context.Context, records []*databrokerv1.Record) (uint64, []*databrokerv1.Record, error) {
	if err := storage.ValidateRecords(records); err != nil {
		return 0, nil, err
	}
	return b.put(ctx, records, nil)
}

// put runs the put script; expect, when set, holds the version each record
// must have ("0": absent).
func (b *Backend) put(ctx context.Context, records []*databrokerv1.Record, expect []uint64) (uint64, []*databrokerv1.Record, error) {
	if len(records) == 0 {
		sv, err := b.ServerVersion(ctx)
		return sv, nil, err
	}
	args := make([]any, 0, 1+5*len(records))
	args = append(args, len(records))
	for i, r := range records {
		del := "0"
		if r.GetDeletedAt() != nil {
			del = "1"
		}
		want := ""
		if expect != nil {
			want = strconv.FormatUint(expect[i], 10)
		}
		payload, err := encodePayload(r)
		if err != nil {
			return 0, nil, fmt.Errorf("%w: %v", storage.ErrInvalid, err)
		}
		args = append(args, r.GetType(), r.GetId(), del, want, payload)
	}
	res, err := b.run(ctx, putScript, b.keySV, args...)
	if err != nil {
		if strings.Contains(err.Error(), "CONFLICT") {
			return 0, nil, storage.ErrConflict
		}
		return 0, nil, b.wrap("put", err)
	}
	a := res.([]any)
	sv := parseUint(a[0])
	mod, _ := strconv.ParseInt(a[1].(string), 10, 64)
	ts := timestamppb.New(time.UnixMicro(mod))
	out := make([]*databrokerv1.Record, len(records))
	for i, r := range records {
		out[i] = &databrokerv1.Record{Type: r.GetType(), Id: r.GetId(), Data: r.GetData(), Version: parseUint(a[2+i]), ModifiedAt: ts}
		if r.GetDeletedAt() != nil {
			out[i].DeletedAt = ts
		}
	}
	return sv, out, nil
}

// Patch implements storage.Backend: an optimistic read-modify-write that
// retries when a concurrent write changed a record in between.
func (b *Backend) Patch(ctx context.Context, records []*databrokerv1.Record, paths []string) (uint64, []*databrokerv1.Record, error) {
	if err := storage.ValidateRecords(records); err != nil {
		return 0, nil, err
	}
	for attempt := 0; ; attempt++ {
		var patched []*databrokerv1.Record
		var expect []uint64
		for _, r := range records {
			cur, err := b.Get(ctx, r.GetType(), r.GetId())
			if errors.Is(err, storage.ErrNotFound) {
				continue
			} else if err != nil {
				return 0, nil, err
			}
			data, err := storage.ApplyFieldMask(cur.GetData(), r.GetData(), paths)
			if err != nil {
				return 0, nil, err
			}
			patched = append(patched, &databrokerv1.Record{Type: r.GetType(), Id: r.GetId(), Data: data})
			expect = append(expect, cur.GetVersion())
		}
		if len(patched) == 0 {
			sv, err := b.ServerVersion(ctx)
			return sv, nil, err
		}
		sv, out, err := b.put(ctx, patched, expect)
		if errors.Is(err, storage.ErrConflict) && attempt < 20 {
			continue
		}
		return sv, out, err
	}
}

// scanType calls fn with every live record of typ, once each (HSCAN may
// return an entry twice while the hash is rehashed).
func (b *Backend) scanType(ctx context.Context, typ string, fn func(*databrokerv1.Record) error) error {
	ctx, cancel := b.op(ctx)
	defer cancel()
	seen := map[string]struct{}{}
	iter := b.client.HScan(ctx, b.prefix+":records:"+typ, 0, "", 1000).Iterator()
	for iter.Next(ctx) {
		id := iter.Val()
		if !iter.Next(ctx) { // field, then value
			break
		}
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		r, err := decode(iter.Val())
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return b.wrap("scan", iter.Err())
}

// Query implements storage.Backend. It scans the type's records: Redis
// keeps no secondary index, queries are not on a hot path.
func (b *Backend) Query(ctx context.Context, q storage.Query) (*storage.QueryResult, error) {
	if err := storage.ValidateFilter(q.Filter); err != nil {
		return nil, err
	}
	q.Text = strings.ToLower(q.Text)
	vs, err := b.Versions(ctx)
	if err != nil {
		return nil, err
	}
	var matches []*databrokerv1.Record
	err = b.scanType(ctx, q.Type, func(r *databrokerv1.Record) error {
		if storage.Match(&q, r.GetId(), storage.ExtractIndex(r.GetData())) {
			matches = append(matches, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res := &storage.QueryResult{ServerVersion: vs.Server, RecordVersion: vs.Latest}
	res.Records, res.TotalCount = storage.Page(&q, matches)
	return res, nil
}

// ListTypes implements storage.Backend.
func (b *Backend) ListTypes(ctx context.Context) ([]string, error) {
	ctx, cancel := b.op(ctx)
	defer cancel()
	types, err := b.client.SMembers(ctx, b.prefix+":types").Result()
	if err != nil {
		return nil, b.wrap("types", err)
	}
	sort.Strings(types)
	return types, nil
}

// Changes implements storage.Backend.
// Streams that keep up are served from the replica's tail of recent
// changes (one Redis read per write for the whole replica, not one per
// stream); others read Redis.
func (b *Backend) Changes(ctx context.Context, serverVersion uint64, typ string, after uint64, limit int) (*storage.ChangeBatch, error) {
	if limit <= 0 {
		limit = 1000
	}
	if batch, ok := b.tail.changes(serverVersion, typ, after, limit); ok {
		return batch, nil
	}
	return b.changesFromRedis(ctx, serverVersion, typ, after, limit)
}

func (b *Backend) changesFromRedis(ctx context.Context, serverVersion uint64, typ string, after uint64, limit int) (*storage.ChangeBatch, error) {
	res, err := b.run(ctx, changesScript, b.keySV, strconv.FormatUint(serverVersion, 10), strconv.FormatUint(after, 10), limit)
	if err != nil {
		return nil, b.wrap("changes", err)
	}
	a := res.([]any)
	switch a[0] {
	case "MISMATCH":
		return nil, fmt.Errorf("%w: got %d, store has %s", storage.ErrServerVersionMismatch, serverVersion, a[1])
	case "TOOOLD":
		return nil, fmt.Errorf("%w: asked for changes after %d, earliest retained is after %s", storage.ErrVersionTooOld, after, a[1])
	}
	vals := a[2].([]any)
	batch := &storage.ChangeBatch{Through: max(after, parseUint(a[1])), More: len(vals) == limit}
	for _, v := range vals {
		r, err := decode(v.(string))
		if err != nil {
			return nil, err
		}
		if batch.More {
			batch.Through = r.GetVersion()
		}
		if typ == "" || r.GetType() == typ {
			batch.Records = append(batch.Records, r)
		}
	}
	return batch, nil
}

// Changed implements storage.Backend. The first call starts the pub/sub
// subscriber, which runs until Close.
func (b *Backend) Changed() <-chan struct{} {
	b.once.Do(b.subscribe)
	return b.notify.C()
}

func (b *Backend) subscribe() {
	ps := b.client.Subscribe(b.ctx, b.channel)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer ps.Close()
		// Once the subscription is confirmed no publish is missed; the
		// refresh then catches whatever was written before it.
		if _, err := ps.Receive(b.ctx); err == nil {
			b.tail.refresh(b.ctx, b)
			b.notify.Broadcast()
		}
		msgs := ps.Channel()
		poll := time.NewTicker(b.opts.PollInterval)
		defer poll.Stop()
		for {
			select {
			case <-b.ctx.Done():
				return
			case _, ok := <-msgs:
				if !ok {
					return
				}
				// Coalesce a burst of publishes into one read.
				for drained := false; !drained; {
					select {
					case <-msgs:
					default:
						drained = true
					}
				}
			case <-poll.C:
				// A publish lost while the connection was down is caught here.
			}
			b.tail.refresh(b.ctx, b)
			b.notify.Broadcast()
		}
	}()
}

// Latest implements storage.Backend. It reads the versions first, then
// scans: records written meanwhile may be newer than the versions, and
// Sync from them replays those writes harmlessly.
func (b *Backend) Latest(ctx context.Context, typ string) ([]*databrokerv1.Record, storage.Versions, error) {
	vs, err := b.Versions(ctx)
	if err != nil {
		return nil, vs, err
	}
	types := []string{typ}
	if typ == "" {
		if types, err = b.ListTypes(ctx); err != nil {
			return nil, vs, err
		}
	}
	var out []*databrokerv1.Record
	for _, t := range types {
		err := b.scanType(ctx, t, func(r *databrokerv1.Record) error {
			out = append(out, r)
			return nil
		})
		if err != nil {
			return nil, vs, err
		}
	}
	return out, vs, nil
}

// AcquireLease implements storage.Backend.
func (b *Backend) AcquireLease(ctx context.Context, name, id string, ttl time.Duration) error {
	res, err := b.run(ctx, acquireScript, []string{b.prefix + ":lease:" + name}, name, id, max(ttl.Milliseconds(), 1))
	if err != nil {
		return b.wrap("acquire lease", err)
	}
	if res.(int64) != 1 {
		return fmt.Errorf("%w: %s", storage.ErrLeaseHeld, name)
	}
	return nil
}

// RenewLease implements storage.Backend.
func (b *Backend) RenewLease(ctx context.Context, name, id string, ttl time.Duration) error {
	res, err := b.run(ctx, renewScript, []string{b.prefix + ":lease:" + name}, name, id, max(ttl.Milliseconds(), 1))
	if err != nil {
		return b.wrap("renew lease", err)
	}
	switch res.(int64) {
	case 0:
		return fmt.Errorf("%w: %s", storage.ErrLeaseNotHeld, name)
	case -1:
		return fmt.Errorf("%w: %s", storage.ErrLeaseHeld, name)
	}
	return nil
}

// ReleaseLease implements storage.Backend.
func (b *Backend) ReleaseLease(ctx context.Context, name, id string) error {
	_, err := b.run(ctx, releaseScript, []string{b.prefix + ":lease:" + name}, name, id)
	return b.wrap("release lease", err)
}

// SetOptions implements storage.Backend.
func (b *Backend) SetOptions(ctx context.Context, typ string, opts *databrokerv1.Options) error {
	if typ == "" {
		return fmt.Errorf("%w: options need a type", storage.ErrInvalid)
	}
	raw, err := proto.Marshal(opts)
	if err != nil {
		return fmt.Errorf("%w: %v", storage.ErrInvalid, err)
	}
	var ttl int64
	if opts.GetTtl() != nil {
		ttl = max(opts.GetTtl().AsDuration().Milliseconds(), 0)
	}
	_, err = b.run(ctx, setOptionsScript, b.keySV, typ, raw, ttl, strconv.FormatUint(opts.GetCapacity(), 10))
	return b.wrap("set options", err)
}

// GetOptions implements storage.Backend.
func (b *Backend) GetOptions(ctx context.Context, typ string) (*databrokerv1.Options, error) {
	ctx, cancel := b.op(ctx)
	defer cancel()
	raw, err := b.client.HGet(ctx, b.prefix+":options", typ).Bytes()
	opts := &databrokerv1.Options{}
	if errors.Is(err, goredis.Nil) {
		return opts, nil
	}
	if err != nil {
		return nil, b.wrap("get options", err)
	}
	if err := proto.Unmarshal(raw, opts); err != nil {
		return nil, fmt.Errorf("redis: malformed options of %s: %w", typ, err)
	}
	return opts, nil
}

// Sweep implements storage.Backend.
func (b *Backend) Sweep(ctx context.Context) error {
	for {
		res, err := b.run(ctx, sweepScript, b.keySV, b.opts.Retention.Milliseconds(), b.opts.MaxChanges, sweepBudget)
		if err != nil {
			return b.wrap("sweep", err)
		}
		if res.(int64) < sweepBudget {
			return nil
		}
	}
}

// Ping implements storage.Backend.
func (b *Backend) Ping(ctx context.Context) error {
	ctx, cancel := b.op(ctx)
	defer cancel()
	return b.wrap("ping", b.client.Ping(ctx).Err())
}

// Close stops the subscriber and closes the client.
func (b *Backend) Close() error {
	b.cancel()
	b.wg.Wait()
	return b.client.Close()
}

var quietOnce sync.Once

// debugLogger routes go-redis's internal logging (a dial failure per
// attempt while Redis is down) to debug level; the backend logs outages
// itself, once each. go-redis's logger is process-wide, so the first
// backend's logger is used.
type debugLogger struct{ log *slog.Logger }

func (l debugLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Debug("go-redis: " + fmt.Sprintf(format, v...))
}
