package signingkey

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	ks, err := Derive(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	other, err := Derive(bytes.Repeat([]byte{8}, 32))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c := &IdentityClaims{Issuer: "a", Audience: "a", Subject: "u"}
	c.SetTimes(now)
	tok, err := ks.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Verify(tok, now); err != nil {
		t.Errorf("own token: %v", err)
	}
	if err := ks.Verify(tok, now.Add(IdentityTTL+2*time.Minute)); err == nil {
		t.Error("expired token verified")
	}
	if err := other.Verify(tok, now); err == nil {
		t.Error("another deployment's token verified")
	}
	parts := strings.Split(tok, ".")
	for name, bad := range map[string]string{
		"tampered":  parts[0] + "." + parts[1] + "x." + parts[2],
		"alg none":  "eyJhbGciOiJub25lIn0." + parts[1] + ".",
		"empty":     "",
		"garbage":   "a.b.c",
		"huge":      strings.Repeat("a", maxTokenSize+1),
		"no exp":    mustSign(t, ks, map[string]any{"sub": "u"}),
		"bad sig":   parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])),
		"two parts": parts[0] + "." + parts[1],
	} {
		if err := ks.Verify(bad, now); err == nil {
			t.Errorf("%s verified", name)
		}
	}
}

func mustSign(t *testing.T, ks *KeySet, claims any) string {
	t.Helper()
	tok, err := ks.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
