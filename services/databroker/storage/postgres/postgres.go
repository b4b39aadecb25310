// Package postgres is the databroker storage driver on PostgreSQL (through
// pgx's pgxpool). Several databroker replicas may share one database:
// versions come from a sequence advanced in the writing transaction,
// server_version lives in the database, and LISTEN/NOTIFY (with a safety
// poll) wakes every replica's Sync streams. See schema.go for the tables.
// The rules (TTL, capacity, leases, retention) are storage.Store's.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	"github.com/gatehouse/gatehouse/services/databroker/storage"
)

// ConnectionForms are the connection strings the driver takes.
const ConnectionForms = "postgres://user:password@host:5432/database?sslmode=require, postgresql://..., or key=value pairs (host=... dbname=... sslmode=...)"

// Type is the postgres storage type.
var Type = storage.Type{
	Name:                     "postgres",
	Use:                      "several databroker replicas (split or HA deployments) on PostgreSQL, as Pomerium's HA deployments run; the most durable choice",
	ConnectionForms:          ConnectionForms,
	ValidateConnectionString: ValidateConnectionString,
	Open: func(ctx context.Context, cfg storage.DriverConfig) (storage.Driver, error) {
		return Open(ctx, Options{
			ConnectionString: cfg.ConnectionString,
			Schema:           cfg.Namespace,
			Tuning:           storage.Tuning{Timeout: cfg.Timeout, PollInterval: cfg.PollInterval, Logger: cfg.Logger},
		})
	},
}

// ValidateConnectionString checks a connection string as Pomerium takes
// it (a postgres:// or postgresql:// URL, or key=value pairs; sslmode and
// the other libpq parameters) without connecting.
func ValidateConnectionString(s string) error {
	if scheme, _, ok := strings.Cut(s, "://"); ok {
		if scheme != "postgres" && scheme != "postgresql" {
			return fmt.Errorf("unsupported scheme %q (want postgres:// or postgresql://)", scheme)
		}
		if _, err := url.Parse(s); err != nil {
			return errors.New("not a valid URL") // url's error would quote the password
		}
	} else if !strings.Contains(s, "=") {
		return errors.New("want a postgres:// URL or key=value pairs")
	}
	if _, err := pgxpool.ParseConfig(s); err != nil {
		return err // pgx leaves the password out
	}
	return nil
}

// Options configure a Postgres driver.
type Options struct {
	// ConnectionString is a postgres:// URL or key=value pairs
	// (pool_max_conns and the other pgxpool parameters pass through).
	ConnectionString string
	// Schema holds the tables (default "gatehouse"). Stores in different
	// schemas of one database are independent.
	Schema string
	// Tuning: Timeout, PollInterval and Logger, as every driver has them.
	storage.Tuning
}

func (o *Options) setDefaults() {
	if o.Schema == "" {
		o.Schema = "gatehouse"
	}
	o.Tuning.SetDefaults()
}

// Driver is the PostgreSQL storage driver. It is safe for concurrent use.
type Driver struct {
	opts    Options
	pool    *pgxpool.Pool
	schema  string
	q       queries
	tag     int64
	channel string
	log     *slog.Logger
	notify  storage.Notifier
	types   sync.Map // type -> struct{}: known to be in the types table

	ctx     context.Context // ends on Close; the listener runs under it
	cancel  context.CancelFunc
	once    sync.Once
	wg      sync.WaitGroup
	down    atomic.Bool // logs only the transitions between reachable and not
	missing atomic.Bool // the schema vanished (a wiped database): migrate again
}

var _ storage.Driver = (*Driver)(nil)

// New returns a Store on a Postgres driver for opts.
func New(ctx context.Context, opts Options, store storage.StoreOptions) (*storage.Store, error) {
	d, err := Open(ctx, opts)
	if err != nil {
		return nil, err
	}
	return storage.NewStore(d, store), nil
}

