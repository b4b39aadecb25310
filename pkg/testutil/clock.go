package testutil

import (
	"sync"
	"time"
)

// Clock is a fake clock for code that reads the time through a
// `now func() time.Time` (pass Clock.Now): a test moves it with Advance
// instead of sleeping, so TTL, expiry and lease tests run at once and
// assert behaviour at exact instants rather than wall-clock timing.
// It only moves when told to. Methods are safe for concurrent use; the
// zero Clock reads the zero time.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock reading start.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start}
}

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d (backward for a negative d, to
// test clock skew) and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
