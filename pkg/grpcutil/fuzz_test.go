package grpcutil

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// VerifyServiceToken is the door of every gRPC service: it must never
// panic, and a token it accepts carries only exp/iat/nbf, within the
// lifetime bound.
func FuzzVerifyServiceToken(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	good, _ := NewServiceToken(testKey, time.Hour, now)
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add(good + ".x")
	f.Add("eyJhbGciOiJub25lIn0.eyJleHAiOjF9.")
	f.Fuzz(func(t *testing.T, token string) {
		if VerifyServiceToken(testKey, token, now) != nil {
			return
		}
		parts := strings.Split(token, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted a token of %d parts", len(parts))
		}
		pb, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatalf("accepted an undecodable payload: %v", err)
		}
		var claims map[string]json.RawMessage
		if err := json.Unmarshal(pb, &claims); err != nil {
			t.Fatalf("accepted non-JSON claims: %v", err)
		}
		for name := range claims {
			if !serviceTokenClaims[name] {
				t.Fatalf("accepted claim %q", name)
			}
		}
	})
}