// Open connects to PostgreSQL and creates or migrates the schema. A wrong
// password, a missing database or an unreachable server fails here, with
// an error naming databroker_storage_connection_string.
func Open(ctx context.Context, opts Options) (*Driver, error) {
	opts.setDefaults()
	if err := ValidateConnectionString(opts.ConnectionString); err != nil {
		return nil, fmt.Errorf("databroker_storage_connection_string: %w", err)
	}
	cfg, err := pgxpool.ParseConfig(opts.ConnectionString)
	if err != nil {
		return nil, fmt.Errorf("databroker_storage_connection_string: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > opts.Timeout {
		cfg.ConnConfig.ConnectTimeout = opts.Timeout
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "gatehouse-databroker"
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("databroker_storage_connection_string: %w", err)
	}
	lctx, cancel := context.WithCancel(context.Background())
	d := &Driver{
		opts:    opts,
		pool:    pool,
		schema:  opts.Schema,
		q:       newQueries(opts.Schema),
		tag:     storeTag(opts.Schema),
		channel: opts.Schema + "_changes",
		log:     opts.Logger,
		ctx:     lctx,
		cancel:  cancel,
	}
	mctx, mcancel := context.WithTimeout(ctx, 2*opts.Timeout)
	defer mcancel()
	if err := d.migrate(mctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("databroker_storage_connection_string: postgres at %s: %w", describe(cfg), err)
	}
	return d, nil
}

// describe names the server and database of cfg, without credentials.
func describe(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("%s:%d database %q user %q", c.Host, c.Port, c.Database, c.User)
}

// op bounds one operation by the configured timeout; when the schema
// vanished it creates it again first.
func (d *Driver) op(ctx context.Context) (context.Context, context.CancelFunc, error) {
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	if d.missing.Load() {
		if err := d.migrate(ctx); err != nil {
			cancel()
			return nil, nil, d.wrap("migrate", err)
		}
		d.missing.Store(false)
		d.log.Warn("databroker: postgres schema was gone and is created again with a new server version; clients resync", "schema", d.schema)
	}
	return ctx, cancel, nil
}

// wrap classifies an error: connection problems, timeouts and a server
// that shuts down become storage.ErrUnavailable; a failed version check
// storage.ErrConflict.
func (d *Driver) wrap(what string, err error) error {
	if err == nil {
		if d.down.Load() && d.down.CompareAndSwap(true, false) {
			d.log.Info("databroker: postgres reachable again")
		}
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "40001" || pgErr.Code == "40P01": // serialization failure, deadlock
			return fmt.Errorf("%w: %s", storage.ErrConflict, pgErr.Message)
		case pgErr.Code == "42P01" || pgErr.Code == "3F000" || pgErr.Code == "42883": // table, schema, function gone
			d.missing.Store(true)
			return d.unavailable(what, err)
		case strings.HasPrefix(pgErr.Code, "08"), strings.HasPrefix(pgErr.Code, "57P"), pgErr.Code == "53300", pgErr.Code == "25006":
			return d.unavailable(what, err)
		}
		return fmt.Errorf("postgres %s: %w", what, err)
	}
	return d.unavailable(what, err)
}

// unavailable logs a connection problem (at warning level once per outage)
// and returns it as storage.ErrUnavailable.
func (d *Driver) unavailable(what string, err error) error {
	if d.down.CompareAndSwap(false, true) {
		d.log.Warn("databroker: postgres unreachable; writes fail with UNAVAILABLE until it is back", "op", what, "error", err.Error())
	} else {
		d.log.Debug("databroker: postgres still unreachable", "op", what, "error", err.Error())
	}
	return fmt.Errorf("%w: postgres %s: %v", storage.ErrUnavailable, what, err)
}

// retry runs a read, once more when it failed on a connection that the
// server had closed (after a PostgreSQL restart the pool still holds them).
func (d *Driver) retry(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	ctx, cancel, err := d.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	err = fn(ctx)
	if err != nil && ctx.Err() == nil && isConnError(err) {
		err = fn(ctx)
	}
	return d.wrap(what, err)
}

func isConnError(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P")
	}
	return !errors.Is(err, pgx.ErrNoRows)
}

func marshalData(a *anypb.Any) ([]byte, error) {
	if a == nil {
		return nil, nil
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", storage.ErrInvalid, err)
	}
	if b == nil {
		b = []byte{} // an empty Any is data, not a missing one
	}
	return b, nil
}

