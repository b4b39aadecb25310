package proxy

import (
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"

	"github.com/gatehouse/gatehouse/pkg/databroker"
	"github.com/gatehouse/gatehouse/pkg/extauthz"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
)

// The answers a proxy keeps for reuse are bounded in number and in bytes
// (their keys and answers); past either bound the set starts over (a
// request then asks authorize again). A request whose key alone is larger
// than maxReuseKey (huge cookies, say) is never kept, so that one client
// cannot fill the set with a few requests.
const (
	maxReusedAnswers = 10_000
	maxReusedBytes   = 32 << 20
	maxReuseKey      = 8 << 10
)

// reuseSet holds authorize's allowed answers that may answer the identical
// request again (extauthz.Reuse), so that a proxy remote from authorize
// does not pay a gRPC round trip for every request of a signed-in user.
//
// An answer is reused only while it can be taken back as soon as authorize
// would change its mind: the proxy follows the databroker's change log
// itself (a ChangesOnly Syncer feeding Reset, Update and disconnected),
// and a change of the answer's session or user drops it the moment it
// arrives, so a sign-out ends reuse on every proxy within the time a Sync
// takes to arrive, as it does on authorize. While no Sync stream is open
// nothing is reused. An answer is kept only if authorize read the session
// at or after the last change this proxy has applied (else a change in
// between, a sign-out say, would never drop it), until its Until, and for
// the configuration it was asked under (a reload starts over).
//
// The key is the whole CheckRequest as authorize receives it, request id
// aside, marshalled deterministically: whatever authorize may read, the
// reused answer was given for exactly that.
type reuseSet struct {
	// versions reads the Syncer's versions after a Reset.
	versions func() (serverVersion, recordVersion uint64)

	mu sync.RWMutex
	// live: a Sync stream follows the change log; nothing is reused or
	// kept otherwise.
	live          bool
	serverVersion uint64
	recordVersion uint64 // the last change applied
	gen           uint64 // bumped by every flush; an answer asked before one is not kept
	bytes         int    // of the keys and answers kept
	answers       map[string]*reusedAnswer
	bySession     map[string]map[string]struct{}
	byUser        map[string]map[string]struct{}
}

type reusedAnswer struct {
	resp  *authv3.CheckResponse // read-only, shared by every request it answers
	until time.Time
	size  int // bytes of the key and the answer
}

func newReuseSet() *reuseSet {
	c := &reuseSet{}
	c.clearLocked()
	return c
}

func (c *reuseSet) clearLocked() {
	c.answers = map[string]*reusedAnswer{}
	c.bySession = map[string]map[string]struct{}{}
	c.byUser = map[string]map[string]struct{}{}
	c.bytes = 0
	c.gen++
}

// get returns the answer kept for key, if any is still good at now, and
// the generation to pass to put when there is none. It does not allocate.
func (c *reuseSet) get(key []byte, now time.Time) (*authv3.CheckResponse, uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if a := c.answers[string(key)]; a != nil && c.live && now.Before(a.until) {
		return a.resp, 0
	}
	return nil, c.gen
}

// put keeps resp, asked for key in generation gen, if its Reuse allows.
func (c *reuseSet) put(key []byte, gen uint64, resp *authv3.CheckResponse, now time.Time) {
	if len(key) > maxReuseKey {
		return
	}
	u, ok := extauthz.ReuseOf(resp)
	if !ok || !now.Before(u.Until) {
		return
	}
	size := len(key) + proto.Size(resp)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || gen != c.gen || u.ServerVersion != c.serverVersion || u.RecordVersion < c.recordVersion {
		return
	}
	if len(c.answers) >= maxReusedAnswers || c.bytes+size > maxReusedBytes {
		c.clearLocked()
	}
	k := string(key)
	if old := c.answers[k]; old != nil {
		c.bytes -= old.size
	}
	c.answers[k] = &reusedAnswer{resp: resp, until: u.Until, size: size}
	c.bytes += size
	index(c.bySession, u.SessionID, k)
	index(c.byUser, u.UserID, k)
}

func index(m map[string]map[string]struct{}, id, key string) {
	keys := m[id]
	if keys == nil {
		keys = map[string]struct{}{}
		m[id] = keys
	}
	keys[key] = struct{}{}
}

// dropLocked forgets every answer indexed under id in m.
func (c *reuseSet) dropLocked(m map[string]map[string]struct{}, id string) {
	for k := range m[id] {
		if a := c.answers[k]; a != nil {
			delete(c.answers, k)
			c.bytes -= a.size
		}
	}
	delete(m, id)
}

// flush forgets every answer (a configuration reload).
func (c *reuseSet) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clearLocked()
}

// Reset implements databroker.Handler: a (re)connected Sync stream that
// starts at the store's latest change. Whatever changed before is unknown,
// so every answer goes.
func (c *reuseSet) Reset([]*databrokerv1.Record) {
	sv, rv := c.versions()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clearLocked()
	c.live, c.serverVersion, c.recordVersion = true, sv, rv
}

// Update implements databroker.Handler: a change of a session or a user
// drops every answer that depended on it.
func (c *reuseSet) Update(r *databrokerv1.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch r.GetType() {
	case databroker.SessionType:
		c.dropLocked(c.bySession, r.GetId())
	case databroker.UserType:
		c.dropLocked(c.byUser, r.GetId())
	}
	c.recordVersion = max(c.recordVersion, r.GetVersion())
}

// disconnected is the Syncer's Disconnected: changes are no longer heard
// of, so nothing is reused until the stream is back.
func (c *reuseSet) disconnected() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clearLocked()
	c.live = false
}

var _ databroker.Handler = (*reuseSet)(nil)

// reused returns the answer kept for the Check in b, if there is one;
// otherwise, when the answer may be kept, the key and generation to keep it
// under (reuseSet.put), having asked authorize to say whether it may be
// reused.
func (s *Service) reused(b *checkBuf, in *checkInput, now time.Time) (key []byte, gen uint64, resp *authv3.CheckResponse) {
	if s.reuse == nil || in.internal || in.clientCert != "" || (s.authzReady != nil && !s.authzReady()) {
		return nil, 0, nil
	}
	key, err := reuseKey(b.key[:0], b)
	if err != nil {
		return nil, 0, nil // ask as usual
	}
	b.key = key
	if resp, gen = s.reuse.get(key, now); resp != nil {
		s.metrics.reused.Inc()
		return nil, 0, resp
	}
	b.attrs.ContextExtensions[extauthz.ContextReuse] = "true"
	return key, gen, nil
}

// reuseKeyOptions marshal map entries (headers, context extensions) in
// key order, so equal requests give equal keys.
var reuseKeyOptions = proto.MarshalOptions{Deterministic: true}

// reuseKey appends to dst the key of the Check in b: the request as
// authorize receives it, without the request id (in its field and its
// header) that differs on every request and that an allowed answer never
// carries.
func reuseKey(dst []byte, b *checkBuf) ([]byte, error) {
	id := b.http.Id
	hdr, hasHdr := b.http.Headers["x-request-id"]
	b.http.Id = ""
	delete(b.http.Headers, "x-request-id")
	out, err := reuseKeyOptions.MarshalAppend(dst, &b.req)
	b.http.Id = id
	if hasHdr {
		b.http.Headers["x-request-id"] = hdr
	}
	return out, err
}
