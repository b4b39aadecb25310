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
	cb := CallbackURL(redirect, "the-handle", key, c, now)
	if cb.Host != "grafana.example.com" || cb.Path != CallbackPath {
		t.Fatalf("callback %s", cb)
	}
	h, r, err := OpenCallback(cb, "grafana.example.com", key, c, now.Add(time.Minute))
	if err != nil || h != "the-handle" || r.String() != redirect.String() {
		t.Fatalf("open: %q %v %v", h, r, err)
	}
	tests := []struct {
		name string
		u    func() *url.URL
		host string
		at   time.Time
		want error
	}{
		{"other host", func() *url.URL { return cb }, "evil.example.com", now, ErrBadCallback},
		{"expired", func() *url.URL { return cb }, "grafana.example.com", now.Add(10 * time.Minute), cryptutil.ErrURLExpired},
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
			if _, _, err := OpenCallback(tt.u(), tt.host, key, c, tt.at); !errors.Is(err, tt.want) {
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
