package cryptutil

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// testNonce is a fixed 24-byte nonce for reproducible vectors.
var testNonce = []byte("0123456789abcdefghijklmn")

// sealVector is testSecret sealing "hello, gatehouse" with additional data
// "csrf" under testNonce.
const sealVector = "MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1usOX_EINcusVYRsrlV-K38EUxlp7qpX2ROqmyoYbVIyY"

func TestCipherSealVector(t *testing.T) {
	t.Parallel()
	c, err := NewCipher(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.sealWithNonce(testNonce, []byte("hello, gatehouse"), []byte("csrf")); got != sealVector {
		t.Fatalf("sealWithNonce = %q, want %q", got, sealVector)
	}
	pt, err := c.Open(sealVector, []byte("csrf"))
	if err != nil {
		t.Fatalf("Open(vector): %v", err)
	}
	if string(pt) != "hello, gatehouse" {
		t.Fatalf("Open(vector) = %q", pt)
	}
}

func TestCipherOpenRejects(t *testing.T) {
	t.Parallel()
	c, _ := NewCipher(testSecret)
	other, _ := NewCipher(bytes.Repeat([]byte{1}, 32))
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	tests := []struct {
		name   string
		c      *Cipher
		sealed string
		ad     string
	}{
		{"wrong additional data", c, sealVector, "state"},
		{"no additional data", c, sealVector, ""},
		{"wrong key", other, sealVector, "csrf"},
		{"nonce modified", c, flip(sealVector, 3), "csrf"},
		{"ciphertext modified", c, flip(sealVector, 35), "csrf"},
		{"tag modified", c, flip(sealVector, len(sealVector)-2), "csrf"},
		{"truncated", c, sealVector[:len(sealVector)-1], "csrf"},
		{"too short", c, sealVector[:60], "csrf"},
		{"empty", c, "", "csrf"},
		{"padded", c, sealVector + "=", "csrf"},
		{"not base64", c, "!" + sealVector[1:], "csrf"},
		{"appended", c, sealVector + "AAAA", "csrf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pt, err := tt.c.Open(tt.sealed, []byte(tt.ad))
			if !errors.Is(err, ErrTampered) {
				t.Fatalf("Open = %q, %v; want ErrTampered", pt, err)
			}
		})
	}
}

func TestNewCipherKeySize(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := NewCipher(make([]byte, n)); err == nil {
			t.Errorf("NewCipher with %d-byte key: no error", n)
		}
	}
}

func TestCipherConcurrent(t *testing.T) {
	t.Parallel()
	c, _ := NewCipher(testSecret)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				msg := fmt.Appendf(nil, "message %d/%d", i, j)
				s := c.Seal(msg, []byte("ad"))
				pt, err := c.Open(s, []byte("ad"))
				if err != nil || !bytes.Equal(pt, msg) {
					t.Errorf("round trip %q: %q, %v", msg, pt, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if c.Seal(nil, nil) == c.Seal(nil, nil) {
		t.Fatal("two seals of the same value are equal: nonce is not random")
	}
}

func BenchmarkCipherSeal(b *testing.B) {
	c, _ := NewCipher(testSecret)
	msg := bytes.Repeat([]byte("x"), 256)
	b.ReportAllocs()
	for b.Loop() {
		c.Seal(msg, []byte("csrf"))
	}
}

func BenchmarkCipherOpen(b *testing.B) {
	c, _ := NewCipher(testSecret)
	s := c.Seal(bytes.Repeat([]byte("x"), 256), []byte("csrf"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Open(s, []byte("csrf")); err != nil {
			b.Fatal(err)
		}
	}
}
