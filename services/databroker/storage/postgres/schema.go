package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/services/databroker/storage"
)

// The schema (default "gatehouse"; {S} below) holds:
//
//	{S}.migrations      version int: the migrations applied
//	{S}.meta            key -> value: server_version (random, set when the
//	                    schema is created, so a wiped database gets a new
//	                    one and clients resync) and pruned (the highest
//	                    version dropped from the change log)
//	{S}.record_version  sequence: the record version, advanced in the
//	                    writing transaction (gaps when one rolls back)
//	{S}.records         (type, id) -> version, modified_at µs, data (the
//	                    protobuf of the record's Any): the live records
//	{S}.changes         version -> type, id, modified_at µs, deleted, data:
//	                    the change log
//	{S}.types           every type written or given options
//	{S}.options         type -> databroker Options protobuf
//	{S}.leases          name -> holder, expires_at µs
//
// A writing transaction takes a shared advisory lock keyed by the store's
// tag and the sequence's value before it advances the sequence; a reader
// never passes a version at or above the smallest key still locked, so it
// never skips a version whose transaction is in flight (see Versions).

// migrations are applied in order, each once, by the first replica that
// starts after they are added; {S} is the quoted schema name.
var migrations = []string{
	// 1: the tables.
	`CREATE TABLE {S}.meta (key text PRIMARY KEY, value text NOT NULL);
	CREATE SEQUENCE {S}.record_version AS bigint MINVALUE 1 CACHE 1;
	CREATE TABLE {S}.records (
		type text NOT NULL,
		id text NOT NULL,
		version bigint NOT NULL,
		modified_at bigint NOT NULL,
		data bytea,
		PRIMARY KEY (type, id)
	);
	CREATE INDEX records_type_version ON {S}.records (type, version);
	CREATE TABLE {S}.changes (
		version bigint PRIMARY KEY,
		type text NOT NULL,
		id text NOT NULL,
		modified_at bigint NOT NULL,
		deleted boolean NOT NULL,
		data bytea
	);
	CREATE TABLE {S}.types (type text PRIMARY KEY);
	CREATE TABLE {S}.options (type text PRIMARY KEY, options bytea NOT NULL);
	CREATE TABLE {S}.leases (name text PRIMARY KEY, holder text NOT NULL, expires_at bigint NOT NULL);
	INSERT INTO {S}.meta (key, value) VALUES ('pruned', '0');
	-- check_version fails the transaction with serialization_failure
	-- (40001: the driver's ErrConflict) when record (t, i) is not at
	-- version want (0: absent); it locks the row it checks.
	CREATE FUNCTION {S}.check_version(t text, i text, want bigint) RETURNS void
	LANGUAGE plpgsql AS $$
	DECLARE have bigint;
	BEGIN
		SELECT version INTO have FROM {S}.records WHERE type = t AND id = i FOR UPDATE;
		IF coalesce(have, 0) <> want THEN
			RAISE EXCEPTION 'record %/% is at version %, not %', t, i, coalesce(have, 0), want
				USING ERRCODE = 'serialization_failure';
		END IF;
	END $$;`,
}

// migrationLockKey is the advisory lock key that serializes migrations of
// one schema across replicas starting at once.
func migrationLockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("gatehouse migrate " + schema))
	return int64(h.Sum64() >> 1)
}

// storeTag is the schema's tag in the advisory lock keys of writing
// transactions: 23 bits, above the 40 bits of the version.
func storeTag(schema string) int64 {
	h := fnv.New32a()
	h.Write([]byte(schema))
	return int64(h.Sum32() & (1<<23 - 1))
}

// versionBits is the width of the version part of a write lock key.
const versionBits = 40

// migrate creates or migrates the schema, in one transaction under an
// advisory lock (several replicas may start at once), and installs a
// server version when the schema has none.
func (d *Driver) migrate(ctx context.Context) error {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLockKey(d.schema)); err != nil {
		return err
	}
	s := d.q.schema
	if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+s+"; CREATE TABLE IF NOT EXISTS "+s+".migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"); err != nil {
		return err
	}
	var have int
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+s+".migrations").Scan(&have); err != nil {
		return err
	}
	if have > len(migrations) {
		return fmt.Errorf("schema %s is at migration %d, newer than this gatehouse knows (%d): run a newer gatehouse", d.schema, have, len(migrations))
	}
	for i := have; i < len(migrations); i++ {
		if _, err := tx.Exec(ctx, strings.ReplaceAll(migrations[i], "{S}", s)); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+s+".migrations (version) VALUES ($1)", i+1); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+s+".meta (key, value) VALUES ('server_version', $1) ON CONFLICT DO NOTHING",
		fmt.Sprint(storage.NewServerVersion())); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	if have < len(migrations) {
		d.log.Info("databroker: postgres schema migrated", "schema", d.schema, "from", have, "to", len(migrations))
	}
	return nil
}

