package authenticate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Retry delays of the revocation queue: the first retry comes quickly (a
// databroker replica restarting), later ones back off to maxRevocationRetry
// so that a long outage costs one attempt per pending sign-out every few
// seconds, and the window in which a revoked handle still works stays
// within a few seconds of the databroker coming back.
const (
	minRevocationRetry = 250 * time.Millisecond
	maxRevocationRetry = 5 * time.Second
)

// revocation is one sign-out that could not be written to the databroker
// yet: the session to delete.
type revocation struct {
	SessionID string    `json:"session_id"`
	UserID    string    `json:"user_id"`
	Queued    time.Time `json:"queued"`
}

// revocationQueue holds the sign-outs that could not be written when the
// user signed out (no databroker reachable), and retries them until the
// session record's delete lands. A sign-out is never reported done before
// that: the page says it is pending.
//
// Where it lives: with signout_queue_dir set, each pending sign-out is a
// file there (written before the page answers, removed once the delete
// landed), and New loads whatever a previous process left: a sign-out
// survives authenticate restarting or being rolled while the databroker
// is down (in Kubernetes the directory is an emptyDir, which survives
// container restarts, not the pod's deletion). Without it the queue is in
// memory only: retried for as long as the process lives, and logged as
// lost, user by user, if the process ends before the databroker is back.
// Memory is the default because the container image's file system is
// read-only; deployments set the directory.
//
// While a sign-out is pending, the browser that signed out no longer
// holds the handle (its cookies were cleared), but the session record is
// still live in the databroker and in every authorize replica's cache:
// authorize learns of sessions only through the databroker, so a copy of
// the handle (a stolen cookie, a programmatic client's pomerium_jwt) is
// still honoured on every route its user may reach until the delete lands
// (within maxRevocationRetry of the databroker answering again) or the
// session expires, whichever is first.
//
// It is safe for concurrent use.
type revocationQueue struct {
	dir string // "" keeps the queue in memory only
	log *slog.Logger

	mu      sync.Mutex
	pending map[string]revocation // by session id
	wake    chan struct{}         // signalled when a sign-out is added
}

// newRevocationQueue returns the queue, loading the sign-outs a previous
// process left in dir (if set). It fails when dir cannot be used: a
// sign-out must not be accepted into a queue that cannot keep it.
func newRevocationQueue(dir string, log *slog.Logger) (*revocationQueue, error) {
	q := &revocationQueue{dir: dir, log: log, pending: map[string]revocation{}, wake: make(chan struct{}, 1)}
	if dir == "" {
		return q, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("signout_queue_dir: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("signout_queue_dir: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		var r revocation
		if err == nil {
			err = json.Unmarshal(b, &r)
		}
		if err != nil || r.SessionID == "" {
			log.Warn("authenticate: unreadable pending sign-out skipped", "file", e.Name(), "error", fmt.Sprint(err))
			continue
		}
		q.pending[r.SessionID] = r
	}
	if n := len(q.pending); n > 0 {
		log.Warn("authenticate: sign-outs pending from a previous run; retrying", "pending", n)
	}
	// A probe write: a directory that cannot be written fails now, at
	// start-up, not at the first sign-out.
	probe := filepath.Join(dir, ".probe")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		return nil, fmt.Errorf("signout_queue_dir: %w", err)
	}
	_ = os.Remove(probe)
	return q, nil
}

// fileName is a pending sign-out's file: named by a hash of the session
// id, so that no id can name a path.
func (q *revocationQueue) fileName(sessionID string) string {
	sum := sha256.Sum256([]byte(sessionID))
	return filepath.Join(q.dir, hex.EncodeToString(sum[:16])+".json")
}

// add queues a sign-out. The error says it could not be written to
// signout_queue_dir; it is then still retried from memory.
func (q *revocationQueue) add(r revocation) error {
	q.mu.Lock()
	q.pending[r.SessionID] = r
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	if q.dir == "" {
		return nil
	}
	b, _ := json.Marshal(r)
	name := q.fileName(r.SessionID)
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// done removes a sign-out whose delete landed.
func (q *revocationQueue) done(sessionID string) {
	q.mu.Lock()
	delete(q.pending, sessionID)
	q.mu.Unlock()
	if q.dir != "" {
		if err := os.Remove(q.fileName(sessionID)); err != nil && !errors.Is(err, os.ErrNotExist) {
			q.log.Warn("authenticate: could not remove a completed sign-out from signout_queue_dir", "error", err.Error())
		}
	}
}

// list returns the pending sign-outs, oldest first.
func (q *revocationQueue) list() []revocation {
	q.mu.Lock()
	out := make([]revocation, 0, len(q.pending))
	for _, r := range q.pending {
		out = append(out, r)
	}
	q.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Queued.Before(out[j].Queued) })
	return out
}

// len returns how many sign-outs are pending.
func (q *revocationQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// run retries the pending sign-outs with revoke until ctx ends, backing
// off from minRevocationRetry to maxRevocationRetry while they fail. A
// sign-out that is added wakes it at once.
func (q *revocationQueue) run(ctx context.Context, revoke func(context.Context, revocation) error) {
	delay := minRevocationRetry
	failing := false
	for {
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			if q.dir == "" {
				for _, r := range q.list() {
					q.log.Error("authenticate: sign-out lost: the process ended before the databroker could be reached; the session stays valid until it expires (set signout_queue_dir to keep pending sign-outs across restarts)",
						"user", r.UserID, "queued", r.Queued.UTC().Format(time.RFC3339))
				}
			}
			return
		case <-q.wake:
			timer.Stop()
		case <-timer.C:
		}
		pending := q.list()
		if len(pending) == 0 {
			delay, failing = maxRevocationRetry, false
			continue
		}
		var lastErr error
		for _, r := range pending {
			if err := revoke(ctx, r); err != nil {
				lastErr = err
				break // the databroker is still away: try again later
			}
			q.done(r.SessionID)
			q.log.Info("authenticate: pending sign-out completed", "user", r.UserID, "pending_for", time.Since(r.Queued).Round(time.Millisecond).String())
		}
		switch {
		case lastErr == nil:
			delay, failing = maxRevocationRetry, false
		case !failing:
			q.log.Warn("authenticate: pending sign-outs still cannot be written; retrying", "pending", q.len(), "error", lastErr.Error())
			failing, delay = true, minRevocationRetry
		default:
			delay = min(2*delay, maxRevocationRetry)
		}
	}
}
