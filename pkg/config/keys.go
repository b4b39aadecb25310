package config

import (
	"errors"

	"github.com/gatehouse/gatehouse/pkg/signingkey"
)

// errNoSigningKey is KeySet's error for a configuration with neither key.
var errNoSigningKey = errors.New("no signing_key and no shared_secret to derive one from")

// deriveKeySet sets c.keySet once, while the configuration loads: parsing
// or deriving keys is too slow to repeat per request, and a key set that
// belongs to its Config goes when the Config goes (a cache keyed by Config
// would keep every configuration a process ever loaded).
func (c *Config) deriveKeySet(errs *Errors) {
	switch {
	case c.SigningKey != "":
		ks, err := signingkey.Parse(c.SigningKey)
		if err != nil {
			errs.add("signing_key", c.lines["signing_key"], err.Error())
			return
		}
		c.keySet = ks
	case len(c.SharedKey) > 0:
		ks, err := signingkey.Derive(c.SharedKey)
		if err != nil {
			errs.add("shared_secret", c.lines["shared_secret"], "derive the signing key: "+err.Error())
			return
		}
		c.keySet = ks
	}
}

// KeySet returns the identity-JWT signing keys, derived once when the
// configuration loaded: signing_key when set, else the P-256 key derived
// from shared_secret that every service of a deployment derives alike.
// It returns an error only when the configuration has neither.
func (c *Config) KeySet() (*signingkey.KeySet, error) {
	if c.keySet == nil {
		return nil, errNoSigningKey
	}
	return c.keySet, nil
}
