package handoff

import (
	"sync"
	"time"
)

// UsedSet remembers ids (of sign-in bindings) that were used once, until
// they could not be used anyway, so that each is accepted at most once by
// this process. It is safe for concurrent use. The zero value is not
// usable; call NewUsedSet.
type UsedSet struct {
	mu        sync.Mutex
	max       int
	used      map[string]time.Time // id → when it can be forgotten
	lastPrune time.Time
}

// NewUsedSet returns an empty set holding at most max live ids.
func NewUsedSet(max int) *UsedSet {
	return &UsedSet{max: max, used: map[string]time.Time{}}
}

// Use marks id used until forgetAt and reports whether it was unused.
// When the set is full of live ids it reports false (fail closed): the
// user signs in again, rather than a replay getting through.
func (s *UsedSet) Use(id string, forgetAt, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.lastPrune) > time.Minute || len(s.used) >= s.max {
		for k, exp := range s.used {
			if now.After(exp) {
				delete(s.used, k)
			}
		}
		s.lastPrune = now
	}
	if _, ok := s.used[id]; ok || len(s.used) >= s.max {
		return false
	}
	s.used[id] = forgetAt
	return true
}
