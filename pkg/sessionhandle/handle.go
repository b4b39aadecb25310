// Package sessionhandle encodes and decodes the session handle a browser
// holds in its session cookie (or sends as "Authorization: Bearer
// Pomerium-<handle>"): a compact JWS, HS256 keyed by the decoded
// shared_secret, that names a session record in the databroker. The handle
// carries no secrets of its own; the session it names holds the user's
// identity and tokens.
//
// The claims are Pomerium's: jti (session id), sub (user id), idp_id, iss,
// aud, iat, exp, nbf, databroker_server_version and
// databroker_record_version.
package sessionhandle

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// MinKeySize is the smallest HMAC key Encode and Decode accept (RFC 7518
// 3.2): the 32 bytes of a decoded shared_secret.
const MinKeySize = sha256.Size

// MaxTokenSize bounds the length of a token Decode will look at; a handle is
// a few hundred bytes, and anything longer is rejected before any work.
const MaxTokenSize = 4096

// ClockSkew is how far the clocks of the service that wrote a handle and the
// one reading it may disagree: a handle stays valid this long past its exp,
// and is accepted up to this long before its nbf.
const ClockSkew = time.Minute

// Errors returned by Decode; callers branch on them with errors.Is.
var (
	// ErrInvalid means the token is not a well-formed HS256 session handle
	// signed with the key: malformed, another algorithm, a bad signature,
	// not yet valid, or without a session id.
	ErrInvalid = errors.New("sessionhandle: invalid session handle")
	// ErrExpired means the handle is authentic but past its exp.
	ErrExpired = errors.New("sessionhandle: session handle has expired")
)

// errKeyTooShort is returned for keys below MinKeySize: a configuration
// error, not a property of the token.
var errKeyTooShort = fmt.Errorf("sessionhandle: key must be at least %d bytes", MinKeySize)

// Handle is the content of a session handle. Times have one-second
// resolution; a zero time means the claim is absent.
type Handle struct {
	// ID (jti) is the session id: the databroker session record's id.
	ID string
	// UserID (sub) is the user id, the IdP's sub.
	UserID string
	// IdentityProviderID (idp_id) names the identity provider, if several.
	IdentityProviderID string
	// Issuer (iss) is the host that wrote the handle.
	Issuer string
	// Audience (aud) lists the hosts the handle is meant for. A single
	// audience is written as a JSON string, several as a list.
	Audience []string
	// IssuedAt (iat) is when the handle was written.
	IssuedAt time.Time
	// Expiry (exp) is when the handle stops being valid; zero for none.
	Expiry time.Time
	// NotBefore (nbf) is when the handle starts being valid; zero for none.
	NotBefore time.Time
	// DatabrokerServerVersion (databroker_server_version) is the
	// databroker's server version when the session record was written.
	DatabrokerServerVersion uint64
	// DatabrokerRecordVersion (databroker_record_version) is the session
	// record's version when it was written.
	DatabrokerRecordVersion uint64
}

// Encode returns h as a compact JWS, HS256 under key, with header
// {"alg":"HS256","typ":"JWT"}. key must be at least MinKeySize bytes and
// h.ID must not be empty.
func Encode(key []byte, h *Handle) (string, error) {
	if len(key) < MinKeySize {
		return "", errKeyTooShort
	}
	if h == nil || h.ID == "" {
		return "", errors.New("sessionhandle: handle has no session id")
	}
	payload, err := json.Marshal(toClaims(h))
	if err != nil {
		return "", fmt.Errorf("sessionhandle: marshal: %w", err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("sessionhandle: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sessionhandle: sign: %w", err)
	}
	return jws.CompactSerialize()
}

// claimsOut is the JSON form Encode writes.
type claimsOut struct {
	ID                      string `json:"jti"`
	Subject                 string `json:"sub,omitempty"`
	IdentityProviderID      string `json:"idp_id,omitempty"`
	Issuer                  string `json:"iss,omitempty"`
	Audience                any    `json:"aud,omitempty"`
	IssuedAt                int64  `json:"iat,omitempty"`
	Expiry                  int64  `json:"exp,omitempty"`
	NotBefore               int64  `json:"nbf,omitempty"`
	DatabrokerServerVersion uint64 `json:"databroker_server_version,omitempty"`
	DatabrokerRecordVersion uint64 `json:"databroker_record_version,omitempty"`
}

func toClaims(h *Handle) claimsOut {
	c := claimsOut{
		ID:                      h.ID,
		Subject:                 h.UserID,
		IdentityProviderID:      h.IdentityProviderID,
		Issuer:                  h.Issuer,
		IssuedAt:                unix(h.IssuedAt),
		Expiry:                  unix(h.Expiry),
		NotBefore:               unix(h.NotBefore),
		DatabrokerServerVersion: h.DatabrokerServerVersion,
		DatabrokerRecordVersion: h.DatabrokerRecordVersion,
	}
	switch len(h.Audience) {
	case 0:
	case 1:
		c.Audience = h.Audience[0]
	default:
		c.Audience = h.Audience
	}
	return c
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
