package sessionhandle

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// b64 is unpadded base64url that rejects non-canonical encodings, so every
// token has exactly one spelling.
var b64 = base64.RawURLEncoding.Strict()

// The encoded headers Decode recognises without decoding JSON: the one
// Encode writes and the bare one.
var (
	headerJWT  = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	headerBare = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256"}`))
)

// sigLen is the encoded length of an HS256 signature.
var sigLen = base64.RawURLEncoding.EncodedLen(sha256.Size)

// Decode verifies token as a session handle signed with key and returns its
// content. It accepts only alg HS256 (never "none" or another algorithm, and
// no "crit" or "b64" header), checks the signature in constant time, then
// exp and nbf against now with ClockSkew of tolerance, and requires a
// session id. Errors wrap ErrInvalid or ErrExpired, except for a key shorter
// than MinKeySize.
//
// Decode runs on every request, so it does not use go-jose: it splits the
// compact form itself, recognises the usual headers by their encoded bytes,
// and computes the HMAC with stack buffers. What remains is JSON decoding of
// the claims.
func Decode(key []byte, token string, now time.Time) (*Handle, error) {
	if len(key) < MinKeySize {
		return nil, errKeyTooShort
	}
	if len(token) > MaxTokenSize {
		return nil, errTooLong
	}
	dot1 := strings.IndexByte(token, '.')
	if dot1 < 0 {
		return nil, errNotCompact
	}
	dot2 := dot1 + 1 + strings.IndexByte(token[dot1+1:], '.')
	if dot2 <= dot1 || strings.IndexByte(token[dot2+1:], '.') >= 0 {
		return nil, errNotCompact
	}
	header, payload, sig := token[:dot1], token[dot1+1:dot2], token[dot2+1:]

	if header != headerJWT && header != headerBare {
		if err := checkHeader(header); err != nil {
			return nil, err
		}
	}

	if len(sig) != sigLen {
		return nil, errBadSignature
	}
	var got [sha256.Size]byte
	if n, err := b64.Decode(got[:], []byte(sig)); err != nil || n != sha256.Size {
		return nil, errBadSignature
	}
	var want [sha256.Size]byte
	hmacSHA256(&want, key, token[:dot2])
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return nil, errBadSignature
	}

	// The signature is good: from here on the content was written by a
	// holder of the key.
	var stack [1024]byte // avoids an allocation for every realistic handle
	buf := stack[:]
	if n := b64.DecodedLen(len(payload)); n > len(buf) {
		buf = make([]byte, n)
	}
	n, err := b64.Decode(buf, []byte(payload))
	if err != nil {
		return nil, errBadPayload
	}
	var c claimsIn
	if err := json.Unmarshal(buf[:n], &c); err != nil {
		return nil, errBadClaims
	}
	if c.ID == "" {
		return nil, errNoSessionID
	}
	h := &Handle{
		ID:                      c.ID,
		UserID:                  c.Subject,
		IdentityProviderID:      c.IdentityProviderID,
		Issuer:                  c.Issuer,
		Audience:                c.Audience,
		IssuedAt:                c.IssuedAt.toTime(),
		Expiry:                  c.Expiry.toTime(),
		NotBefore:               c.NotBefore.toTime(),
		DatabrokerServerVersion: c.DatabrokerServerVersion,
		DatabrokerRecordVersion: c.DatabrokerRecordVersion,
	}
	if c.Expiry.set && !now.Before(h.Expiry.Add(ClockSkew)) {
		return nil, ErrExpired
	}
	if c.NotBefore.set && now.Add(ClockSkew).Before(h.NotBefore) {
		return nil, errNotYetValid
	}
	return h, nil
}

