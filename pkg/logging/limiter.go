package logging

import (
	"sync"
	"time"
)

// Limiter lets through the first log line of each kind per interval and
// counts the rest, so a failure that hits every request (authorize down
// under load) writes a line per interval instead of one per request, and
// the next line says how many it stood for. Keys are the caller's: the
// message plus whatever makes two lines "the same" (the error text).
type Limiter struct {
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	seen map[string]*limited
}

type limited struct {
	last       time.Time
	suppressed int
}

// maxLimiterKeys bounds the keys a Limiter remembers; past it, it forgets
// them all (errors with unbounded variety must not grow memory).
const maxLimiterKeys = 1024

// NewLimiter returns a Limiter letting one line per key through each
// interval.
func NewLimiter(interval time.Duration) *Limiter {
	return &Limiter{interval: interval, now: time.Now, seen: map[string]*limited{}}
}

// Allow reports whether a line with key may be written now and, when it
// may, how many lines of that key were held back since the last one.
func (l *Limiter) Allow(key string) (ok bool, suppressed int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e, found := l.seen[key]
	if found && now.Sub(e.last) < l.interval {
		e.suppressed++
		return false, 0
	}
	if !found {
		if len(l.seen) >= maxLimiterKeys {
			clear(l.seen)
		}
		e = &limited{}
		l.seen[key] = e
	}
	suppressed, e.suppressed, e.last = e.suppressed, 0, now
	return true, suppressed
}
