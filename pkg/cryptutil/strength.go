package cryptutil

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// makeSecretHint is the one way to make a secret, in every message that
// refuses one.
const makeSecretHint = "make one with: head -c32 /dev/urandom | base64"

// publishedSecrets are the SHA-256 digests of decoded secrets that were
// published in this repository's development files (docker-compose.yaml,
// deployments/kubernetes/secret.yaml, deployments/guide/config.yaml,
// deployments/dev/config.yaml) before they generated their own. Anyone can
// read them, so with one of them anyone can mint service tokens and, unless
// signing_key is set, identity JWTs an upstream accepts. Digests, not the
// values, so that this list is not one more place that publishes them.
var publishedSecrets = map[string]string{
	"23db796b040bbba1acaba9f234ea8552ac06300cb2d4157b1a6cbf9306c88be5": "the development shared_secret published in gatehouse's docker-compose.yaml and deployments/",
	"8961cb95376cf74ed36fd860c0656957b5293b25ef0fcce5e5641fd9d07ff7a8": "the development cookie_secret published in gatehouse's docker-compose.yaml and deployments/",
}

// ErrWeakSecret is wrapped by CheckSecret's errors.
var ErrWeakSecret = errors.New("not a random secret")

// minDistinctBytes is the fewest distinct byte values CheckSecret accepts
// in 32 bytes. 32 bytes from a random source have about 30 distinct
// values; fewer than 16 happens by chance with a probability far below
// 2^-60, so a secret with fewer was not drawn at random (all zeros, a
// repeated pattern, a counter).
const minDistinctBytes = 16

// CheckSecret refuses a decoded secret that is public or was not drawn at
// random: one published in this repository, one with few distinct bytes,
// or one made only of printable ASCII (base64 of a password or a hex
// string: random bytes are all printable with a probability of about
// 2^-45). The error says why and how to make a good one, never the value.
func CheckSecret(b []byte) error {
	sum := sha256.Sum256(b)
	if where, ok := publishedSecrets[hex.EncodeToString(sum[:])]; ok {
		return fmt.Errorf("%w: it is %s, so anyone can read it; %s", ErrWeakSecret, where, makeSecretHint)
	}
	var seen [256]bool
	distinct, printable := 0, true
	for _, c := range b {
		if !seen[c] {
			seen[c] = true
			distinct++
		}
		if c < 0x20 || c > 0x7e {
			printable = false
		}
	}
	switch {
	case printable:
		return fmt.Errorf("%w: it decodes to printable text (a password or hex string in base64), not random bytes; %s", ErrWeakSecret, makeSecretHint)
	case distinct < minDistinctBytes:
		return fmt.Errorf("%w: it has only %d distinct byte values where random bytes have about 30 (all zeros or a repeated pattern); %s", ErrWeakSecret, distinct, makeSecretHint)
	}
	return nil
}
