package authorize

import (
	"context"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse/gatehouse/pkg/extauthz"
)

// TestCheckReuse covers when an allowed answer says it may be reused
// (extauthz.Reuse): only when the proxy asks, only for a signed-in session
// read at once, never for denials, the proxy's own pages or requests with
// a client certificate; and never for longer than MaxReuse or the session.
func TestCheckReuse(t *testing.T) {
	s := newTestService(t, testConfig(t, testConfigYAML))
	tok := signIn(t, s, alice, "sess-alice", 7)
	s.store.putUser(bob.record(), 8)
	s.store.putSession(bob.session("sess-bob", time.Now().Add(2*time.Second)), 9)
	bobTok := handleFor(t, s, bob.id, "sess-bob", 1, 9)
	carolTok := signIn(t, s, carol, "sess-carol", 10) // not in admins
	ask := ctxExt(extauthz.ContextReuse, "true")
	grafana := "https://grafana.localhost.pomerium.io/d/abc"
	tests := []struct {
		name      string
		opts      []reqOpt
		url       string
		wantReuse bool
		session   string
		maxUntil  time.Duration
	}{
		{name: "asked, allowed", url: grafana, opts: []reqOpt{cookie(tok), ask}, wantReuse: true, session: "sess-alice", maxUntil: MaxReuse},
		{name: "not asked", url: grafana, opts: []reqOpt{cookie(tok)}},
		{name: "denied", url: "https://app.localhost.pomerium.io/admin", opts: []reqOpt{cookie(carolTok), ask}},
		{name: "no session on a public route", url: "https://public.localhost.pomerium.io/", opts: []reqOpt{ask}},
		{name: "internal page", url: grafana, opts: []reqOpt{cookie(tok), ask, ctxExt(extauthz.ContextInternal, "true")}},
		{name: "client certificate", url: grafana, opts: []reqOpt{cookie(tok), ask, func(r *authv3.CheckRequest) {
			r.Attributes.Source.Certificate = "-----BEGIN%20CERTIFICATE-----"
		}}},
		{name: "session ends first", url: "https://nopass.localhost.pomerium.io/", opts: []reqOpt{cookie(bobTok), ask},
			wantReuse: true, session: "sess-bob", maxUntil: 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Now()
			resp, err := s.Check(context.Background(), newReq("GET", tt.url, tt.opts...))
			if err != nil {
				t.Fatal(err)
			}
			u, ok := extauthz.ReuseOf(resp)
			if ok != tt.wantReuse {
				t.Fatalf("reuse %v (%+v), want %v; response %v", ok, u, tt.wantReuse, resp)
			}
			if !ok {
				if resp.GetDynamicMetadata() != nil {
					t.Errorf("dynamic metadata %v on an answer that may not be reused", resp.GetDynamicMetadata())
				}
				return
			}
			if u.SessionID != tt.session || u.UserID == "" {
				t.Errorf("session %q user %q, want session %q and its user", u.SessionID, u.UserID, tt.session)
			}
			if want := s.store.recordVersion; u.RecordVersion != want {
				t.Errorf("record version %d, want the store's %d", u.RecordVersion, want)
			}
			if !u.Until.After(now) || u.Until.After(now.Add(tt.maxUntil+time.Second)) {
				t.Errorf("until %v, want within %v of %v", u.Until, tt.maxUntil, now)
			}
		})
	}
}
