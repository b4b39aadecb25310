package authenticate

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/cryptutil"
)

func testCipher(t testing.TB, b byte) *cryptutil.Cipher {
	t.Helper()
	key := make([]byte, 32)
	for i := range key {
		key[i] = b
	}
	c, err := cryptutil.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStateSealOpen(t *testing.T) {
	c := testCipher(t, 1)
	now := time.Unix(1_800_000_000, 0)
	fresh := newAuthState("https://app.example.com/x?y=1", true, now)
	sealed := sealState(c, fresh)
	if strings.Contains(sealed, "app.example.com") || strings.Contains(sealed, fresh.Verifier) {
		t.Fatal("sealed state shows its content")
	}
	flip := func(s string) string {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)-5] ^= 0x40
		return base64.RawURLEncoding.EncodeToString(b)
	}
	reseal := func(mut func(*authState)) string {
		st := *fresh
		mut(&st)
		return sealState(c, &st)
	}

	tests := []struct {
		name   string
		sealed string
		now    time.Time
		want   error
	}{
		{"round trip", sealed, now, nil},
		{"just before max age", sealed, now.Add(MaxStateAge), nil},
		{"past max age", sealed, now.Add(MaxStateAge + time.Second), ErrStateExpired},
		{"slightly in the future (clock skew)", sealed, now.Add(-30 * time.Second), nil},
		{"far in the future", sealed, now.Add(-2 * stateClockSkew), ErrStateInvalid},
		{"empty", "", now, ErrStateInvalid},
		{"garbage", "not-a-state", now, ErrStateInvalid},
		{"bit flipped", flip(sealed), now, ErrStateInvalid},
		{"truncated", sealed[:len(sealed)-4], now, ErrStateInvalid},
		{"another key", sealState(testCipher(t, 2), fresh), now, ErrStateInvalid},
		{"other purpose", c.Seal([]byte(`{"id":"a","csrf":"b","iat":1800000000,"nonce":"n","verifier":"v"}`), []byte("something else")), now, ErrStateInvalid},
		{"not JSON", c.Seal([]byte("hello"), stateAD), now, ErrStateInvalid},
		{"no CSRF token", reseal(func(s *authState) { s.CSRF = "" }), now, ErrStateInvalid},
		{"no verifier", reseal(func(s *authState) { s.Verifier = "" }), now, ErrStateInvalid},
		{"no nonce", reseal(func(s *authState) { s.Nonce = "" }), now, ErrStateInvalid},
		{"oversized", strings.Repeat("A", 5000), now, ErrStateInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := openState(c, tt.sealed, tt.now)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("openState error = %v, want %v", err, tt.want)
			}
			if tt.want == nil && *got != *fresh {
				t.Errorf("opened %+v, want %+v", got, fresh)
			}
		})
	}
}

func TestNewAuthStateIsRandom(t *testing.T) {
	now := time.Now()
	a, b := newAuthState("https://a/", false, now), newAuthState("https://a/", false, now)
	if a.ID == b.ID || a.CSRF == b.CSRF || a.Nonce == b.Nonce || a.Verifier == b.Verifier {
		t.Fatal("two states share a random value")
	}
	if len(a.Verifier) < 43 || len(a.Verifier) > 128 {
		t.Errorf("PKCE verifier length %d, RFC 7636 wants 43..128", len(a.Verifier))
	}
}

func TestCheckCSRF(t *testing.T) {
	st := newAuthState("https://a/", false, time.Now())
	tests := []struct {
		name   string
		cookie string
		want   error
	}{
		{"match", st.CSRF, nil},
		{"missing", "", ErrCSRFMismatch},
		{"different", st.CSRF + "x", ErrCSRFMismatch},
		{"another sign-in's", newAuthState("https://a/", false, time.Now()).CSRF, ErrCSRFMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkCSRF(st, tt.cookie); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("checkCSRF = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestReplayCache(t *testing.T) {
	c := newReplayCache()
	now := time.Unix(1_800_000_000, 0)
	a := newAuthState("https://a/", false, now)
	b := newAuthState("https://a/", false, now)
	steps := []struct {
		name string
		st   *authState
		at   time.Time
		want bool
	}{
		{"first use of a", a, now, true},
		{"replay of a", a, now.Add(time.Second), false},
		{"first use of b", b, now.Add(time.Second), true},
		{"replay of a near its expiry", a, now.Add(MaxStateAge), false},
		// Forgotten once expired: openState refuses such a state before
		// the cache is asked.
		{"b after its expiry", b, now.Add(MaxStateAge + 2*time.Minute), true},
	}
	for _, s := range steps {
		if got := c.use(s.st, s.at); got != s.want {
			t.Errorf("%s: use = %t, want %t", s.name, got, s.want)
		}
	}
	// Entries are forgotten once their state would be refused as expired.
	c.use(newAuthState("https://a/", false, now), now.Add(2*MaxStateAge))
	c.mu.Lock()
	n := len(c.used)
	c.mu.Unlock()
	if n != 1 {
		t.Errorf("%d entries after expiry, want 1 (only the newest)", n)
	}
}

// TestStateVector opens a state sealed by this version under a fixed key:
// replicas of a rolling upgrade must open each other's states, so the
// format (JSON field names, additional data) must not drift unnoticed.
func TestStateVector(t *testing.T) {
	const sealed = "NP_xbPEyT6niaD3VEr9lLHaJEZBikhAYUUTM2H1wgZU_J1ZsIzMFIRlwVng5w0r7T77zPrjlfav28GkzJqvmDzWfONOiN2AJ9jf1X7wRqW3gdx6Hat7g84kZ63TDBRWXxKx1eCRaWU0debomhS5hoPi2Om727oK94hxos3Jagx4jl7i6cmnLWzkQn0FkQa53nDAKYCWXeNJgAgFlZLB0Hs0nwA0vLIMXyQ3Yz92JJ83QbAnfMqBYGCTIUqYxRLVuFiknrOKCwRY7zzq9K8cu7TycrIj-5FI5p_V5T5EzCctpg57v1-PjwLpH"
	want := authState{
		ID: "state-id-1", CSRF: "csrf-token-1", IssuedAt: 1800000000,
		RedirectURI: "https://app.example.com/dashboard?x=1",
		Nonce:       "nonce-1", Verifier: "verifier-0123456789012345678901234567890123456789",
	}
	got, err := openState(testCipher(t, 7), sealed, time.Unix(1800000000+60, 0))
	if err != nil {
		t.Fatalf("openState: %v", err)
	}
	if *got != want {
		t.Errorf("opened %+v, want %+v", *got, want)
	}
	if _, err := openState(testCipher(t, 8), sealed, time.Unix(1800000000+60, 0)); !errors.Is(err, ErrStateInvalid) {
		t.Errorf("another key: %v, want ErrStateInvalid", err)
	}
}
