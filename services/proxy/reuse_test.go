package proxy

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gatehouse/gatehouse/pkg/databroker"
	"github.com/gatehouse/gatehouse/pkg/extauthz"
	"github.com/gatehouse/gatehouse/pkg/testutil"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	sessionv1 "github.com/gatehouse/gatehouse/proto/gatehouse/session/v1"
	userv1 "github.com/gatehouse/gatehouse/proto/gatehouse/user/v1"
	"github.com/gatehouse/gatehouse/services/databroker/databrokertest"
)

// reuseFixture is a proxy remote from a fake authorize that, like the real
// one, says its allowed answers may be reused, reading the databroker's
// versions as authorize's store would have them; and a real databroker
// whose changes the proxy follows.
type reuseFixture struct {
	h        *harness
	db       *databrokertest.Server
	up       *recordingUpstream
	lastInfo *databrokerv1.ServerInfoResponse
	// lag, when set, makes the fake authorize answer as of the version
	// before the latest (a replica whose Sync is behind the proxy's).
	lag bool
}

const (
	reuseSession = "sess-1"
	reuseUser    = "user-1"
	reuseHost    = "app.test"
)

func newReuseFixture(t *testing.T, opts ...func(*Options)) *reuseFixture {
	t.Helper()
	f := &reuseFixture{db: databrokertest.Start(t), up: newUpstream(t, "app")}
	cfg := parseConfig(t, "", routeYAML("id: app", "from: http://"+reuseHost, "to: "+f.up.URL))
	authz := newFakeAuthz(func(req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		resp := okResponse(nil, "x-identity", "alice")
		if extauthz.ContextExtension(req, extauthz.ContextReuse) != "true" {
			return resp, nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		info, err := f.db.Client().ServerInfo(ctx, &databrokerv1.ServerInfoRequest{})
		if err != nil {
			// Authorize answers from its synced copy while the
			// databroker is gone: as of the last versions it saw.
			info = f.lastInfo
		}
		f.lastInfo = info
		rv := info.GetLatestRecordVersion()
		if f.lag && rv > 0 {
			rv--
		}
		return extauthz.WithReuse(resp, extauthz.Reuse{ServerVersion: info.GetServerVersion(), RecordVersion: rv,
			SessionID: reuseSession, UserID: reuseUser, Until: time.Now().Add(time.Minute)}), nil
	})
	authz.record = false
	all := append([]func(*Options){func(o *Options) { o.DataBroker = f.db.Client() }}, opts...)
	f.h = newHarness(t, cfg, authz, all...)
	if f.h.svc.reuse != nil {
		testutil.WaitFor(t, 10*time.Second, "the proxy to follow the databroker", f.live)
	}
	return f
}

func (f *reuseFixture) live() bool {
	f.h.svc.reuse.mu.RLock()
	defer f.h.svc.reuse.mu.RUnlock()
	return f.h.svc.reuse.live
}

// get sends one request and returns how many Checks it cost.
func (f *reuseFixture) get(t *testing.T, path string, hdr ...string) int64 {
	t.Helper()
	before := f.h.authz.calls.Load()
	resp, _ := f.h.get(t, reuseHost, path, hdr...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if got := f.up.last(t).Header.Get("X-Identity"); got != "alice" {
		t.Fatalf("upstream got X-Identity %q, want authorize's answer applied", got)
	}
	return f.h.authz.calls.Load() - before
}

// put writes a record and waits until the proxy has applied its version.
func (f *reuseFixture) put(t *testing.T, r *databrokerv1.Record) {
	t.Helper()
	resp, err := f.db.Client().Put(context.Background(), &databrokerv1.PutRequest{Records: []*databrokerv1.Record{r}})
	if err != nil {
		t.Fatal(err)
	}
	v := resp.GetRecords()[0].GetVersion()
	testutil.WaitFor(t, 10*time.Second, "the proxy to apply the change", func() bool {
		f.h.svc.reuse.mu.RLock()
		defer f.h.svc.reuse.mu.RUnlock()
		return f.h.svc.reuse.recordVersion >= v
	})
}

func record(t *testing.T, msg proto.Message, id string) *databrokerv1.Record {
	t.Helper()
	data, err := anypb.New(msg)
	if err != nil {
		t.Fatal(err)
	}
	return &databrokerv1.Record{Type: data.GetTypeUrl(), Id: id, Data: data}
}

func sessionRecord(t *testing.T, id string, deleted bool) *databrokerv1.Record {
	t.Helper()
	r := record(t, &sessionv1.Session{Id: id, UserId: reuseUser}, id)
	if deleted {
		r.Data, r.DeletedAt = nil, timestamppb.Now()
	}
	return r
}

func userRecord(t *testing.T, id string) *databrokerv1.Record {
	t.Helper()
	return record(t, &userv1.User{Id: id, Email: "alice@example.com"}, id)
}

const bearer = "Bearer Pomerium-handle-1"

func TestReuseUntilTheSessionOrUserChanges(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T) *databrokerv1.Record
		drops  bool
	}{
		{"sign-out deletes the session", func(t *testing.T) *databrokerv1.Record { return sessionRecord(t, reuseSession, true) }, true},
		{"the session is refreshed", func(t *testing.T) *databrokerv1.Record { return sessionRecord(t, reuseSession, false) }, true},
		{"the user changes", func(t *testing.T) *databrokerv1.Record { return userRecord(t, reuseUser) }, true},
		{"another session changes", func(t *testing.T) *databrokerv1.Record { return sessionRecord(t, "sess-other", true) }, false},
		{"another user changes", func(t *testing.T) *databrokerv1.Record { return userRecord(t, "user-other") }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newReuseFixture(t)
			if n := f.get(t, "/a", "Authorization", bearer); n != 1 {
				t.Fatalf("first request: %d Checks, want 1", n)
			}
			if n := f.get(t, "/a", "Authorization", bearer); n != 0 {
				t.Fatalf("identical request: %d Checks, want the answer reused", n)
			}
			f.put(t, tt.change(t))
			want := int64(0)
			if tt.drops {
				want = 1
			}
			if n := f.get(t, "/a", "Authorization", bearer); n != want {
				t.Fatalf("after the change: %d Checks, want %d", n, want)
			}
		})
	}
}

