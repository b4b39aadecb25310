// Package redis is the databroker storage driver on Redis (standalone,
// sentinel or cluster, through go-redis's UniversalClient). Several
// databroker replicas may share one Redis: versions are assigned by Lua
// scripts in Redis, server_version lives in Redis, and a pub/sub channel
// wakes every replica's Sync streams. See scripts.go for the key layout.
// The rules (TTL, capacity, leases, retention) are storage.Store's.
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// Tuning: Timeout, PollInterval and Logger, as every driver has them.
	storage.Tuning
}

func (o *Options) setDefaults() {
	if o.Prefix == "" {
		o.Prefix = "gatehouse"
	}
	o.Tuning.SetDefaults()
}

// pruneBudget caps the deletions of one prune script call.
const pruneBudget = 10000

// Type is the redis storage type.
var Type = storage.Type{
	Name:            "redis",
	Use:             "several databroker replicas (split or HA deployments) on Redis standalone, Sentinel or Cluster; run Redis with persistence",
	ConnectionForms: "redis://, rediss://, redis+sentinel:// or redis+cluster://",
	ValidateConnectionString: func(s string) error {
		c, err := NewClient(s)
		if err != nil {
			return err
		}
		return c.Close()
	},
	Open: func(_ context.Context, cfg storage.DriverConfig) (storage.Driver, error) {
		return NewDriver(Options{
			ConnectionString: cfg.ConnectionString,
			Prefix:           cfg.Namespace,
			Tuning:           storage.Tuning{Timeout: cfg.Timeout, PollInterval: cfg.PollInterval, Logger: cfg.Logger},
		})
	},
}

// Backend is the Redis storage driver. It is safe for concurrent use.
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
}

var _ storage.Driver = (*Backend)(nil)

// New returns a Store on a Redis driver for opts.
func New(opts Options, store storage.StoreOptions) (*storage.Store, error) {
	d, err := NewDriver(opts)
	if err != nil {
		return nil, err
	}
	return storage.NewStore(d, store), nil
}

// NewDriver returns a driver for opts.ConnectionString. It does not contact
// Redis (so a databroker starts while Redis is down); the first operation
// does, and installs the server version when the store has none.
func NewDriver(opts Options) (*Backend, error) {
	opts.setDefaults()
	quietOnce.Do(func() { goredis.SetLogger(debugLogger{opts.Logger}) })
	client, err := NewClient(opts.ConnectionString)
	if err != nil {
		return nil, err
	}
	return newBackend(client, opts), nil
}

// NewFromClient returns a driver on an existing client, which Close
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

// Versions implements storage.Driver.
func (b *Backend) Versions(ctx context.Context) (storage.Versions, error) {
	res, err := b.run(ctx, infoScript, b.keySV)
	if err != nil {
		return storage.Versions{}, b.wrap("info", err)
	}
	a := res.([]any)
	return storage.Versions{Server: parseUint(a[0]), Earliest: parseUint(a[1]), Latest: parseUint(a[2])}, nil
}

// Get implements storage.Driver.
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

// Append implements storage.Driver.
func (b *Backend) Append(ctx context.Context, writes []storage.Write, now time.Time) (uint64, []uint64, error) {
	args := make([]any, 0, 2+5*len(writes))
	args = append(args, strconv.FormatInt(now.UnixMicro(), 10), len(writes))
	for _, w := range writes {
		del := "0"
		if w.Delete {
			del = "1"
		}
		want := ""
		if w.Conditional {
			want = strconv.FormatUint(w.Version, 10)
		}
		payload, err := encodePayload(&databrokerv1.Record{Type: w.Type, Id: w.ID, Data: w.Data})
		if err != nil {
			return 0, nil, fmt.Errorf("%w: %v", storage.ErrInvalid, err)
		}
		args = append(args, w.Type, w.ID, del, want, payload)
	}
	res, err := b.run(ctx, appendScript, b.keySV, args...)
	if err != nil {
		if strings.Contains(err.Error(), "CONFLICT") {
			return 0, nil, storage.ErrConflict
		}
		return 0, nil, b.wrap("append", err)
	}
	a := res.([]any)
	versions := make([]uint64, len(writes))
	for i := range writes {
		versions[i] = parseUint(a[1+i])
	}
	return parseUint(a[0]), versions, nil
}

