package authenticate

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gatehouse/gatehouse/pkg/sessionhandle"
	"github.com/gatehouse/gatehouse/pkg/testutil"
	sessionv1 "github.com/gatehouse/gatehouse/proto/gatehouse/session/v1"
)

func TestNextAction(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	ts := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(t0.Add(d)) }
	sess := func(mut func(*sessionv1.Session)) *sessionv1.Session {
		s := &sessionv1.Session{
			Id: "s", IssuedAt: ts(0), ExpiresAt: ts(14 * time.Hour),
			OauthToken: &sessionv1.OAuthToken{AccessToken: "a", RefreshToken: "r", ExpiresAt: ts(time.Hour)},
			IdToken:    &sessionv1.IDToken{ExpiresAt: ts(2 * time.Hour)},
		}
		if mut != nil {
			mut(s)
		}
		return s
	}
	tests := []struct {
		name string
		sess *sessionv1.Session
		at   time.Time
		act  action
	}{
		{"a minute before the access token expires", sess(nil), t0.Add(59 * time.Minute), actionRefresh},
		{"the ID token expires first", sess(func(s *sessionv1.Session) { s.IdToken.ExpiresAt = ts(30 * time.Minute) }), t0.Add(29 * time.Minute), actionRefresh},
		{"short-lived token: half its lifetime", sess(func(s *sessionv1.Session) { s.OauthToken.ExpiresAt = ts(10 * time.Second) }), t0.Add(5 * time.Second), actionRefresh},
		{"measured from the last refresh", sess(func(s *sessionv1.Session) {
			s.RefreshedAt = ts(time.Hour)
			s.OauthToken.ExpiresAt = ts(time.Hour + 10*time.Second)
		}), t0.Add(time.Hour + 5*time.Second), actionRefresh},
		{"cool-off after a refresh", sess(func(s *sessionv1.Session) {
			s.RefreshedAt = ts(time.Hour)
			s.OauthToken.ExpiresAt = ts(time.Hour) // the IdP handed out an expired token
		}), t0.Add(time.Hour + refreshCoolOff), actionRefresh},
		{"no refresh token: delete at expiry", sess(func(s *sessionv1.Session) { s.OauthToken.RefreshToken = "" }), t0.Add(14 * time.Hour), actionDelete},
		{"refresh disabled: delete at expiry", sess(func(s *sessionv1.Session) { s.RefreshDisabled = true }), t0.Add(14 * time.Hour), actionDelete},
		{"no token expiry known: delete at expiry", sess(func(s *sessionv1.Session) {
			s.OauthToken.ExpiresAt = nil
			s.IdToken = nil
		}), t0.Add(14 * time.Hour), actionDelete},
		{"session ends before the tokens", sess(func(s *sessionv1.Session) { s.ExpiresAt = ts(30 * time.Minute) }), t0.Add(30 * time.Minute), actionDelete},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at, act := nextAction(tt.sess)
			if !at.Equal(tt.at) || act != tt.act {
				t.Errorf("nextAction = %s %v, want %s %v", at.Sub(t0), act, tt.at.Sub(t0), tt.act)
			}
		})
	}
}

// TestRefresher signs in with short-lived access tokens, watches the
// refresher renew the session, then makes the IdP reject refreshes and
// watches it delete the session.
func TestRefresher(t *testing.T) {
	e := newEnv(t, envOptions{accessTokenTTL: 4 * time.Second, run: true})
	c := e.client()
	back := e.signIn(c, e.appOrigin+"/", "dave@example.com", "Dave", "ops")
	h, _ := sessionhandle.Decode(e.cfg.HandleKey, e.openCallback(back).Handle, time.Now())
	first := e.session(h.ID)
	if first == nil {
		t.Fatal("no session")
	}

	testutil.WaitFor(t, 20*time.Second, "the session to be refreshed", func() bool {
		s := e.session(h.ID)
		return s != nil && s.RefreshedAt != nil && s.OauthToken.GetAccessToken() != first.OauthToken.GetAccessToken()
	})
	s := e.session(h.ID)
	if !s.OauthToken.ExpiresAt.AsTime().After(first.OauthToken.ExpiresAt.AsTime()) {
		t.Errorf("refreshed token expiry %s is not after %s", s.OauthToken.ExpiresAt.AsTime(), first.OauthToken.ExpiresAt.AsTime())
	}
	if s.OauthToken.GetRefreshToken() == "" || s.IdToken.GetRaw() == "" {
		t.Error("the refresh lost the refresh token or the ID token")
	}
	if !s.ExpiresAt.AsTime().Equal(first.ExpiresAt.AsTime()) {
		t.Error("a refresh changed the session's own expiry")
	}
	if g := listStrings(s.Claims["groups"]); len(g) != 1 || g[0] != "ops" {
		t.Errorf("claims after refresh: groups %v", g)
	}

	e.idp.RejectRefreshes(true)
	testutil.WaitFor(t, 20*time.Second, "the rejected session to be deleted", func() bool { return e.session(h.ID) == nil })
}