func record(typ, id string, version uint64, modified int64, deleted bool, data []byte) (*databrokerv1.Record, error) {
	r := &databrokerv1.Record{Type: typ, Id: id, Version: version, ModifiedAt: timestamppb.New(time.UnixMicro(modified))}
	if data != nil {
		r.Data = &anypb.Any{}
		if err := proto.Unmarshal(data, r.Data); err != nil {
			return nil, fmt.Errorf("postgres: malformed data of %s/%s: %w", typ, id, err)
		}
	}
	if deleted {
		r.DeletedAt = r.ModifiedAt
	}
	return r, nil
}

// watermark reads, in one batch of statements each with its own snapshot:
// the sequence's value, then the lowest version still locked by a writing
// transaction, then the meta row, then extra (when set). The latest
// version a reader may pass is the smaller of the sequence's value and the
// lowest locked one minus one: a writer locks a key no higher than the
// version it then takes, so any version handed out before the sequence was
// read either belongs to a finished transaction or is at or above a lock
// that the second statement sees.
type watermark struct {
	last, latest, server, pruned uint64
}

func (d *Driver) readWatermark(ctx context.Context, extra func(*pgx.Batch), after func(pgx.BatchResults) error) (watermark, error) {
	var w watermark
	b := &pgx.Batch{}
	b.Queue(d.q.lastValue)
	b.Queue(d.q.lowestLocked, d.tag)
	b.Queue(d.q.meta)
	if extra != nil {
		extra(b)
	}
	br := d.pool.SendBatch(ctx, b)
	defer br.Close()
	var last int64
	if err := br.QueryRow().Scan(&last); err != nil {
		return w, err
	}
	var locked *int64
	if err := br.QueryRow().Scan(&locked); err != nil {
		return w, err
	}
	var server, pruned *int64
	if err := br.QueryRow().Scan(&server, &pruned); err != nil {
		return w, err
	}
	if server == nil || pruned == nil {
		d.missing.Store(true)
		return w, errors.New("the schema has no server version (a wiped database?)")
	}
	w.last, w.latest, w.server, w.pruned = uint64(last), uint64(last), uint64(*server), uint64(*pruned)
	if locked != nil && uint64(*locked) <= w.latest {
		w.latest = uint64(*locked) - 1
	}
	if after != nil {
		if err := after(br); err != nil {
			return w, err
		}
	}
	return w, br.Close()
}

// Versions implements storage.Driver.
func (d *Driver) Versions(ctx context.Context) (storage.Versions, error) {
	var w watermark
	err := d.retry(ctx, "versions", func(ctx context.Context) error {
		var err error
		w, err = d.readWatermark(ctx, nil, nil)
		return err
	})
	return storage.Versions{Server: w.server, Earliest: w.pruned, Latest: w.latest}, err
}

// Append implements storage.Driver: one batch of statements, run by
// PostgreSQL as one implicit transaction (one round trip).
func (d *Driver) Append(ctx context.Context, writes []storage.Write, now time.Time) (uint64, []uint64, error) {
	b := &pgx.Batch{}
	b.Queue(d.q.lockWrite, d.tag)
	for _, w := range writes {
		if w.Conditional {
			b.Queue(d.q.checkVersion, w.Type, w.ID, int64(w.Version))
		}
	}
	var newTypes []string
	for _, w := range writes {
		data, err := marshalData(w.Data)
		if err != nil {
			return 0, nil, err
		}
		sql := d.q.put
		if w.Delete {
			sql = d.q.del
		}
		b.Queue(sql, w.Type, w.ID, now.UnixMicro(), data)
		if _, ok := d.types.Load(w.Type); !ok {
			newTypes = append(newTypes, w.Type)
		}
	}
	if len(newTypes) > 0 {
		b.Queue(d.q.addTypes, newTypes)
	}
	b.Queue(d.q.notify, d.channel)
	b.Queue(d.q.meta)

	ctx, cancel, err := d.op(ctx)
	if err != nil {
		return 0, nil, err
	}
	defer cancel()
	versions := make([]uint64, len(writes))
	var server *int64
	run := func() error {
		br := d.pool.SendBatch(ctx, b)
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return err
		}
		for _, w := range writes {
			if w.Conditional {
				if _, err := br.Exec(); err != nil {
					return err
				}
			}
		}
		for i := range writes {
			var v int64
			if err := br.QueryRow().Scan(&v); err != nil {
				return err
			}
			versions[i] = uint64(v)
		}
		if len(newTypes) > 0 {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		if _, err := br.Exec(); err != nil {
			return err
		}
		var pruned *int64
		if err := br.QueryRow().Scan(&server, &pruned); err != nil {
			return err
		}
		return br.Close()
	}
	err = run()
	if err != nil && ctx.Err() == nil && pgconn.SafeToRetry(err) {
		err = run() // nothing reached the server: a connection closed by a restart
	}
	if err := d.wrap("append", err); err != nil {
		return 0, nil, err
	}
	for _, t := range newTypes {
		d.types.Store(t, struct{}{})
	}
	if server == nil {
		d.missing.Store(true)
		return 0, nil, fmt.Errorf("%w: postgres: the schema has no server version", storage.ErrUnavailable)
	}
	return uint64(*server), versions, nil
}

