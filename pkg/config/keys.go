package config

import (
	"fmt"
	"sync"

	"github.com/gatehouse/gatehouse/pkg/signingkey"
)

// keySets caches the identity-JWT key set per configuration, because
// deriving or parsing keys is too slow to repeat per request.
var keySets sync.Map // *Config → *signingkey.KeySet

// KeySet returns the identity-JWT signing keys: signing_key when set, else
// the P-256 key derived from shared_secret that every service of a
// deployment derives alike.
func (c *Config) KeySet() (*signingkey.KeySet, error) {
	if ks, ok := keySets.Load(c); ok {
		return ks.(*signingkey.KeySet), nil
	}
	var ks *signingkey.KeySet
	var err error
	switch {
	case c.SigningKey != "":
		ks, err = signingkey.Parse(c.SigningKey)
		if err != nil {
			return nil, fmt.Errorf("signing_key: %w", err)
		}
	case len(c.SharedKey) > 0:
		ks, err = signingkey.Derive(c.SharedKey)
		if err != nil {
			return nil, fmt.Errorf("derive signing key from shared_secret: %w", err)
		}
	default:
		return nil, fmt.Errorf("no signing_key and no shared_secret to derive one from")
	}
	actual, _ := keySets.LoadOrStore(c, ks)
	return actual.(*signingkey.KeySet), nil
}
