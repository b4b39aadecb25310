package cryptutil

import (
	"bytes"
	"strings"
	"testing"
)

// testSecret is bytes 0xe0..0xff; its base64 uses both '+' and '/', so the
// standard and URL alphabets spell it differently.
var testSecret = func() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(0xe0 + i)
	}
	return b
}()

func TestDecodeSecret(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		wantErr string // substring; empty means success with testSecret
	}{
		{"std padded", "4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6+/z9/v8=", ""},
		{"std raw", "4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6+/z9/v8", ""},
		{"url padded", "4OHi4-Tl5ufo6err7O3u7_Dx8vP09fb3-Pn6-_z9_v8=", ""},
		{"url raw", "4OHi4-Tl5ufo6err7O3u7_Dx8vP09fb3-Pn6-_z9_v8", ""},
		{"surrounding white space", " 4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6+/z9/v8=\n", ""},
		{"empty", "", "secret is empty"},
		{"blank", "  \n", "secret is empty"},
		{"16 bytes", "AAAAAAAAAAAAAAAAAAAAAA==", "expected base64 of 32 random bytes, got 16 bytes"},
		{"33 bytes", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "got 33 bytes"},
		{"not base64", "this is not base64!", "got text that is not base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeSecret(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("DecodeSecret(%q) error = %v, want containing %q", tt.in, err, tt.wantErr)
				}
				if strings.TrimSpace(tt.in) != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
					t.Fatalf("error echoes the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeSecret(%q): %v", tt.in, err)
			}
			if !bytes.Equal(got, testSecret) {
				t.Fatalf("DecodeSecret(%q) = %x, want %x", tt.in, got, testSecret)
			}
		})
	}
}

func TestRandomToken(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 16, 32} {
		tok := RandomToken(n)
		if want := (n*8 + 5) / 6; len(tok) != want {
			t.Errorf("RandomToken(%d) has length %d, want %d", n, len(tok), want)
		}
		if strings.ContainsAny(tok, "+/=") {
			t.Errorf("RandomToken(%d) = %q is not unpadded base64url", n, tok)
		}
	}
	if RandomToken(32) == RandomToken(32) {
		t.Fatal("two RandomToken(32) are equal")
	}
}

func TestDeriveKey(t *testing.T) {
	t.Parallel()
	ikm := bytes.Repeat([]byte{0x0b}, 22)
	tests := []struct {
		name   string
		secret []byte
		info   string
		n      int
		want   string // hex
	}{
		// RFC 5869 appendix A.3 (SHA-256, zero-length salt and info).
		{"rfc5869 A.3", ikm, "", 42, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"},
		{"gatehouse info", testSecret, "gatehouse test", 32, "3714e0e4102d85d82010636cf102e856a7858c91632b044c99e2df31298796e4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := DeriveKey(tt.secret, tt.info, tt.n)
			if hexs := hexString(got); hexs != tt.want {
				t.Fatalf("DeriveKey = %s, want %s", hexs, tt.want)
			}
		})
	}
	if bytes.Equal(DeriveKey(testSecret, "a", 32), DeriveKey(testSecret, "b", 32)) {
		t.Fatal("different info gave the same key")
	}
}

func TestDeriveKeyPanicsOnBadLength(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Fatal("DeriveKey with n too large did not panic")
		}
	}()
	DeriveKey(testSecret, "x", 255*32+1)
}
