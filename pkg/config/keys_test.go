package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"runtime"
	"testing"
	"time"
	"weak"

	"github.com/gatehouse/gatehouse/pkg/signingkey"
)

func TestKeySet(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	signingKey := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	sharedKey, _ := base64.StdEncoding.DecodeString(secret)
	derived, err := signingkey.Derive(sharedKey)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name        string
		yaml        string
		wantDerived bool
	}{
		{name: "derived from shared_secret", yaml: base, wantDerived: true},
		{name: "signing_key", yaml: base + "signing_key: " + signingKey + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.yaml), "", nil)
			if err != nil {
				t.Fatal(err)
			}
			ks, err := cfg.KeySet()
			if err != nil || ks == nil {
				t.Fatalf("KeySet = %v, %v", ks, err)
			}
			if again, _ := cfg.KeySet(); again != ks {
				t.Error("KeySet derived the keys again")
			}
			if got := ks.KeyID() == derived.KeyID(); got != tc.wantDerived {
				t.Errorf("kid %s, derived key's %s: derived = %v, want %v", ks.KeyID(), derived.KeyID(), got, tc.wantDerived)
			}
		})
	}

	if _, err := Parse([]byte(base+"signing_key: bm90IGEga2V5\n"), "", nil); err == nil {
		t.Error("a bad signing_key loaded")
	}
	if _, err := (&Config{}).KeySet(); err == nil {
		t.Error("KeySet of a configuration without keys succeeded")
	}
}

// TestKeySetKeepsNoConfig: the key set belongs to its Config, so a Config
// that was reloaded away is collected (a cache keyed by Config kept every
// configuration a process ever loaded).
func TestKeySetKeepsNoConfig(t *testing.T) {
	cfg, err := Parse([]byte(base), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.KeySet(); err != nil {
		t.Fatal(err)
	}
	w := weak.Make(cfg)
	cfg = nil
	deadline := time.Now().Add(5 * time.Second)
	for w.Value() != nil {
		if time.Now().After(deadline) {
			t.Fatal("a Config whose KeySet was asked for is never collected")
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	_ = cfg
}
