package authenticate

import (
	"context"
	"errors"
	"maps"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gatehouse/gatehouse/pkg/cryptutil"
	"github.com/gatehouse/gatehouse/pkg/databroker"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	sessionv1 "github.com/gatehouse/gatehouse/proto/gatehouse/session/v1"
	userv1 "github.com/gatehouse/gatehouse/proto/gatehouse/user/v1"
)

// RefresherLease is the databroker lease that elects the one session
// refresher of a deployment.
const RefresherLease = "authenticate-refresher"

// Timings of the refresher.
const (
	leaseDuration   = 30 * time.Second // how long the lease is held unless renewed
	leaseRenewEvery = 10 * time.Second // renewal period (a third of the lease)
	leaseRetry      = 10 * time.Second // how often a follower tries to take the lease
	refreshLeadMax  = time.Minute      // refresh at most this long before a token expires
	refreshCoolOff  = 2 * time.Second  // least time between two refreshes of a session
	refreshWorkers  = 4                // refreshes running at once
	scanInterval    = time.Second      // how often due sessions are looked for
	maxBackoff      = 5 * time.Minute  // longest wait after failed refreshes
)

// refresher keeps the IdP tokens of every session fresh: it follows the
// session records with the databroker's Sync stream and, shortly before a
// session's access or ID token expires, refreshes it with the refresh
// token. A permanent refresh failure (invalid_grant) or the session's own
// expiry deletes the session. One refresher runs per deployment, elected
// with the RefresherLease.
type refresher struct {
	s  *Service
	id string // lease holder id

	mu       sync.Mutex
	sessions map[string]*sessionv1.Session
	failures map[string]*failure
	inflight map[string]bool
	wake     chan struct{}
}

// failure tracks consecutive failed refreshes of one session.
type failure struct {
	count     int
	notBefore time.Time
}

func newRefresher(s *Service) *refresher {
	return &refresher{
		s:        s,
		id:       cryptutil.RandomToken(12),
		sessions: map[string]*sessionv1.Session{},
		failures: map[string]*failure{},
		inflight: map[string]bool{},
		wake:     make(chan struct{}, 1),
	}
}

// run contends for the lease until ctx ends and refreshes sessions while it
// holds it.
func (rf *refresher) run(ctx context.Context) error {
	log := rf.s.log
	backoff := time.Second
	for ctx.Err() == nil {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := rf.s.databroker.AcquireLease(actx, &databrokerv1.AcquireLeaseRequest{
			Name: RefresherLease, Id: rf.id, Duration: durationpb.New(leaseDuration),
		})
		cancel()
		wait := leaseRetry
		switch {
		case err == nil:
			log.Info("authenticate: session refresher elected", "lease", RefresherLease)
			rf.lead(ctx)
			log.Info("authenticate: session refresher stopped leading", "lease", RefresherLease)
			backoff = time.Second
			wait = 0
		case status.Code(err) == codes.AlreadyExists:
			// Another replica refreshes; stand by.
		case ctx.Err() != nil:
			return nil
		default:
			log.Warn("authenticate: cannot take the refresher lease", "lease", RefresherLease, "error", err)
			wait = backoff
			backoff = min(backoff*2, leaseRetry)
		}
		if !sleep(ctx, wait) {
			return nil
		}
	}
	return nil
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// lead refreshes sessions while the lease is held, then releases it.
func (rf *refresher) lead(ctx context.Context) {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); defer cancel(); rf.keepLease(lctx) }()
	// The session records, kept current by the shared syncer (SyncLatest,
	// then Sync; starts over when the store changed under it).
	syncer := databroker.NewSyncer(rf.s.databroker, databroker.SessionType, sessionSync{rf}, databroker.SyncerOptions{Logger: rf.s.log})
	go func() { defer wg.Done(); _ = syncer.Run(lctx) }()
	go func() { defer wg.Done(); rf.schedule(lctx) }()
	wg.Wait()

	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer rcancel()
	_, _ = rf.s.databroker.ReleaseLease(rctx, &databrokerv1.ReleaseLeaseRequest{Name: RefresherLease, Id: rf.id})
	rf.mu.Lock()
	rf.sessions = map[string]*sessionv1.Session{}
	rf.failures = map[string]*failure{}
	rf.mu.Unlock()
}

// keepLease renews the lease until ctx ends or a renewal fails.
func (rf *refresher) keepLease(ctx context.Context) {
	for sleep(ctx, leaseRenewEvery) {
		rctx, cancel := context.WithTimeout(ctx, leaseRenewEvery)
		_, err := rf.s.databroker.RenewLease(rctx, &databrokerv1.RenewLeaseRequest{
			Name: RefresherLease, Id: rf.id, Duration: durationpb.New(leaseDuration),
		})
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				rf.s.log.Warn("authenticate: refresher lease lost", "lease", RefresherLease, "error", err)
			}
			return
		}
	}
}

// sessionSync keeps rf.sessions equal to the databroker's session
// records (a databroker.Handler): all of them on Reset, then every change.
type sessionSync struct{ rf *refresher }

