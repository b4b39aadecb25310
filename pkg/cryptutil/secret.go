package cryptutil

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// SecretSize is the length in bytes of a decoded shared_secret or
// cookie_secret.
const SecretSize = 32

// secretEncodings are the base64 alphabets DecodeSecret accepts, in the
// order they are tried. The padded forms come first so that a padded value is
// never misread by a raw decoder (raw decoders reject '=' anyway).
var secretEncodings = [...]*base64.Encoding{
	base64.StdEncoding,
	base64.RawStdEncoding,
	base64.URLEncoding,
	base64.RawURLEncoding,
}

// errSecretEmpty is returned by DecodeSecret for an empty value.
var errSecretEmpty = errors.New("secret is empty: expected base64 of 32 random bytes; " + makeSecretHint)

// DecodeSecret decodes a configuration secret such as shared_secret or
// cookie_secret: base64 (standard or URL alphabet, padded or not, surrounding
// white space ignored) of exactly 32 bytes. The error says what is expected;
// it never echoes the secret. DecodeSecret does not judge the bytes; see
// CheckSecret.
func DecodeSecret(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errSecretEmpty
	}
	for _, enc := range secretEncodings {
		b, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(b) != SecretSize {
			return nil, fmt.Errorf("expected base64 of %d random bytes, got %d bytes; %s", SecretSize, len(b), makeSecretHint)
		}
		return b, nil
	}
	return nil, fmt.Errorf("expected base64 of %d random bytes, got text that is not base64; %s", SecretSize, makeSecretHint)
}