func TestReuseOnlyForTheIdenticalRequest(t *testing.T) {
	f := newReuseFixture(t)
	f.get(t, "/a", "Authorization", bearer)
	for _, tt := range []struct {
		name string
		path string
		hdr  []string
	}{
		{"another path", "/b", []string{"Authorization", bearer}},
		{"a query", "/a?x=1", []string{"Authorization", bearer}},
		{"another credential", "/a", []string{"Authorization", "Bearer Pomerium-handle-2"}},
		{"a cookie besides", "/a", []string{"Authorization", bearer, "Cookie", "_pomerium=x"}},
		{"no credential", "/a", nil},
		{"another Accept", "/a", []string{"Authorization", bearer, "Accept", "application/json"}},
	} {
		if n := f.get(t, tt.path, tt.hdr...); n != 1 {
			t.Errorf("%s: %d Checks, want 1 (not the first request's answer)", tt.name, n)
		}
	}
	// The request id differs on every request and never makes an answer.
	if n := f.get(t, "/a", "Authorization", bearer, "X-Request-Id", "other-id"); n != 0 {
		t.Errorf("same request with another request id: %d Checks, want 0", n)
	}
}

func TestReuseRefusedWhenAuthorizeIsBehind(t *testing.T) {
	f := newReuseFixture(t)
	f.put(t, userRecord(t, "user-other")) // a version for authorize to lag behind
	f.lag = true
	for i := range 3 {
		if n := f.get(t, "/a", "Authorization", bearer); n != 1 {
			t.Fatalf("request %d: %d Checks, want 1: an answer read before a change the proxy has seen may not be kept", i, n)
		}
	}
}

func TestReuseStopsWhileTheDataBrokerIsGone(t *testing.T) {
	f := newReuseFixture(t)
	f.get(t, "/a", "Authorization", bearer)
	f.db.Stop()
	testutil.WaitFor(t, 10*time.Second, "the proxy to notice the databroker is gone", func() bool { return !f.live() })
	for i := range 2 {
		if n := f.get(t, "/a", "Authorization", bearer); n != 1 {
			t.Fatalf("request %d without a databroker: %d Checks, want 1 (no change could reach the proxy)", i, n)
		}
	}
	f.db.Restart()
	testutil.WaitFor(t, 20*time.Second, "the proxy to follow the databroker again", f.live)
	f.get(t, "/a", "Authorization", bearer)
	if n := f.get(t, "/a", "Authorization", bearer); n != 0 {
		t.Fatalf("after the databroker came back: %d Checks, want the answer reused", n)
	}
}

func TestReuseEndsWithAReload(t *testing.T) {
	f := newReuseFixture(t)
	f.get(t, "/a", "Authorization", bearer)
	commit, err := f.h.svc.Prepare(context.Background(), f.h.src.Current())
	if err != nil {
		t.Fatal(err)
	}
	commit()
	if n := f.get(t, "/a", "Authorization", bearer); n != 1 {
		t.Fatalf("after a reload: %d Checks, want 1 (answers were given under the old policy)", n)
	}
}