// queries are the driver's SQL, with the schema's names filled in.
type queries struct {
	schema                                string
	lockWrite, put, del, checkVersion     string
	addTypes, notify                      string
	lastValue, lowestLocked, meta, change string
	get, records, recordsOfType, oldest   string
	count, types, pruneScan, pruneCount   string
	pruneMeta, pruneDelete, rotate        string
	lease, leaseInsert, leaseUpdate       string
	leaseDelete, options, setOptions      string
}

func newQueries(schema string) queries {
	s := pgx.Identifier{schema}.Sanitize()
	r := strings.NewReplacer("{S}", s)
	q := func(sql string) string { return r.Replace(sql) }
	return queries{
		schema:       s,
		lockWrite:    q(`SELECT pg_advisory_xact_lock_shared(($1::bigint << 40) | last_value) FROM {S}.record_version`),
		checkVersion: q(`SELECT {S}.check_version($1, $2, $3)`),
		put: q(`WITH v AS (SELECT nextval('{S}.record_version') AS version),
			c AS (INSERT INTO {S}.changes (version, type, id, modified_at, deleted, data) SELECT version, $1, $2, $3, false, $4 FROM v),
			r AS (INSERT INTO {S}.records AS r (type, id, version, modified_at, data) SELECT $1, $2, version, $3, $4 FROM v
				ON CONFLICT (type, id) DO UPDATE SET version = EXCLUDED.version, modified_at = EXCLUDED.modified_at, data = EXCLUDED.data
				WHERE r.version < EXCLUDED.version)
			SELECT version FROM v`),
		del: q(`WITH v AS (SELECT nextval('{S}.record_version') AS version),
			c AS (INSERT INTO {S}.changes (version, type, id, modified_at, deleted, data) SELECT version, $1, $2, $3, true, $4 FROM v),
			d AS (DELETE FROM {S}.records r USING v WHERE r.type = $1 AND r.id = $2 AND r.version < v.version)
			SELECT version FROM v`),
		addTypes:  q(`INSERT INTO {S}.types (type) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`),
		notify:    `SELECT pg_notify($1, '')`,
		lastValue: q(`SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {S}.record_version`),
		lowestLocked: `SELECT min(((classid::bigint & 255) << 32) | objid::bigint) FROM pg_locks
			WHERE locktype = 'advisory' AND objsubid = 1 AND (classid::bigint >> 8) = $1
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
		meta:          q(`SELECT (SELECT value::bigint FROM {S}.meta WHERE key = 'server_version'), (SELECT value::bigint FROM {S}.meta WHERE key = 'pruned')`),
		change:        q(`SELECT version, type, id, modified_at, deleted, data FROM {S}.changes WHERE version > $1 ORDER BY version LIMIT $2`),
		get:           q(`SELECT version, modified_at, data FROM {S}.records WHERE type = $1 AND id = $2`),
		records:       q(`SELECT type, id, version, modified_at, data FROM {S}.records`),
		recordsOfType: q(`SELECT type, id, version, modified_at, data FROM {S}.records WHERE type = $1`),
		oldest:        q(`SELECT type, id, version, modified_at, data FROM {S}.records WHERE type = $1 ORDER BY version LIMIT $2`),
		count:         q(`SELECT count(*) FROM {S}.records WHERE type = $1`),
		types:         q(`SELECT type FROM {S}.types`),
		pruneScan:     q(`SELECT version, modified_at FROM {S}.changes WHERE version > $1 ORDER BY version LIMIT $2`),
		pruneCount:    q(`SELECT version FROM {S}.changes ORDER BY version DESC OFFSET $1 LIMIT 1`),
		pruneMeta:     q(`UPDATE {S}.meta SET value = greatest(value::bigint, $1)::text WHERE key = 'pruned'`),
		pruneDelete:   q(`DELETE FROM {S}.changes WHERE version <= $1`),
		rotate:        q(`UPDATE {S}.meta SET value = $2 WHERE key = 'server_version' AND value = $1`),
		lease:         q(`SELECT holder, expires_at FROM {S}.leases WHERE name = $1`),
		leaseInsert:   q(`INSERT INTO {S}.leases (name, holder, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`),
		leaseUpdate:   q(`UPDATE {S}.leases SET holder = $4, expires_at = $5 WHERE name = $1 AND holder = $2 AND expires_at = $3`),
		leaseDelete:   q(`DELETE FROM {S}.leases WHERE name = $1 AND holder = $2 AND expires_at = $3`),
		options:       q(`SELECT type, options FROM {S}.options`),
		setOptions: q(`WITH t AS (INSERT INTO {S}.types (type) VALUES ($1) ON CONFLICT DO NOTHING)
			INSERT INTO {S}.options (type, options) VALUES ($1, $2) ON CONFLICT (type) DO UPDATE SET options = EXCLUDED.options`),
	}
}
