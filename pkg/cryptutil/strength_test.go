package cryptutil

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestCheckSecret(t *testing.T) {
	t.Parallel()
	b64 := func(s string) []byte {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name    string
		secret  []byte
		wantErr string // substring; empty means accepted
	}{
		{"random", RandomBytes(SecretSize), ""},
		{"bytes e0..ff", testSecret, ""},
		{"published shared_secret", b64("ZGV2LW9ubHktc2hhcmVkLXNlY3JldC0zMi1ieXRlcyE="), "development shared_secret published"},
		{"published cookie_secret", b64("ZGV2LW9ubHktY29va2llLXNlY3JldC0zMi1ieXRlcyE="), "development cookie_secret published"},
		{"all zero", make([]byte, SecretSize), "only 1 distinct byte values"},
		{"repeated pattern", bytes.Repeat([]byte{0x8a, 0x01, 0xf3, 0x99}, 8), "only 4 distinct"},
		{"password", []byte("correct horse battery staple!!!!"), "printable text"},
		{"hex string", []byte("9f86d081884c7d659a2feaa0c55ad015"), "printable text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := CheckSecret(tt.secret)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckSecret refused a good secret: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("CheckSecret error = %v, want containing %q", err, tt.wantErr)
			}
			if !errors.Is(err, ErrWeakSecret) || !strings.Contains(err.Error(), "head -c32 /dev/urandom | base64") {
				t.Fatalf("error %q is not ErrWeakSecret or does not say how to make a secret", err)
			}
		})
	}
}

// A thousand random secrets all pass: the thresholds sit far from what a
// random source produces.
func TestCheckSecretAcceptsRandom(t *testing.T) {
	t.Parallel()
	for range 1000 {
		if b := RandomBytes(SecretSize); CheckSecret(b) != nil {
			t.Fatalf("CheckSecret(%x): %v", b, CheckSecret(b))
		}
	}
}