var _ databroker.Handler = sessionSync{}

// Reset replaces the sessions with records, all the live session records.
func (h sessionSync) Reset(records []*databrokerv1.Record) {
	all := make(map[string]*sessionv1.Session, len(records))
	for _, r := range records {
		if sess := sessionOf(r); sess != nil {
			all[r.GetId()] = sess
		}
	}
	h.rf.mu.Lock()
	h.rf.sessions = all
	h.rf.mu.Unlock()
	h.rf.poke()
}

// Update applies one change to a session record.
func (h sessionSync) Update(r *databrokerv1.Record) {
	if r.GetType() != databroker.SessionType {
		return
	}
	rf := h.rf
	rf.mu.Lock()
	if sess := sessionOf(r); sess != nil {
		rf.sessions[r.GetId()] = sess
	} else {
		delete(rf.sessions, r.GetId())
		delete(rf.failures, r.GetId())
	}
	rf.mu.Unlock()
	rf.poke()
}

func sessionOf(r *databrokerv1.Record) *sessionv1.Session {
	if r.GetDeletedAt() != nil || r.GetData() == nil {
		return nil
	}
	var sess sessionv1.Session
	if r.GetData().UnmarshalTo(&sess) != nil {
		return nil
	}
	if sess.Id == "" {
		sess.Id = r.GetId()
	}
	return &sess
}

// poke wakes the scheduler.
func (rf *refresher) poke() {
	select {
	case rf.wake <- struct{}{}:
	default:
	}
}

// action is what a session needs next.
type action int

const (
	actionRefresh action = iota
	actionDelete
)

// nextAction returns when a session needs attention and what it needs:
// a refresh shortly before its access or ID token expires (refreshLeadMax,
// or half the token's lifetime when that is shorter), or deletion when the
// session itself expires first or cannot be refreshed.
func nextAction(sess *sessionv1.Session) (time.Time, action) {
	expires := sess.GetExpiresAt().AsTime()
	if sess.GetExpiresAt() == nil {
		expires = time.Unix(1<<40, 0) // no expiry
	}
	if sess.GetRefreshDisabled() || sess.GetOauthToken().GetRefreshToken() == "" {
		return expires, actionDelete
	}
	var tokenExp time.Time
	for _, ts := range []*timestamppb.Timestamp{sess.GetOauthToken().GetExpiresAt(), sess.GetIdToken().GetExpiresAt()} {
		if ts == nil {
			continue
		}
		if t := ts.AsTime(); tokenExp.IsZero() || t.Before(tokenExp) {
			tokenExp = t
		}
	}
	if tokenExp.IsZero() {
		return expires, actionDelete
	}
	base := sess.GetIssuedAt().AsTime()
	if sess.GetRefreshedAt() != nil {
		base = sess.GetRefreshedAt().AsTime()
	}
	lead := min(refreshLeadMax, tokenExp.Sub(base)/2)
	if lead < 0 {
		lead = 0
	}
	at := tokenExp.Add(-lead)
	if sess.GetRefreshedAt() != nil {
		if earliest := base.Add(refreshCoolOff); at.Before(earliest) {
			at = earliest
		}
	}
	if !at.Before(expires) {
		return expires, actionDelete
	}
	return at, actionRefresh
}

// schedule starts the refreshes and deletions that are due, until ctx ends.
func (rf *refresher) schedule(ctx context.Context) {
	sem := make(chan struct{}, refreshWorkers)
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(scanInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-rf.wake:
		}
		now := rf.s.now()
		type job struct {
			sess *sessionv1.Session
			act  action
		}
		var due []job
		rf.mu.Lock()
		for id, sess := range rf.sessions {
			if rf.inflight[id] {
				continue
			}
			if f := rf.failures[id]; f != nil && now.Before(f.notBefore) {
				continue
			}
			at, act := nextAction(sess)
			if !now.Before(at) {
				rf.inflight[id] = true
				due = append(due, job{sess, act})
			}
		}
		rf.mu.Unlock()
		for _, j := range due {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				rf.mu.Lock()
				for _, j := range due {
					delete(rf.inflight, j.sess.Id)
				}
				rf.mu.Unlock()
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				rf.handle(ctx, j.sess, j.act)
			}()
		}
	}
}

// handle refreshes or deletes one session.
func (rf *refresher) handle(ctx context.Context, sess *sessionv1.Session, act action) {
	defer func() {
		rf.mu.Lock()
		delete(rf.inflight, sess.Id)
		rf.mu.Unlock()
	}()
	log := rf.s.log
	if act == actionDelete {
		rf.end(ctx, sess, "authenticate: session expired", "session-expired")
		return
	}
	updated, err := rf.refresh(ctx, sess)
	switch {
	case err == nil:
		rf.mu.Lock()
		delete(rf.failures, sess.Id)
		if _, live := rf.sessions[sess.Id]; live && updated != nil {
			rf.sessions[sess.Id] = updated
		}
		rf.mu.Unlock()
		log.Debug("authenticate: session refreshed", "user", sess.UserId)
		rf.s.metrics.refreshes.WithLabelValues(resultSuccess).Inc()
	case errors.Is(err, errRefreshRejected):
		rf.s.metrics.refreshes.WithLabelValues(resultRejected).Inc()
		rf.end(ctx, sess, "authenticate: session ended: the identity provider refused to refresh it", "refresh-rejected")
	default:
		if ctx.Err() != nil {
			return
		}
		n := rf.failed(sess.Id)
		rf.s.metrics.refreshes.WithLabelValues(resultFailure).Inc()
		log.Warn("authenticate: session refresh failed; will retry", "user", sess.UserId, "error", err, "failures", n)
	}
}