// checkHeader decodes a header that is not one of the two usual ones and
// checks it: alg must be HS256 and no header may change how the JWS is
// processed (crit, b64).
func checkHeader(header string) error {
	raw, err := b64.DecodeString(header)
	if err != nil {
		return errBadHeader
	}
	var h struct {
		Alg  string           `json:"alg"`
		Crit *json.RawMessage `json:"crit"`
		B64  *json.RawMessage `json:"b64"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return errBadHeader
	}
	if h.Alg != "HS256" {
		return invalid("algorithm " + strconv.Quote(h.Alg) + " is not HS256")
	}
	if h.Crit != nil || h.B64 != nil {
		return invalid("unsupported header parameter")
	}
	return nil
}

// hmacSHA256 sets out to HMAC-SHA256(key, msg) (RFC 2104) without heap
// allocations: both passes hash one stack buffer with sha256.Sum256, which
// crypto/hmac's streaming API (a heap-allocated hash.Hash per call) does
// not allow. msg is at most MaxTokenSize bytes.
func hmacSHA256(out *[sha256.Size]byte, key []byte, msg string) {
	const block = 64 // SHA-256 block size
	var k [block]byte
	if len(key) > block {
		sum := sha256.Sum256(key)
		copy(k[:], sum[:])
	} else {
		copy(k[:], key)
	}
	var inner [block + MaxTokenSize]byte
	for i := range block {
		inner[i] = k[i] ^ 0x36
	}
	n := block + copy(inner[block:], msg)
	innerSum := sha256.Sum256(inner[:n])
	var outer [block + sha256.Size]byte
	for i := range block {
		outer[i] = k[i] ^ 0x5c
	}
	copy(outer[block:], innerSum[:])
	*out = sha256.Sum256(outer[:])
}

// invalid returns an error wrapping ErrInvalid with a reason.
func invalid(reason string) error {
	return &decodeError{reason: reason}
}

// Preallocated rejections: refusing a forged or garbage token, the path an
// attacker controls, allocates nothing.
var (
	errTooLong      = invalid("token too long")
	errNotCompact   = invalid("not a compact JWS")
	errBadSignature = invalid("bad signature")
	errBadHeader    = invalid("malformed header")
	errBadPayload   = invalid("malformed payload")
	errBadClaims    = invalid("malformed claims")
	errNoSessionID  = invalid("no session id")
	errNotYetValid  = invalid("not yet valid")
	errBadTime      = invalid("malformed time")
)

type decodeError struct{ reason string }

func (e *decodeError) Error() string { return ErrInvalid.Error() + ": " + e.reason }
func (e *decodeError) Unwrap() error { return ErrInvalid }

// claimsIn is the JSON form Decode reads.
type claimsIn struct {
	ID                      string      `json:"jti"`
	Subject                 string      `json:"sub"`
	IdentityProviderID      string      `json:"idp_id"`
	Issuer                  string      `json:"iss"`
	Audience                audience    `json:"aud"`
	IssuedAt                numericDate `json:"iat"`
	Expiry                  numericDate `json:"exp"`
	NotBefore               numericDate `json:"nbf"`
	DatabrokerServerVersion uint64      `json:"databroker_server_version"`
	DatabrokerRecordVersion uint64      `json:"databroker_record_version"`
}

// audience reads aud as a string or a list of strings (RFC 7519 4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	switch {
	case bytes.Equal(b, []byte("null")):
		*a = nil
		return nil
	case len(b) > 1 && b[0] == '"' && bytes.IndexByte(b, '\\') < 0:
		// The decoder has validated b: without escapes its content is the
		// string itself.
		*a = audience{string(b[1 : len(b)-1])}
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	if len(l) == 0 {
		l = nil
	}
	*a = l
	return nil
}

// numericDate reads a NumericDate (RFC 7519 2): seconds since the epoch,
// an integer or a fraction (truncated to seconds).
type numericDate struct {
	sec int64
	set bool
}

func (d *numericDate) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*d = numericDate{}
		return nil
	}
	if n, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		*d = numericDate{sec: n, set: true}
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || f >= math.MaxInt64 || f <= math.MinInt64 {
		return errBadTime
	}
	*d = numericDate{sec: int64(f), set: true}
	return nil
}

func (d numericDate) toTime() time.Time {
	if !d.set {
		return time.Time{}
	}
	return time.Unix(d.sec, 0)
}
