package cryptutil

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// ErrTampered is returned by (*Cipher).Open when the sealed value is
// malformed, was modified, was sealed under another key, or is bound to other
// additional data. The causes are deliberately not told apart.
var ErrTampered = errors.New("cryptutil: sealed value is malformed or has been tampered with")

// rawURLStrict decodes unpadded base64url and rejects non-canonical
// encodings (non-zero trailing bits), so one sealed value has one spelling.
var rawURLStrict = base64.RawURLEncoding.Strict()

// Cipher seals and opens short values (the OAuth state, CSRF and PKCE
// cookies, the session handle handed to a route host) with
// XChaCha20-Poly1305. Its 24-byte nonces are random, so one key can seal
// practically unlimited values.
//
// A Cipher is safe for concurrent use by multiple goroutines.
type Cipher struct {
	aead cipher.AEAD
}

// NewCipher returns a Cipher keyed by key, which must be 32 bytes (a decoded
// cookie_secret; see DecodeSecret).
func NewCipher(key []byte) (*Cipher, error) {
	if len(key) != chacha20poly1305.KeySize {
		return nil, fmt.Errorf("cryptutil: cipher key must be %d bytes, got %d", chacha20poly1305.KeySize, len(key))
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("cryptutil: %w", err)
	}
	return &Cipher{aead: aead}, nil
}

// Seal encrypts and authenticates plaintext, binding additionalData (which
// is not stored and must be given again to Open), and returns
// base64url(nonce || ciphertext || tag) without padding, safe for cookies and
// query strings.
func (c *Cipher) Seal(plaintext, additionalData []byte) string {
	var nonce [chacha20poly1305.NonceSizeX]byte
	_, _ = rand.Read(nonce[:])
	return c.sealWithNonce(nonce[:], plaintext, additionalData)
}

// sealWithNonce is Seal with a caller-chosen nonce; tests use it for fixed
// vectors. The nonce and ciphertext share one buffer on purpose (one
// allocation besides the output string).
func (c *Cipher) sealWithNonce(nonce, plaintext, additionalData []byte) string {
	buf := make([]byte, len(nonce), len(nonce)+len(plaintext)+c.aead.Overhead())
	copy(buf, nonce)
	buf = c.aead.Seal(buf, nonce, plaintext, additionalData)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// Open authenticates and decrypts a value produced by Seal with the same key
// and additionalData. Any failure is reported as ErrTampered.
func (c *Cipher) Open(sealed string, additionalData []byte) ([]byte, error) {
	minLen := base64.RawURLEncoding.EncodedLen(chacha20poly1305.NonceSizeX + c.aead.Overhead())
	if len(sealed) < minLen {
		return nil, ErrTampered
	}
	buf, err := rawURLStrict.DecodeString(sealed)
	if err != nil {
		return nil, ErrTampered
	}
	nonce, ct := buf[:chacha20poly1305.NonceSizeX], buf[chacha20poly1305.NonceSizeX:]
	// Decrypt in place: the plaintext reuses the decoded buffer.
	pt, err := c.aead.Open(ct[:0], nonce, ct, additionalData)
	if err != nil {
		return nil, ErrTampered
	}
	return pt, nil
}
