package authorize

import (
	"strings"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse/gatehouse/pkg/extauthz"
	"github.com/gatehouse/gatehouse/pkg/sessionhandle"
)

// sessionToken returns the session handle a request carries
// (sessionhandle.FromHeaders: Authorization in Pomerium's forms,
// X-Pomerium-Authorization, then the session cookie). fromAuthorization
// reports that it came from the Authorization header (which must then not
// reach the upstream). It does not allocate.
func sessionToken(req *authv3.CheckRequest, cookieName string) (token string, fromAuthorization bool) {
	return sessionhandle.FromHeaders(extauthz.Header(req, "authorization"),
		extauthz.Header(req, "x-pomerium-authorization"), extauthz.Header(req, "cookie"), cookieName)
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
