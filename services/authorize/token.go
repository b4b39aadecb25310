package authorize

import (
	"strings"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse/gatehouse/pkg/extauthz"
	"github.com/gatehouse/gatehouse/pkg/sessionhandle"
)

// Where a session handle may come from, besides the cookie.
const (
	headerAuthorization         = "authorization"
	headerPomeriumAuthorization = "x-pomerium-authorization"
	bearerPomeriumPrefix        = "Bearer Pomerium-"
	pomeriumPrefix              = "Pomerium "
)

// sessionToken returns the session handle a request carries: in
// Authorization ("Bearer Pomerium-<handle>" or "Pomerium <handle>"),
// in X-Pomerium-Authorization, or in the session cookie, in that order.
// fromAuthorization reports that it came from the Authorization header
// (which must then not reach the upstream). It does not allocate.
func sessionToken(req *authv3.CheckRequest, cookieName string) (token string, fromAuthorization bool) {
	if v := extauthz.Header(req, headerAuthorization); v != "" {
		switch {
		case hasPrefixFold(v, bearerPomeriumPrefix):
			return strings.TrimSpace(v[len(bearerPomeriumPrefix):]), true
		case hasPrefixFold(v, pomeriumPrefix):
			return strings.TrimSpace(v[len(pomeriumPrefix):]), true
		}
	}
	if v := extauthz.Header(req, headerPomeriumAuthorization); v != "" {
		v = strings.TrimSpace(v)
		if hasPrefixFold(v, pomeriumPrefix) {
			v = strings.TrimSpace(v[len(pomeriumPrefix):])
		}
		return v, false
	}
	return cookieValue(extauthz.Header(req, "cookie"), cookieName), false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// cookieValue returns the value of the first cookie called name in a Cookie
// header ("a=1; name=v; b=2"), or "". It does not allocate.
func cookieValue(header, name string) string {
	for header != "" {
		var part string
		part, header, _ = strings.Cut(header, ";")
		part = strings.TrimSpace(part)
		k, v, ok := strings.Cut(part, "=")
		if ok && k == name {
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v
		}
	}
	return ""
}

// handleCache remembers session handles whose signature was verified, so
// a request that presents the same handle again costs a map lookup rather
// than an HMAC and a JSON decode. Expiry is checked on every hit. It is
// safe for concurrent use.
type handleCache struct {
	mu sync.RWMutex
	m  map[string]*sessionhandle.Handle
}

func newHandleCache() *handleCache {
	return &handleCache{m: map[string]*sessionhandle.Handle{}}
}

// decode returns the handle token stands for, verified with key, or an
// error wrapping sessionhandle.ErrInvalid or ErrExpired.
func (c *handleCache) decode(key []byte, token string, now time.Time) (*sessionhandle.Handle, error) {
	c.mu.RLock()
	h := c.m[token]
	c.mu.RUnlock()
	if h != nil {
		if handleExpired(h, now) {
			return nil, sessionhandle.ErrExpired
		}
		return h, nil
	}
	h, err := sessionhandle.Decode(key, token, now)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.m) >= maxCacheEntries {
		for k, old := range c.m {
			if handleExpired(old, now) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxCacheEntries {
			c.m = map[string]*sessionhandle.Handle{}
		}
	}
	// Clone: token may be a slice of a larger header (the Cookie line),
	// which the cache must not keep alive.
	c.m[strings.Clone(token)] = h
	c.mu.Unlock()
	return h, nil
}

// handleExpired applies Decode's expiry rule to a cached handle.
func handleExpired(h *sessionhandle.Handle, now time.Time) bool {
	return !h.Expiry.IsZero() && !now.Before(h.Expiry.Add(sessionhandle.ClockSkew))
}