func TestNoReuseWithAnInProcessAuthorizer(t *testing.T) {
	f := newReuseFixture(t, func(o *Options) { o.InProcessAuthorizer, o.CheckTimeout = true, 0 })
	if f.h.svc.reuse != nil {
		t.Fatal("an in-process authorizer is as cheap as a reused answer: nothing to reuse")
	}
	for range 2 {
		if n := f.get(t, "/a", "Authorization", bearer); n != 1 {
			t.Fatalf("%d Checks, want 1", n)
		}
	}
}

// TestReuseSetBounds: the set starts over at its bounds, never keeps a
// huge key, and keeps its byte count exact as answers come and go.
func TestReuseSetBounds(t *testing.T) {
	c := newReuseSet()
	c.versions = func() (uint64, uint64) { return 1, 5 }
	c.Reset(nil)
	now := time.Now()
	answer := func(session string) *authv3.CheckResponse {
		return extauthz.WithReuse(okResponse(nil, "x-identity", "alice"), extauthz.Reuse{
			ServerVersion: 1, RecordVersion: 5, SessionID: session, UserID: "u", Until: now.Add(time.Minute)})
	}
	_, gen := c.get([]byte("k"), now)
	c.put(make([]byte, maxReuseKey+1), gen, answer("s"), now)
	if len(c.answers) != 0 {
		t.Fatal("kept an answer whose key is over maxReuseKey")
	}
	for i := range maxReusedAnswers {
		c.put([]byte(strconv.Itoa(i)), gen, answer("s"+strconv.Itoa(i%7)), now)
	}
	if len(c.answers) != maxReusedAnswers {
		t.Fatalf("%d answers, want %d", len(c.answers), maxReusedAnswers)
	}
	c.put([]byte("one more"), gen, answer("s"), now)
	if len(c.answers) != 1 {
		t.Fatalf("%d answers after the bound, want 1 (started over)", len(c.answers))
	}
	_, gen = c.get([]byte("k"), now) // starting over is a new generation
	c.put([]byte("other"), gen, answer("s2"), now)
	c.put([]byte("other"), gen, answer("s2"), now) // replaced, not counted twice
	want := 0
	for _, a := range c.answers {
		want += a.size
	}
	if c.bytes != want {
		t.Fatalf("bytes %d, want %d", c.bytes, want)
	}
	c.Update(&databrokerv1.Record{Type: databroker.SessionType, Id: "s2", Version: 6})
	if _, ok := c.answers["other"]; ok || c.bytes != c.answers["one more"].size {
		t.Fatalf("after s2 changed: answers %d, bytes %d", len(c.answers), c.bytes)
	}
}

// TestNoReuseWhileNoAuthorizeAnswers: with every authorize replica gone
// the proxy fails closed at once, reused answers or not.
func TestNoReuseWhileNoAuthorizeAnswers(t *testing.T) {
	var down atomic.Bool
	f := newReuseFixture(t, func(o *Options) { o.AuthorizerReady = func() bool { return !down.Load() } })
	f.get(t, "/a", "Authorization", bearer)
	if n := f.get(t, "/a", "Authorization", bearer); n != 0 {
		t.Fatalf("%d Checks, want the answer reused", n)
	}
	down.Store(true)
	f.h.authz.set(func(*authv3.CheckRequest) (*authv3.CheckResponse, error) { return nil, errUnavailable })
	resp, _ := f.h.get(t, reuseHost, "/a", "Authorization", bearer)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("with no authorize: %s, want 503", resp.Status)
	}
}

// The reuse mark of an answer (session and user ids, versions) is between
// authorize and the proxy: neither the upstream nor the client sees it, on
// the asked request or on the reused one.
func TestReuseMarkNeverLeavesTheProxy(t *testing.T) {
	f := newReuseFixture(t)
	for i, want := range []int64{1, 0} {
		before := f.h.authz.calls.Load()
		resp, body := f.h.get(t, reuseHost, "/a", "Authorization", bearer)
		if n := f.h.authz.calls.Load() - before; resp.StatusCode != http.StatusOK || n != want {
			t.Fatalf("request %d: %s with %d Checks, want 200 with %d", i, resp.Status, n, want)
		}
		seen := f.up.last(t)
		for where, h := range map[string]http.Header{"upstream request": seen.Header, "client response": resp.Header} {
			for k, vs := range h {
				for _, v := range append([]string{k}, vs...) {
					for _, secret := range []string{reuseSession, reuseUser, "gatehouse.reuse", extauthz.ContextReuse} {
						if strings.Contains(strings.ToLower(v), strings.ToLower(secret)) {
							t.Errorf("request %d: %s header %s: %q carries %q", i, where, k, v, secret)
						}
					}
				}
			}
		}
		for _, secret := range []string{reuseSession, reuseUser} {
			if strings.Contains(body, secret) || strings.Contains(seen.URI, secret) {
				t.Errorf("request %d: %q in the body or the upstream's request target", i, secret)
			}
		}
	}
}
