// Package grpcutil holds the gRPC plumbing every gatehouse service shares:
// service-token authentication, servers with health and reflection, and
// load-balanced clients.
package grpcutil

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Errors returned by VerifyServiceToken.
var (
	ErrTokenMissing   = errors.New("service token missing")
	ErrTokenInvalid   = errors.New("service token invalid")
	ErrTokenExpired   = errors.New("service token expired")
	ErrTokenSignature = errors.New("service token signature does not match shared_secret")
	ErrTokenClaims    = errors.New("service token carries claims a service token does not have (is it a session handle or another credential?)")
	ErrTokenLifetime  = errors.New("service token expires too far ahead")
	ErrTokenTTL       = errors.New("service token ttl must be positive and at most 24h")
)

// tokenLeeway tolerates clock skew between services.
const tokenLeeway = 30 * time.Second

// MaxServiceTokenTTL bounds how far ahead a service token's exp may lie.
// Pomerium's services mint tokens that live minutes to an hour; a longer
// one is either a mistake or a credential minted for another purpose.
const MaxServiceTokenTTL = 24 * time.Hour

// serviceTokenClaims are the only claims a service token may carry: exp
// (required), iat and nbf. Anything else (jti, sub, aud, iss, sid…) marks a
// credential of another kind, which must never pass as a service token even
// if it were signed with the same key.
var serviceTokenClaims = map[string]bool{"exp": true, "iat": true, "nbf": true}

// NewServiceToken returns an HS256 JWT, keyed by the decoded shared_secret,
// that expires after ttl. Pomerium's services send the same kind of token.
// ttl must be in (0, MaxServiceTokenTTL].
func NewServiceToken(key []byte, ttl time.Duration, now time.Time) (string, error) {
	if ttl <= 0 || ttl > MaxServiceTokenTTL {
		return "", fmt.Errorf("%w (got %s)", ErrTokenTTL, ttl)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("service token signer: %w", err)
	}
	claims := jwt.Claims{
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(ttl)),
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign service token: %w", err)
	}
	return tok, nil
}

// VerifyServiceToken checks a service token: HS256 signature under key,
// only the claims a service token has, exp present, not past and not more
// than MaxServiceTokenTTL ahead, nbf (when set) reached.
func VerifyServiceToken(key []byte, token string, now time.Time) error {
	exp, err := verifyServiceToken(key, token, now)
	if err != nil {
		return err
	}
	if now.After(exp) {
		return ErrTokenExpired
	}
	return nil
}

// verifyServiceToken checks everything but expiry and returns the expiry,
// leeway included, so that a cache can keep the answer until then.
func verifyServiceToken(key []byte, token string, now time.Time) (time.Time, error) {
	var zero time.Time
	if token == "" {
		return zero, ErrTokenMissing
	}
	header, rest, ok := strings.Cut(token, ".")
	if !ok {
		return zero, ErrTokenInvalid
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sig, ".") {
		return zero, ErrTokenInvalid
	}
	hb, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return zero, ErrTokenInvalid
	}
	var h map[string]any
	if json.Unmarshal(hb, &h) != nil || h["alg"] != "HS256" {
		return zero, ErrTokenInvalid
	}
	for name, v := range h {
		// typ is informational; crit, b64, kid and the rest would change
		// how the token is read or name another key.
		if name != "alg" && (name != "typ" || v != "JWT") {
			return zero, ErrTokenInvalid
		}
	}
	want := hmac.New(sha256.New, key)
	want.Write([]byte(token[:len(header)+1+len(payload)]))
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, want.Sum(nil)) {
		return zero, ErrTokenSignature
	}
	pb, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return zero, ErrTokenInvalid
	}
	var c map[string]json.RawMessage
	if json.Unmarshal(pb, &c) != nil {
		return zero, ErrTokenInvalid
	}
	for name := range c {
		if !serviceTokenClaims[name] {
			return zero, ErrTokenClaims
		}
	}
	expSec, ok := numericDate(c["exp"])
	if !ok {
		return zero, ErrTokenInvalid
	}
	exp := time.Unix(expSec, 0)
	if exp.After(now.Add(MaxServiceTokenTTL + tokenLeeway)) {
		return zero, ErrTokenLifetime
	}
	if raw, set := c["nbf"]; set {
		nbf, ok := numericDate(raw)
		if !ok {
			return zero, ErrTokenInvalid
		}
		if now.Add(tokenLeeway).Before(time.Unix(nbf, 0)) {
			return zero, ErrTokenInvalid
		}
	}
	if raw, set := c["iat"]; set {
		if _, ok := numericDate(raw); !ok {
			return zero, ErrTokenInvalid
		}
	}
	return exp.Add(tokenLeeway), nil
}

// numericDate reads a JWT NumericDate (seconds, possibly fractional).
func numericDate(raw json.RawMessage) (int64, bool) {
	if raw == nil {
		return 0, false
	}
	var f float64
	if json.Unmarshal(raw, &f) != nil || f < 0 || f > 1<<40 {
		return 0, false
	}
	return int64(f), true
}

// tokenCache remembers tokens already verified until they expire, so that
// a client reusing its token pays for one HMAC and JSON parse, not one per
// call. Bounded: it is cleared when full.
type tokenCache struct {
	mu sync.RWMutex
	m  map[string]time.Time
}

const tokenCacheMax = 4096

func (c *tokenCache) valid(token string, now time.Time) bool {
	c.mu.RLock()
	exp, ok := c.m[token]
	c.mu.RUnlock()
	return ok && now.Before(exp)
}

func (c *tokenCache) add(token string, exp time.Time) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= tokenCacheMax {
		c.m = make(map[string]time.Time)
	}
	c.m[token] = exp
	c.mu.Unlock()
}

// tokenSource hands out a service token, minting a new one shortly before
// the current one expires.
type tokenSource struct {
	key []byte
	ttl time.Duration

	mu    sync.Mutex
	tok   string
	exp   time.Time
	md    map[string]string // the call metadata carrying mdTok; gRPC only reads it
	mdTok string
}

// metadata returns the metadata to attach to a call. It is built once per
// token rather than once per call, since every call on the request path
// carries it.
func (s *tokenSource) metadata(now time.Time) (map[string]string, error) {
	tok, err := s.token(now)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.md == nil || s.mdTok != tok {
		s.md, s.mdTok = map[string]string{"authorization": "Bearer " + tok}, tok
	}
	return s.md, nil
}

func (s *tokenSource) token(now time.Time) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != "" && now.Add(s.ttl/2).Before(s.exp) {
		return s.tok, nil
	}
	tok, err := NewServiceToken(s.key, s.ttl, now)
	if err != nil {
		return "", err
	}
	s.tok, s.exp = tok, now.Add(s.ttl)
	return tok, nil
}
