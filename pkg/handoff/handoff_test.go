package handoff

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/cryptutil"
)

var key = []byte("0123456789abcdef0123456789abcdef")

func TestCallbackRoundTrip(t *testing.T) {
	c, err := cryptutil.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	redirect, _ := url.Parse("https://grafana.example.com/d/abc?x=1")
	b := NewBinding()
	cb := CallbackURL(redirect, "the-handle", b.Param(), key, c, now)
	if cb.Host != "grafana.example.com" || cb.Path != CallbackPath {
		t.Fatalf("callback %s", cb)
	}
	got, err := OpenCallback(cb, "grafana.example.com", key, c, now.Add(time.Minute))
	if err != nil || got.Handle != "the-handle" || got.RedirectURI.String() != redirect.String() || got.Binding != b.Param() || got.BindingID != b.ID {
		t.Fatalf("open: %+v %v", got, err)
	}
	if want := now.Add(CallbackTTL + cryptutil.SignedURLClockSkew); !got.Expiry.Equal(want) {
		t.Errorf("expiry %s, want %s", got.Expiry, want)
	}
	sign := func(q url.Values) func() *url.URL {
		return func() *url.URL {
			u := url.URL{Scheme: "https", Host: "grafana.example.com", Path: CallbackPath, RawQuery: q.Encode()}
			return cryptutil.SignURL(key, &u, now, CallbackTTL)
		}
	}
	sealed := c.Seal([]byte("h"), []byte("grafana.example.com"))
	tests := []struct {
		name string
		u    func() *url.URL
		host string
		at   time.Time
		want error
	}{
		{"other host", func() *url.URL { return cb }, "evil.example.com", now, ErrBadCallback},
		{"expired", func() *url.URL { return cb }, "grafana.example.com", now.Add(CallbackTTL + cryptutil.SignedURLClockSkew), cryptutil.ErrURLExpired},
		{"no binding", sign(url.Values{QueryRedirectURI: {"https://grafana.example.com/"}, QuerySessionEncrypted: {sealed}}), "grafana.example.com", now, ErrBadCallback},
		{"bad binding", sign(url.Values{QueryRedirectURI: {"https://grafana.example.com/"}, QuerySessionEncrypted: {sealed}, QueryBinding: {"x.y"}}), "grafana.example.com", now, ErrBadCallback},
		{"javascript redirect", sign(url.Values{QueryRedirectURI: {"javascript://grafana.example.com/%0aalert(1)"}, QuerySessionEncrypted: {sealed}, QueryBinding: {b.Param()}}), "grafana.example.com", now, ErrBadCallback},
		{"handle sealed for another host", sign(url.Values{QueryRedirectURI: {"https://grafana.example.com/"}, QuerySessionEncrypted: {c.Seal([]byte("h"), []byte("evil.example.com"))}, QueryBinding: {b.Param()}}), "grafana.example.com", now, ErrBadCallback},
		{"tampered redirect", func() *url.URL {
			u := *cb
			q := u.Query()
			q.Set(QueryRedirectURI, "https://evil.example.com/")
			u.RawQuery = q.Encode()
			return &u
		}, "grafana.example.com", now, cryptutil.ErrURLSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := OpenCallback(tt.u(), tt.host, key, c, tt.at); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSignInURL(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	auth, _ := url.Parse("https://authenticate.example.com")
	u := SignInURL(auth, "https://grafana.example.com/", true, key, now)
	if u.Path != SignInPath || u.Query().Get(QueryRedirectURI) != "https://grafana.example.com/" || u.Query().Get(QueryIsProgrammatic) != "true" {
		t.Fatalf("sign in url %s", u)
	}
	if err := cryptutil.VerifySignedURL(key, u, now); err != nil {
		t.Fatal(err)
	}
}
