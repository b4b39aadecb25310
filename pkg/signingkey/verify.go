package signingkey

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// ErrNotOurs is returned by Verify for a token that no key of the set
// signed, or that is malformed or expired.
var ErrNotOurs = errors.New("signingkey: not a valid identity JWT of this deployment")

// maxTokenSize bounds what Verify parses: an identity JWT is well under it.
const maxTokenSize = 16 << 10

// Verify reports whether token is an identity JWT signed by one of the
// set's keys (by kid, with the key's own algorithm) and not expired at
// now (exp required, one minute of clock skew). It returns ErrNotOurs
// otherwise. It is safe for concurrent use.
func (s *KeySet) Verify(token string, now time.Time) error {
	if token == "" || len(token) > maxTokenSize {
		return ErrNotOurs
	}
	algs := make([]jose.SignatureAlgorithm, 0, len(s.keys))
	for _, k := range s.keys {
		algs = append(algs, k.alg)
	}
	jws, err := jose.ParseSigned(token, algs)
	if err != nil || len(jws.Signatures) != 1 {
		return ErrNotOurs
	}
	h := jws.Signatures[0].Header
	for i, k := range s.keys {
		if k.kid != h.KeyID || string(k.alg) != h.Algorithm {
			continue
		}
		payload, err := jws.Verify(s.jwks.Keys[i].Key)
		if err != nil {
			return ErrNotOurs
		}
		var c struct {
			Expiry *int64 `json:"exp"`
		}
		if json.Unmarshal(payload, &c) != nil || c.Expiry == nil || !now.Before(time.Unix(*c.Expiry, 0).Add(time.Minute)) {
			return ErrNotOurs
		}
		return nil
	}
	return ErrNotOurs
}
