package cryptutil

import (
	"crypto/hkdf"
	"crypto/sha256"
)

// DeriveKey derives n bytes from secret with HKDF-SHA256 (RFC 5869), no
// salt, and info as the context string. Different info strings give
// independent keys from the same secret, so one configured secret can key
// several purposes. The result is deterministic.
//
// DeriveKey panics if n is not in 1..255*32, the HKDF-SHA256 output limit;
// callers pass constant sizes.
func DeriveKey(secret []byte, info string, n int) []byte {
	k, err := hkdf.Key(sha256.New, secret, nil, info, n)
	if err != nil {
		panic("cryptutil: DeriveKey: " + err.Error())
	}
	return k
}