// scanType calls fn with every live record of typ, once each (HSCAN may
// return an entry twice while the hash is rehashed). The timeout bounds
// each HSCAN round trip, not the whole scan: a store of a million sessions
// takes longer than one timeout to stream to a catching-up replica, and
// must still be readable (issue 21).
func (b *Backend) scanType(ctx context.Context, typ string, fn func(*databrokerv1.Record) error) error {
	seen := map[string]struct{}{}
	key := b.prefix + ":records:" + typ
	var cursor uint64
	for {
		opCtx, cancel := b.op(ctx)
		kv, next, err := b.client.HScan(opCtx, key, cursor, "", 1000).Result()
		cancel()
		if err != nil {
			return b.wrap("scan", err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			id := kv[i]
			if _, dup := seen[id]; dup {
				continue
			}
			seen[id] = struct{}{}
			r, err := decode(kv[i+1])
			if err != nil {
				return err
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		if next == 0 {
			return b.wrap("scan", nil)
		}
		cursor = next
	}
}

// Records implements storage.Driver.
func (b *Backend) Records(ctx context.Context, typ string) ([]*databrokerv1.Record, error) {
	types := []string{typ}
	if typ == "" {
		var err error
		if types, err = b.Types(ctx); err != nil {
			return nil, err
		}
	}
	var out []*databrokerv1.Record
	for _, t := range types {
		err := b.scanType(ctx, t, func(r *databrokerv1.Record) error {
			out = append(out, r)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Oldest implements storage.Driver.
func (b *Backend) Oldest(ctx context.Context, typ string, limit int) ([]*databrokerv1.Record, error) {
	ctx, cancel := b.op(ctx)
	defer cancel()
	ids, err := b.client.ZRange(ctx, b.prefix+":order:"+typ, 0, int64(limit)-1).Result()
	if err != nil || len(ids) == 0 {
		return nil, b.wrap("oldest", err)
	}
	vals, err := b.client.HMGet(ctx, b.prefix+":records:"+typ, ids...).Result()
	if err != nil {
		return nil, b.wrap("oldest", err)
	}
	out := make([]*databrokerv1.Record, 0, len(vals))
	for _, v := range vals {
		if s, ok := v.(string); ok { // nil: deleted in between
			r, err := decode(s)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// Count implements storage.Driver.
func (b *Backend) Count(ctx context.Context, typ string) (int, error) {
	ctx, cancel := b.op(ctx)
	defer cancel()
	n, err := b.client.HLen(ctx, b.prefix+":records:"+typ).Result()
	return int(n), b.wrap("count", err)
}

// Types implements storage.Driver.
func (b *Backend) Types(ctx context.Context) ([]string, error) {
	ctx, cancel := b.op(ctx)
	defer cancel()
	types, err := b.client.SMembers(ctx, b.prefix+":types").Result()
	if err != nil {
		return nil, b.wrap("types", err)
	}
	return types, nil
}

// Changes implements storage.Driver.
func (b *Backend) Changes(ctx context.Context, serverVersion, after uint64, limit int) (*storage.ChangeBatch, error) {
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
		batch.Records = append(batch.Records, r)
	}
	return batch, nil
}

// Changed implements storage.Driver. The first call starts the pub/sub
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
		// wake-up then catches whatever was written before it.
		if _, err := ps.Receive(b.ctx); err == nil {
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
				// Coalesce a burst of publishes into one wake-up.
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
			b.notify.Broadcast()
		}
	}()
}

// Prune implements storage.Driver.
func (b *Backend) Prune(ctx context.Context, before time.Time, keep int) error {
	for {
		res, err := b.run(ctx, pruneScript, b.keySV, before.UnixMicro(), keep, pruneBudget)
		if err != nil {
			return b.wrap("prune", err)
		}
		if res.(int64) < pruneBudget {
			return nil
		}
	}
}

// Lease implements storage.Driver.
func (b *Backend) Lease(ctx context.Context, name string) (storage.Lease, error) {
	ctx, cancel := b.op(ctx)
	defer cancel()
	val, err := b.client.Get(ctx, b.prefix+":lease:"+name).Result()
	if errors.Is(err, goredis.Nil) {
		return storage.Lease{}, nil
	}
	if err != nil {
		return storage.Lease{}, b.wrap("lease", err)
	}
	exp, holder, _ := strings.Cut(val, "|")
	us, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return storage.Lease{}, fmt.Errorf("redis: malformed lease %s: %q", name, val)
	}
	return storage.Lease{Holder: holder, Expires: time.UnixMicro(us)}, nil
}

func encodeLease(l storage.Lease) string {
	if l.IsZero() {
		return ""
	}
	return strconv.FormatInt(l.Expires.UnixMicro(), 10) + "|" + l.Holder
}

// SwapLease implements storage.Driver.
func (b *Backend) SwapLease(ctx context.Context, name string, old, next storage.Lease) (bool, error) {
	ctx, cancel := b.op(ctx)
	defer cancel()
	res, err := swapLeaseScript.Run(ctx, b.client, []string{b.prefix + ":lease:" + name}, encodeLease(old), encodeLease(next)).Int64()
	if err != nil {
		return false, b.wrap("swap lease", err)
	}
	b.reachable()
	return res == 1, nil
}

// SetTypeOptions implements storage.Driver.
func (b *Backend) SetTypeOptions(ctx context.Context, typ string, opts *databrokerv1.Options) error {
	raw, err := proto.Marshal(opts)
	if err != nil {
		return fmt.Errorf("%w: %v", storage.ErrInvalid, err)
	}
	ctx, cancel := b.op(ctx)
	defer cancel()
	_, err = b.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.HSet(ctx, b.prefix+":options", typ, raw)
		p.SAdd(ctx, b.prefix+":types", typ)
		return nil
	})
	return b.wrap("set options", err)
}

// TypeOptions implements storage.Driver.
func (b *Backend) TypeOptions(ctx context.Context) (map[string]*databrokerv1.Options, error) {
	ctx, cancel := b.op(ctx)
	defer cancel()
	all, err := b.client.HGetAll(ctx, b.prefix+":options").Result()
	if err != nil {
		return nil, b.wrap("options", err)
	}
	out := make(map[string]*databrokerv1.Options, len(all))
	for typ, raw := range all {
		o := &databrokerv1.Options{}
		if err := proto.Unmarshal([]byte(raw), o); err != nil {
			return nil, fmt.Errorf("redis: malformed options of %s: %w", typ, err)
		}
		out[typ] = o
	}
	return out, nil
}

// Ping implements storage.Driver.
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
