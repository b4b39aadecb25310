package logging

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := NewLimiter(time.Second)
	l.now = func() time.Time { return now }
	steps := []struct {
		advance        time.Duration
		key            string
		wantOK         bool
		wantSuppressed int
	}{
		{0, "a", true, 0},
		{100 * time.Millisecond, "a", false, 0},
		{100 * time.Millisecond, "a", false, 0},
		{0, "b", true, 0}, // another kind is not held back by a
		{time.Second, "a", true, 2},
		{0, "a", false, 0},
		{2 * time.Second, "a", true, 1},
		{2 * time.Second, "a", true, 0},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		ok, n := l.Allow(s.key)
		if ok != s.wantOK || n != s.wantSuppressed {
			t.Fatalf("step %d (%s): Allow = %v, %d; want %v, %d", i, s.key, ok, n, s.wantOK, s.wantSuppressed)
		}
	}
}

func TestLimiterBoundsKeys(t *testing.T) {
	l := NewLimiter(time.Hour)
	for i := range 3 * maxLimiterKeys {
		l.Allow(string(rune(i)))
	}
	if n := len(l.seen); n > maxLimiterKeys {
		t.Fatalf("remembers %d keys, bound %d", n, maxLimiterKeys)
	}
}
