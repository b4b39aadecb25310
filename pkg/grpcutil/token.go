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
)

// tokenLeeway tolerates clock skew between services.
const tokenLeeway = 30 * time.Second

// NewServiceToken returns an HS256 JWT, keyed by the decoded shared_secret,
// that expires after ttl. Pomerium's services send the same kind of token.
func NewServiceToken(key []byte, ttl time.Duration, now time.Time) (string, error) {
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

// VerifyServiceToken checks a service token's HS256 signature and expiry.
// Only HS256 is accepted.
func VerifyServiceToken(key []byte, token string, now time.Time) error {
	exp, err := verifyServiceToken(key, token)
	if err != nil {
		return err
	}
	if now.After(exp) {
		return ErrTokenExpired
	}
	return nil
}

// verifyServiceToken checks the signature and returns the expiry, leeway included.
func verifyServiceToken(key []byte, token string) (time.Time, error) {
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
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hb, &h) != nil || h.Alg != "HS256" {
		return zero, ErrTokenInvalid
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
	var c struct {
		Exp *float64 `json:"exp"`
	}
	if json.Unmarshal(pb, &c) != nil || c.Exp == nil {
		return zero, ErrTokenInvalid
	}
	return time.Unix(int64(*c.Exp), 0).Add(tokenLeeway), nil
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
