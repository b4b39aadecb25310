package cryptutil

import (
	"crypto/rand"
	"encoding/base64"
)

// RandomBytes returns n bytes from crypto/rand. It never fails: since Go 1.24
// crypto/rand.Read aborts the program rather than return an error.
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// RandomToken returns n random bytes encoded as unpadded base64url, suitable
// for CSRF tokens, OAuth state, PKCE verifiers (n >= 32) and identifiers.
func RandomToken(n int) string {
	return base64.RawURLEncoding.EncodeToString(RandomBytes(n))
}
