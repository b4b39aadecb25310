package authorize

import (
	"context"
	"sort"
	"strconv"
	"sync"
	"time"
	"unique"

	"github.com/gatehouse/gatehouse/pkg/databroker"
	"github.com/gatehouse/gatehouse/pkg/policy"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	sessionv1 "github.com/gatehouse/gatehouse/proto/gatehouse/session/v1"
	userv1 "github.com/gatehouse/gatehouse/proto/gatehouse/user/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// identity is what authorize knows about one live session, built from the
// session record and its user's record whenever either changes. It is
// immutable once built, so Check reads it without locks, and its address
// identifies that exact content (the JWT cache compares pointers).
type identity struct {
	subject   policy.Subject
	expiresAt time.Time // zero: the session record has no expiry
	// idToken and accessToken are the identity provider's tokens, for
	// set_request_headers' ${pomerium.id_token} and ${pomerium.access_token}
	// (never gatehouse's session handle).
	idToken, accessToken string
}

// expired reports whether the session has passed its expires_at.
func (id *identity) expired(now time.Time) bool {
	return !id.expiresAt.IsZero() && !now.Before(id.expiresAt)
}

// versionSource is what the store needs from its syncer
// (*databroker.Syncer): whether it has loaded a snapshot, and the versions
// it has applied.
type versionSource interface {
	HasSynced() bool
	Versions() (serverVersion, recordVersion uint64)
}

// store is the local copy of the databroker's session and user records,
// kept by a pkg/databroker Syncer (through syncHandler) and read by every
// Check. It is safe for concurrent use.
//
// One Syncer follows every record type in one stream, in version order,
// rather than one stream per type: a session handle carries the version
// of its session record, and once the stream has passed that version the
// session and the user written with it (before it) are both here. Two
// streams could deliver the session before its user.
type store struct {
	mu       sync.RWMutex
	sessions map[string]*sessionEntry
	users    map[string]*userEntry
	idents   map[string]*identity // session id → identity
	byUser   map[string][]string  // user id → session ids

	// src is the syncer, when there is one; otherwise the store is fed
	// directly (tests) and the fields below stand for it.
	src           versionSource
	serverVersion uint64 // store the records came from; 0 until synced
	recordVersion uint64 // latest record version applied
	synced        bool
	changed       chan struct{} // closed (and replaced) after every change
}

// sessionEntry and userEntry are the parts of the session and user records
// that authorize reads, flattened once. Of the IdP's tokens only the raw
// ID token and the access token are kept (set_request_headers may pass
// them upstream); the refresh token is not.
type sessionEntry struct {
	userID               string
	claims               claimSet
	expiresAt            time.Time
	idToken, accessToken string
}

type userEntry struct {
	email, name string
	claims      claimSet
}

// claimSet is a record's claims, typed as JSON (policy.ClaimValue) so that
// claim/<name> compares as Pomerium does. Sets are immutable once built,
// so identical ones are shared rather than copied: the session and user
// records of one sign-in carry the same claims.
type claimSet map[string][]policy.ClaimValue

func newStore() *store {
	return &store{
		sessions: map[string]*sessionEntry{},
		users:    map[string]*userEntry{},
		idents:   map[string]*identity{},
		byUser:   map[string][]string{},
		changed:  make(chan struct{}),
	}
}

// get returns the identity of session id, or nil. It does not allocate.
func (s *store) get(id string) *identity {
	s.mu.RLock()
	ident := s.idents[id]
	s.mu.RUnlock()
	return ident
}

// getAt returns the identity of session id (or nil) together with the
// point in the databroker's change log the store had applied when it was
// read: the identity reflects every change up to recordVersion and none
// after. It does not allocate.
func (s *store) getAt(id string) (ident *identity, serverVersion, recordVersion uint64) {
	s.mu.RLock()
	ident, serverVersion, recordVersion = s.idents[id], s.serverVersion, s.recordVersion
	s.mu.RUnlock()
	if s.src != nil {
		serverVersion, _ = s.src.Versions()
	}
	return ident, serverVersion, recordVersion
}

// isSynced reports whether the records have been loaded at least once.
func (s *store) isSynced() bool {
	if s.src != nil {
		return s.src.HasSynced()
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.synced
}

// syncHandler receives the Syncer's records (databroker.Handler), from one
// goroutine.
type syncHandler struct{ s *store }

var _ databroker.Handler = syncHandler{}

func (h syncHandler) Reset(records []*databrokerv1.Record) { h.s.reset(records) }
func (h syncHandler) Update(r *databrokerv1.Record)        { h.s.apply(r) }

// reset replaces every record with records, the live records of a
// SyncLatest snapshot.
func (s *store) reset(records []*databrokerv1.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions = map[string]*sessionEntry{}
	s.users = map[string]*userEntry{}
	s.idents = map[string]*identity{}
	s.byUser = map[string][]string{}
	// The snapshot may come from another store (a wiped one has new,
	// lower versions): count again from it.
	s.recordVersion = 0
	// Users first, so that each session's identity is built once.
	for _, r := range records {
		if r.GetType() == databroker.UserType {
			s.applyLocked(r)
		}
	}
	for _, r := range records {
		if r.GetType() != databroker.UserType {
			s.applyLocked(r)
		}
	}
	s.notifyLocked()
}

// apply applies one change of a Sync stream.
func (s *store) apply(r *databrokerv1.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applyLocked(r)
	s.notifyLocked()
}

// putSession and putUser feed the store directly (tests, and callers that
// learn of a record outside the Sync stream). version is the record
// version of the write.
func (s *store) putSession(sess *sessionv1.Session, version uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setSessionLocked(sess)
	s.seeLocked(version)
	s.notifyLocked()
}

func (s *store) putUser(u *userv1.User, version uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setUserLocked(u)
	s.seeLocked(version)
	s.notifyLocked()
}

func (s *store) deleteSession(id string, version uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteSessionLocked(id)
	s.seeLocked(version)
	s.notifyLocked()
}

// markSynced marks the store synced at the given versions without records.
func (s *store) markSynced(server, record uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serverVersion = server
	s.seeLocked(record)
	s.synced = true
	s.notifyLocked()
}

func (s *store) seeLocked(version uint64) {
	if version > s.recordVersion {
		s.recordVersion = version
	}
}

func (s *store) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *store) applyLocked(r *databrokerv1.Record) {
	s.seeLocked(r.GetVersion())
	switch r.GetType() {
	case databroker.SessionType:
		if r.GetDeletedAt() != nil {
			s.deleteSessionLocked(r.GetId())
			return
		}
		sess := new(sessionv1.Session)
		if err := r.GetData().UnmarshalTo(sess); err != nil {
			// A record we cannot read is no session: refuse it rather
			// than keep an older copy.
			s.deleteSessionLocked(r.GetId())
			return
		}
		if sess.GetId() == "" {
			sess.Id = r.GetId()
		}
		s.setSessionLocked(sess)
	case databroker.UserType:
		if r.GetDeletedAt() != nil {
			s.deleteUserLocked(r.GetId())
			return
		}
		u := new(userv1.User)
		if err := r.GetData().UnmarshalTo(u); err != nil {
			s.deleteUserLocked(r.GetId())
			return
		}
		if u.GetId() == "" {
			u.Id = r.GetId()
		}
		s.setUserLocked(u)
	}
}

func (s *store) setSessionLocked(sess *sessionv1.Session) {
	id, uid := sess.GetId(), sess.GetUserId()
	if old := s.sessions[id]; old != nil && old.userID != uid {
		s.unindexLocked(old.userID, id)
	} else if old == nil {
		s.byUser[uid] = append(s.byUser[uid], id)
	}
	u := s.users[uid]
	e := &sessionEntry{userID: uid, claims: flattenClaims(sess.GetClaims()),
		idToken: sess.GetIdToken().GetRaw(), accessToken: sess.GetOauthToken().GetAccessToken()}
	if u != nil && e.claims.equal(u.claims) {
		e.claims = u.claims
	}
	if ts := sess.GetExpiresAt(); ts != nil {
		e.expiresAt = ts.AsTime()
	}
	s.sessions[id] = e
	s.idents[id] = newIdentity(id, e, u)
}

func (s *store) deleteSessionLocked(id string) {
	if old := s.sessions[id]; old != nil {
		s.unindexLocked(old.userID, id)
	}
	delete(s.sessions, id)
	delete(s.idents, id)
}

func (s *store) unindexLocked(uid, sid string) {
	ids := s.byUser[uid]
	for i, v := range ids {
		if v == sid {
			ids[i] = ids[len(ids)-1]
			ids = ids[:len(ids)-1]
			break
		}
	}
	if len(ids) == 0 {
		delete(s.byUser, uid)
		return
	}
	s.byUser[uid] = ids
}

func (s *store) setUserLocked(u *userv1.User) {
	s.users[u.GetId()] = &userEntry{email: u.GetEmail(), name: u.GetName(), claims: flattenClaims(u.GetClaims())}
	s.rebuildUserLocked(u.GetId())
}

func (s *store) deleteUserLocked(id string) {
	delete(s.users, id)
	s.rebuildUserLocked(id)
}

// rebuildUserLocked rebuilds the identities of every session of user id.
func (s *store) rebuildUserLocked(id string) {
	u := s.users[id]
	for _, sid := range s.byUser[id] {
		if e := s.sessions[sid]; e != nil {
			if u != nil && e.claims.equal(u.claims) {
				e.claims = u.claims
			}
			s.idents[sid] = newIdentity(sid, e, u)
		}
	}
}

// waitFor waits until the store has seen recordVersion (or is synced, when
// it never was) and returns the identity of session id then, or nil when
// the deadline passes, ctx ends or the store has caught up without it.
// It wakes on the store's change notification; it never polls. It reads
// the session and the versions together, under one lock: a session found
// missing before a version check that finds the store caught up may have
// arrived in between. When the store is not behind it returns at once,
// without allocating.
func (s *store) waitFor(ctx context.Context, id string, serverVersion, recordVersion uint64, timeout time.Duration) *identity {
	var timer *time.Timer
	for {
		s.mu.RLock()
		ident := s.idents[id]
		behind := s.behindLocked(serverVersion, recordVersion)
		ch := s.changed
		s.mu.RUnlock()
		if ident != nil || !behind {
			return ident
		}
		if timer == nil {
			timer = time.NewTimer(timeout)
			defer timer.Stop()
		}
		select {
		case <-ch:
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// behind reports whether a handle written at (serverVersion,
// recordVersion) may name a record the store has not seen yet.
func (s *store) behind(serverVersion, recordVersion uint64) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.behindLocked(serverVersion, recordVersion)
}

func (s *store) behindLocked(serverVersion, recordVersion uint64) bool {
	synced, server, seen := s.synced, s.serverVersion, s.recordVersion
	if s.src != nil {
		// The Syncer records its versions just after handing a change
		// to the store; the store's own count covers that moment.
		var rv uint64
		synced = s.src.HasSynced()
		server, rv = s.src.Versions()
		seen = max(seen, rv)
	}
	if !synced {
		return true
	}
	if serverVersion != 0 && server != 0 && serverVersion != server {
		// Written to another store (or one since wiped): waiting
		// would not bring the record.
		return false
	}
	return recordVersion > seen
}

// buildIdentity merges a session and its user (which may be nil) into the
// Subject that policies and identity headers read.
func buildIdentity(sess *sessionv1.Session, u *userv1.User) *identity {
	e := &sessionEntry{userID: sess.GetUserId(), claims: flattenClaims(sess.GetClaims()),
		idToken: sess.GetIdToken().GetRaw(), accessToken: sess.GetOauthToken().GetAccessToken()}
	if ts := sess.GetExpiresAt(); ts != nil {
		e.expiresAt = ts.AsTime()
	}
	var ue *userEntry
	if u != nil {
		ue = &userEntry{email: u.GetEmail(), name: u.GetName(), claims: flattenClaims(u.GetClaims())}
	}
	return newIdentity(sess.GetId(), e, ue)
}

// newIdentity merges a session and its user (which may be nil). Claims of
// both are flattened (typed as JSON); the session's win over the user's of the
// same name, as they are the fresher (refreshed with the IdP). When the
// session adds nothing to the user's claims, the user's set is shared.
func newIdentity(sid string, e *sessionEntry, u *userEntry) *identity {
	var claims claimSet
	switch {
	case u == nil:
		claims = e.claims
	case e.claims.subsetOf(u.claims):
		claims = u.claims
	default:
		claims = make(claimSet, len(u.claims)+len(e.claims))
		for k, v := range u.claims {
			claims[k] = v
		}
		for k, v := range e.claims {
			claims[k] = v
		}
	}
	if claims == nil {
		claims = claimSet{}
	}
	sub := policy.Subject{
		SessionID: sid,
		UserID:    e.userID,
		Groups:    claimTexts(claims["groups"]),
		Claims:    claims,
	}
	if u != nil {
		sub.Email, sub.Name = u.email, u.name
	}
	if sub.Email == "" {
		sub.Email = first(claims["email"])
	}
	if sub.Name == "" {
		sub.Name = first(claims["name"])
	}
	if sub.Groups == nil {
		sub.Groups = []string{}
	}
	return &identity{subject: sub, expiresAt: e.expiresAt, idToken: e.idToken, accessToken: e.accessToken}
}

// flattenClaims flattens a record's claims; claim names and value texts
// are interned, because most of them (issuer, audience, groups, true)
// repeat across every user.
func flattenClaims(c map[string]*structpb.ListValue) claimSet {
	if len(c) == 0 {
		return nil
	}
	out := make(claimSet, len(c))
	for k, v := range c {
		vals := flattenList(v)
		for i := range vals {
			vals[i].Text = unique.Make(vals[i].Text).Value()
		}
		out[unique.Make(k).Value()] = vals
	}
	return out
}

func (c claimSet) equal(o claimSet) bool {
	return len(c) == len(o) && c.subsetOf(o)
}

// subsetOf reports whether every claim of c is in o with the same values.
func (c claimSet) subsetOf(o claimSet) bool {
	for k, v := range c {
		w, ok := o[k]
		if !ok || len(v) != len(w) {
			return false
		}
		for i := range v {
			if v[i] != w[i] {
				return false
			}
		}
	}
	return true
}

func first(l []policy.ClaimValue) string {
	if len(l) == 0 {
		return ""
	}
	return l[0].Text
}

// claimTexts returns the texts of vs (nil for nil).
func claimTexts(vs []policy.ClaimValue) []string {
	if vs == nil {
		return nil
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Text
	}
	return out
}

// flattenList turns a claim's values into typed claim values: strings as
// they are, numbers in their shortest form, booleans as true/false, nested
// lists flattened in order, objects as compact JSON; nulls are dropped.
func flattenList(l *structpb.ListValue) []policy.ClaimValue {
	out := make([]policy.ClaimValue, 0, len(l.GetValues()))
	for _, v := range l.GetValues() {
		out = appendValue(out, v)
	}
	return out
}

func appendValue(out []policy.ClaimValue, v *structpb.Value) []policy.ClaimValue {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		return append(out, policy.ClaimValue{Type: policy.JSONString, Text: k.StringValue})
	case *structpb.Value_NumberValue:
		return append(out, policy.NumberClaim(k.NumberValue))
	case *structpb.Value_BoolValue:
		return append(out, policy.ClaimValue{Type: policy.JSONBool, Text: strconv.FormatBool(k.BoolValue)})
	case *structpb.Value_ListValue:
		for _, e := range k.ListValue.GetValues() {
			out = appendValue(out, e)
		}
		return out
	case *structpb.Value_StructValue:
		b, err := protojson.MarshalOptions{}.Marshal(k.StructValue)
		if err != nil {
			return out
		}
		return append(out, policy.ClaimValue{Type: policy.JSONObject, Text: compactJSON(b)})
	}
	return out
}

// compactJSON drops the random spaces protojson puts in its output so that
// the same object always flattens to the same string.
func compactJSON(b []byte) string {
	out := make([]byte, 0, len(b))
	inString, escaped := false, false
	for _, c := range b {
		if inString {
			out = append(out, c)
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case ' ', '\n', '\t', '\r':
			continue
		case '"':
			inString = true
		}
		out = append(out, c)
	}
	return string(out)
}

// sortedKeys returns m's keys sorted (for stable output in tests and logs).
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