// end deletes a session that expired or can no longer be refreshed and
// logs msg with reason; a failed delete is retried later, as a failed
// refresh is.
func (rf *refresher) end(ctx context.Context, sess *sessionv1.Session, msg, reason string) {
	if err := rf.s.deleteSession(ctx, sess.Id); err != nil {
		rf.failed(sess.Id)
		rf.s.log.Warn("authenticate: session not deleted", "user", sess.UserId, "reason", reason, "error", err)
		return
	}
	rf.forget(sess.Id)
	rf.s.log.Info(msg, "user", sess.UserId, "reason", reason)
}

// failed records a failed attempt and returns the number of consecutive
// failures.
func (rf *refresher) failed(id string) int {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	f := rf.failures[id]
	if f == nil {
		f = &failure{}
		rf.failures[id] = f
	}
	f.count++
	wait := 5 * time.Second << min(f.count-1, 10)
	f.notBefore = rf.s.now().Add(min(wait, maxBackoff))
	return f.count
}

func (rf *refresher) forget(id string) {
	rf.mu.Lock()
	delete(rf.sessions, id)
	delete(rf.failures, id)
	rf.mu.Unlock()
}

// errRefreshRejected means the IdP refused the refresh token for good.
var errRefreshRejected = errors.New("the identity provider rejected the refresh token")

// refresh renews a session's tokens with its refresh token and stores the
// new tokens and claims in the session and user records. It returns the
// session as stored, or nil when it no longer exists.
func (rf *refresher) refresh(ctx context.Context, sess *sessionv1.Session) (*sessionv1.Session, error) {
	st := rf.s.state.Load()
	d, err := st.idp.discover(ctx)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(st.idp.context(ctx), 30*time.Second)
	defer cancel()
	old := &oauth2.Token{RefreshToken: sess.GetOauthToken().GetRefreshToken(), Expiry: time.Unix(1, 0)}
	tok, err := d.oauth.TokenSource(rctx, old).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			return nil, errRefreshRejected
		}
		return nil, err
	}
	res, err := st.idp.verify(rctx, d, tok, "", false)
	if err != nil {
		return nil, err
	}
	now := rf.s.now()
	next := proto.Clone(sess).(*sessionv1.Session)
	next.OauthToken = oauthTokenProto(tok)
	if next.OauthToken.RefreshToken == "" {
		next.OauthToken.RefreshToken = old.RefreshToken
	}
	if res.idToken != nil {
		next.IdToken = idTokenProto(res)
	}
	paths := []string{"oauth_token", "id_token", "refreshed_at", "refresh_failures"}
	var user *userv1.User
	if len(res.claims) > 0 {
		merged := map[string]any{}
		for k, v := range claimsJSON(sess.GetClaims()) {
			merged[k] = v
		}
		maps.Copy(merged, res.claims)
		if sub, _ := merged["sub"].(string); sub == "" {
			merged["sub"] = sess.UserId
		}
		next.Claims = toClaims(merged)
		paths = append(paths, "claims")
		user = &userv1.User{Id: sess.UserId, Email: claimString(merged, "email"), Name: displayName(merged), Claims: cloneClaims(next.Claims)}
	}
	next.RefreshedAt = timestamppb.New(now)
	next.RefreshFailures = 0

	data, err := record(databroker.SessionType, sess.Id, next)
	if err != nil {
		return nil, err
	}
	pctx, pcancel := rf.s.rpcContext(ctx)
	defer pcancel()
	resp, err := rf.s.databroker.Patch(pctx, &databrokerv1.PatchRequest{
		Records: []*databrokerv1.Record{data}, FieldMask: &fieldmaskpb.FieldMask{Paths: paths},
	})
	if err != nil {
		return nil, err
	}
	var stored *sessionv1.Session
	for _, r := range resp.GetRecords() {
		if r.GetId() == sess.Id {
			stored = sessionOf(r)
		}
	}
	if stored == nil {
		return nil, nil // signed out meanwhile: nothing to update
	}
	if user != nil {
		if ur, err := record(databroker.UserType, user.Id, user); err == nil {
			if _, err := rf.s.databroker.Put(pctx, &databrokerv1.PutRequest{Records: []*databrokerv1.Record{ur}}); err != nil {
				rf.s.log.Warn("authenticate: user claims not updated", "user", user.Id, "error", err)
			}
		}
	}
	return stored, nil
}