// Get implements storage.Driver.
func (d *Driver) Get(ctx context.Context, typ, id string) (*databrokerv1.Record, error) {
	var r *databrokerv1.Record
	err := d.retry(ctx, "get", func(ctx context.Context) error {
		var version, modified int64
		var data []byte
		err := d.pool.QueryRow(ctx, d.q.get, typ, id).Scan(&version, &modified, &data)
		if err != nil {
			return err
		}
		r, err = record(typ, id, uint64(version), modified, false, data)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s/%s", storage.ErrNotFound, typ, id)
	}
	return r, err
}

func (d *Driver) queryRecords(ctx context.Context, what, sql string, args ...any) ([]*databrokerv1.Record, error) {
	var out []*databrokerv1.Record
	err := d.retry(ctx, what, func(ctx context.Context) error {
		out = out[:0]
		rows, err := d.pool.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		var typ, id string
		var version, modified int64
		var data []byte
		_, err = pgx.ForEachRow(rows, []any{&typ, &id, &version, &modified, &data}, func() error {
			r, err := record(typ, id, uint64(version), modified, false, data)
			if err == nil {
				out = append(out, r)
			}
			return err
		})
		return err
	})
	return out, err
}

// Records implements storage.Driver.
func (d *Driver) Records(ctx context.Context, typ string) ([]*databrokerv1.Record, error) {
	if typ == "" {
		return d.queryRecords(ctx, "records", d.q.records)
	}
	return d.queryRecords(ctx, "records", d.q.recordsOfType, typ)
}

// Oldest implements storage.Driver.
func (d *Driver) Oldest(ctx context.Context, typ string, limit int) ([]*databrokerv1.Record, error) {
	return d.queryRecords(ctx, "oldest", d.q.oldest, typ, limit)
}

// Count implements storage.Driver.
func (d *Driver) Count(ctx context.Context, typ string) (int, error) {
	var n int
	err := d.retry(ctx, "count", func(ctx context.Context) error {
		return d.pool.QueryRow(ctx, d.q.count, typ).Scan(&n)
	})
	return n, err
}

// Types implements storage.Driver.
func (d *Driver) Types(ctx context.Context) ([]string, error) {
	var types []string
	err := d.retry(ctx, "types", func(ctx context.Context) error {
		rows, err := d.pool.Query(ctx, d.q.types)
		if err != nil {
			return err
		}
		types, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return types, err
}

// Changes implements storage.Driver. The change log is read after the
// watermark, in the same round trip, so no change at or below the
// watermark can still be in flight.
func (d *Driver) Changes(ctx context.Context, serverVersion, after uint64, limit int) (*storage.ChangeBatch, error) {
	var w watermark
	var recs []*databrokerv1.Record
	err := d.retry(ctx, "changes", func(ctx context.Context) error {
		recs = recs[:0]
		var err error
		w, err = d.readWatermark(ctx, func(b *pgx.Batch) {
			b.Queue(d.q.change, int64(after), limit)
		}, func(br pgx.BatchResults) error {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			var typ, id string
			var version, modified int64
			var deleted bool
			var data []byte
			_, err = pgx.ForEachRow(rows, []any{&version, &typ, &id, &modified, &deleted, &data}, func() error {
				r, err := record(typ, id, uint64(version), modified, deleted, data)
				if err == nil {
					recs = append(recs, r)
				}
				return err
			})
			return err
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	switch {
	case serverVersion != w.server:
		return nil, fmt.Errorf("%w: got %d, store has %d", storage.ErrServerVersionMismatch, serverVersion, w.server)
	case after < w.pruned:
		return nil, fmt.Errorf("%w: asked for changes after %d, earliest retained is after %d", storage.ErrVersionTooOld, after, w.pruned)
	case after > w.last:
		// The caller saw versions this database never handed out: it was
		// restored from an older backup. A new server version makes every
		// client start over from SyncLatest instead of skipping writes.
		next := storage.NewServerVersion()
		err := d.retry(ctx, "rotate server version", func(ctx context.Context) error {
			_, err := d.pool.Exec(ctx, d.q.rotate, fmt.Sprint(w.server), fmt.Sprint(next))
			return err
		})
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: asked for changes after %d, the store's latest is %d; it now has a new server version", storage.ErrServerVersionMismatch, after, w.last)
	}
	batch := &storage.ChangeBatch{Through: max(after, w.latest)}
	full := len(recs) == limit
	for _, r := range recs {
		if r.GetVersion() > w.latest {
			full = false // committed above the watermark: the next read has it
			break
		}
		batch.Records = append(batch.Records, r)
	}
	if full {
		batch.More = true
		batch.Through = recs[len(recs)-1].GetVersion()
	}
	return batch, nil
}

// Changed implements storage.Driver. The first call starts the listener,
// which runs until Close.
func (d *Driver) Changed() <-chan struct{} {
	d.once.Do(func() {
		d.wg.Add(1)
		go d.listen()
	})
	return d.notify.C()
}

// listen holds one connection LISTENing on the store's channel, waking
// followers on each notification and every PollInterval; it reconnects
// (with backoff) when the connection drops.
func (d *Driver) listen() {
	defer d.wg.Done()
	backoff := time.Duration(0)
	for d.ctx.Err() == nil {
		err := d.listenOnce()
		d.notify.Broadcast() // catch whatever a lost connection missed
		if d.ctx.Err() != nil {
			return
		}
		backoff = min(max(2*backoff, 100*time.Millisecond), d.opts.PollInterval)
		d.log.Debug("databroker: postgres listener reconnecting", "error", err)
		select {
		case <-d.ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

func (d *Driver) listenOnce() error {
	ctx, cancel := context.WithTimeout(d.ctx, d.opts.Timeout)
	conn, err := d.pool.Acquire(ctx)
	cancel()
	if err != nil {
		return err
	}
	// The connection leaves the pool: it is closed, not reused, after.
	c := conn.Hijack()
	defer c.Close(context.Background())
	ctx, cancel = context.WithTimeout(d.ctx, d.opts.Timeout)
	_, err = c.Exec(ctx, "LISTEN "+pgx.Identifier{d.channel}.Sanitize())
	cancel()
	if err != nil {
		return err
	}
	// Listening: from here no notification is missed; wake followers to
	// read what was written before.
	d.notify.Broadcast()
	for {
		ctx, cancel := context.WithTimeout(d.ctx, d.opts.PollInterval)
		_, err := c.WaitForNotification(ctx)
		cancel()
		switch {
		case d.ctx.Err() != nil:
			return nil
		case err == nil, errors.Is(err, context.DeadlineExceeded):
			// a notification, or the safety poll
		default:
			return err
		}
		d.notify.Broadcast()
	}
}

// Prune implements storage.Driver. It never prunes past the watermark.
func (d *Driver) Prune(ctx context.Context, before time.Time, keep int) error {
	vs, err := d.Versions(ctx)
	if err != nil {
		return err
	}
	var cut uint64
	err = d.retry(ctx, "prune", func(ctx context.Context) error {
		// Beyond keep changes (versions count at least the changes).
		if vs.Latest-vs.Earliest > uint64(keep) {
			var v int64
			err := d.pool.QueryRow(ctx, d.q.pruneCount, keep).Scan(&v)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			cut = max(cut, uint64(v))
		}
		// Older than before, oldest first.
		for from := max(cut, vs.Earliest); ; {
			rows, err := d.pool.Query(ctx, d.q.pruneScan, int64(from), 500)
			if err != nil {
				return err
			}
			var version, modified int64
			n, stop := 0, false
			_, err = pgx.ForEachRow(rows, []any{&version, &modified}, func() error {
				n++
				if !stop && modified < before.UnixMicro() {
					cut = max(cut, uint64(version))
				} else {
					stop = true
				}
				return nil
			})
			if err != nil {
				return err
			}
			if stop || n < 500 {
				return nil
			}
			from = cut
		}
	})
	if err != nil || cut == 0 {
		return err
	}
	cut = min(cut, vs.Latest)
	return d.retry(ctx, "prune", func(ctx context.Context) error {
		b := &pgx.Batch{}
		b.Queue(d.q.pruneMeta, int64(cut))
		b.Queue(d.q.pruneDelete, int64(cut))
		return d.pool.SendBatch(ctx, b).Close()
	})
}

// Lease implements storage.Driver.
func (d *Driver) Lease(ctx context.Context, name string) (storage.Lease, error) {
	var l storage.Lease
	err := d.retry(ctx, "lease", func(ctx context.Context) error {
		var exp int64
		err := d.pool.QueryRow(ctx, d.q.lease, name).Scan(&l.Holder, &exp)
		if errors.Is(err, pgx.ErrNoRows) {
			l = storage.Lease{}
			return nil
		}
		l.Expires = time.UnixMicro(exp)
		return err
	})
	return l, err
}

// SwapLease implements storage.Driver.
func (d *Driver) SwapLease(ctx context.Context, name string, old, next storage.Lease) (bool, error) {
	var sql string
	var args []any
	switch {
	case old.IsZero() && next.IsZero():
		return true, nil
	case old.IsZero():
		sql, args = d.q.leaseInsert, []any{name, next.Holder, next.Expires.UnixMicro()}
	case next.IsZero():
		sql, args = d.q.leaseDelete, []any{name, old.Holder, old.Expires.UnixMicro()}
	default:
		sql, args = d.q.leaseUpdate, []any{name, old.Holder, old.Expires.UnixMicro(), next.Holder, next.Expires.UnixMicro()}
	}
	ctx, cancel, err := d.op(ctx)
	if err != nil {
		return false, err
	}
	defer cancel()
	tag, err := d.pool.Exec(ctx, sql, args...)
	if err := d.wrap("swap lease", err); err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// TypeOptions implements storage.Driver.
func (d *Driver) TypeOptions(ctx context.Context) (map[string]*databrokerv1.Options, error) {
	out := map[string]*databrokerv1.Options{}
	err := d.retry(ctx, "options", func(ctx context.Context) error {
		clear(out)
		rows, err := d.pool.Query(ctx, d.q.options)
		if err != nil {
			return err
		}
		var typ string
		var raw []byte
		_, err = pgx.ForEachRow(rows, []any{&typ, &raw}, func() error {
			o := &databrokerv1.Options{}
			if err := proto.Unmarshal(raw, o); err != nil {
				return fmt.Errorf("postgres: malformed options of %s: %w", typ, err)
			}
			out[typ] = o
			return nil
		})
		return err
	})
	return out, err
}

// SetTypeOptions implements storage.Driver.
func (d *Driver) SetTypeOptions(ctx context.Context, typ string, opts *databrokerv1.Options) error {
	raw, err := proto.Marshal(opts)
	if err != nil {
		return fmt.Errorf("%w: %v", storage.ErrInvalid, err)
	}
	if raw == nil {
		raw = []byte{}
	}
	return d.retry(ctx, "set options", func(ctx context.Context) error {
		_, err := d.pool.Exec(ctx, d.q.setOptions, typ, raw)
		return err
	})
}

// Ping implements storage.Driver.
func (d *Driver) Ping(ctx context.Context) error {
	return d.retry(ctx, "ping", func(ctx context.Context) error { return d.pool.Ping(ctx) })
}

// Close stops the listener and closes the pool.
func (d *Driver) Close() error {
	d.cancel()
	d.wg.Wait()
	d.pool.Close()
	return nil
}
