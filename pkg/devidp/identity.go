package devidp

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/mail"
	"slices"
	"strings"
)

// identity is who a person chose to be on the login form.
type identity struct {
	// Subject is the OIDC "sub": Subject(Email).
	Subject string
	// Email is the address typed on the form; it is always reported as
	// verified.
	Email string
	// Name is the display name ("name" claim).
	Name string
	// Groups is the "groups" claim, never nil.
	Groups []string
}

// Subject returns the stable "sub" the provider issues for an email address:
// the first 32 hex digits (128 bits) of the SHA-256 of the address, trimmed
// and lower-cased. The same email always gets the same sub, across restarts
// and machines, and the sub is never mistaken for the email itself.
func Subject(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:16])
}

// newIdentity validates and normalises the login form's values: email must
// be a bare address; an empty name becomes the email's local part; groups is
// a comma-separated list whose entries are trimmed, de-duplicated and never
// empty.
func newIdentity(email, name, groups string) (identity, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return identity{}, errors.New("email is required")
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email {
		return identity{}, errors.New("email must be a plain address like alice@example.com")
	}
	name = strings.TrimSpace(name)
	if name == "" {
		name, _, _ = strings.Cut(email, "@")
	}
	gs := []string{}
	for g := range strings.SplitSeq(groups, ",") {
		if g = strings.TrimSpace(g); g != "" && !slices.Contains(gs, g) {
			gs = append(gs, g)
		}
	}
	return identity{Subject: Subject(email), Email: email, Name: name, Groups: gs}, nil
}
