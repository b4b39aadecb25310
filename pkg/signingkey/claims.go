package signingkey

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// IdentityTTL is the lifetime of an identity JWT: exp = iat + IdentityTTL.
const IdentityTTL = 5 * time.Minute

// IdentityClaims are the claims of the identity JWT that gatehouse sends to
// an upstream in X-Pomerium-Jwt-Assertion, as Pomerium writes them.
//
// Its JSON always has every named claim; groups is always a list ([] when
// there are none, never null). Extra claims are merged in beside them; an
// extra claim never overrides a named one.
type IdentityClaims struct {
	// Issuer (iss) is the route's host name.
	Issuer string `json:"iss"`
	// Audience (aud) is the route's host name.
	Audience string `json:"aud"`
	// Subject (sub) is the user id.
	Subject string `json:"sub"`
	// User (user) is the user id, as Pomerium repeats it.
	User string `json:"user"`
	// Email (email) is the user's email address.
	Email string `json:"email"`
	// Name (name) is the user's display name.
	Name string `json:"name"`
	// Groups (groups) are the user's groups.
	Groups []string `json:"groups"`
	// SessionID (sid) is the session id.
	SessionID string `json:"sid"`
	// ID (jti) is a fresh, unique id of this JWT.
	ID string `json:"jti"`
	// IssuedAt (iat) is the issue time in Unix seconds.
	IssuedAt int64 `json:"iat"`
	// Expiry (exp) is the expiry time in Unix seconds.
	Expiry int64 `json:"exp"`
	// Extra holds any other claims (for example those a route's
	// jwt_claims_headers or the IdP's claims add). Keys that name one of
	// the fields above are ignored when marshalling.
	Extra map[string]any `json:"-"`
}

// identityClaimsJSON has IdentityClaims' fields without its methods, so
// marshalling it does not recurse.
type identityClaimsJSON IdentityClaims

// reservedClaims are the claim names of IdentityClaims' fields.
var reservedClaims = map[string]bool{
	"iss": true, "aud": true, "sub": true, "user": true, "email": true, "name": true,
	"groups": true, "sid": true, "jti": true, "iat": true, "exp": true,
}

// SetTimes sets IssuedAt to now and Expiry to now + IdentityTTL.
func (c *IdentityClaims) SetTimes(now time.Time) {
	c.IssuedAt = now.Unix()
	c.Expiry = now.Add(IdentityTTL).Unix()
}

// MarshalJSON implements json.Marshaler: the named claims in field order,
// then the extra claims sorted by name. groups is [] when Groups is nil.
func (c IdentityClaims) MarshalJSON() ([]byte, error) {
	if c.Groups == nil {
		c.Groups = []string{} // c is a copy: the caller's value is untouched
	}
	b, err := json.Marshal(identityClaimsJSON(c))
	if err != nil || len(c.Extra) == 0 {
		return b, err
	}
	names := make([]string, 0, len(c.Extra))
	for k := range c.Extra {
		if !reservedClaims[k] {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	buf := bytes.NewBuffer(b[:len(b)-1]) // drop the closing brace
	for _, k := range names {
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(c.Extra[k])
		if err != nil {
			return nil, fmt.Errorf("signingkey: claim %q: %w", k, err)
		}
		buf.WriteByte(',')
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// UnmarshalJSON implements json.Unmarshaler: named claims fill the fields,
// every other claim goes to Extra (nil when there are none).
func (c *IdentityClaims) UnmarshalJSON(data []byte) error {
	var named identityClaimsJSON
	if err := json.Unmarshal(data, &named); err != nil {
		return err
	}
	var all map[string]any
	if err := json.Unmarshal(data, &all); err != nil {
		return err
	}
	named.Extra = nil
	for k, v := range all {
		if reservedClaims[k] {
			continue
		}
		if named.Extra == nil {
			named.Extra = make(map[string]any)
		}
		named.Extra[k] = v
	}
	*c = IdentityClaims(named)
	return nil
}
