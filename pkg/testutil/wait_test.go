package testutil

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the goroutine, as the real one does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}

// run calls fn with a recorder and returns the Fatalf message, if any.
func (f *fatalRecorder) run(fn func(testing.TB)) (msg string) {
	defer func() {
		if r := recover(); r != nil && r != f {
			panic(r)
		}
		msg = f.msg
	}()
	fn(f)
	return ""
}

func TestWaitForBool(t *testing.T) {
	var n atomic.Int32
	WaitFor(t, 10*time.Second, "the third poll", func() bool { return n.Add(1) >= 3 })
	if got := n.Load(); got != 3 {
		t.Fatalf("polled %d times, want 3", got)
	}
}

func TestWaitForError(t *testing.T) {
	var n atomic.Int32
	WaitFor(t, 10*time.Second, "the third poll", func() error {
		if n.Add(1) < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if got := n.Load(); got != 3 {
		t.Fatalf("polled %d times, want 3", got)
	}
}

func TestWaitForFailsNamingWhatAndLastError(t *testing.T) {
	f := &fatalRecorder{TB: t}
	msg := f.run(func(tb testing.TB) {
		WaitFor(tb, 20*time.Millisecond, "the moon", func() error { return errors.New("still cheese") })
	})
	for _, want := range []string{"waiting for the moon", "last error: still cheese"} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure %q lacks %q", msg, want)
		}
	}
	msg = f.run(func(tb testing.TB) {
		WaitFor(tb, 20*time.Millisecond, "the sun", func() bool { return false })
	})
	if !strings.Contains(msg, "waiting for the sun") || strings.Contains(msg, "last error") {
		t.Errorf("failure %q", msg)
	}
}

// The condition is checked after the bound too: a condition that holds
// does not fail because the poll before it came too late.
func TestWaitForChecksOnceMoreAtTheBound(t *testing.T) {
	var n atomic.Int32
	WaitFor(t, 0, "an immediate condition", func() bool { return n.Add(1) == 1 })
	f := &fatalRecorder{TB: t}
	n.Store(0)
	msg := f.run(func(tb testing.TB) {
		WaitFor(tb, 0, "a condition false at first", func() bool { return n.Add(1) > 1 })
	})
	if msg == "" || n.Load() != 1 {
		t.Errorf("a zero timeout polled %d times (message %q), want once and a failure", n.Load(), msg)
	}
}

func TestClock(t *testing.T) {
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	c := NewClock(start)
	if !c.Now().Equal(start) {
		t.Fatalf("Now = %v, want %v", c.Now(), start)
	}
	if got := c.Advance(time.Hour); !got.Equal(start.Add(time.Hour)) || !c.Now().Equal(got) {
		t.Fatalf("Advance = %v, Now = %v", got, c.Now())
	}
	c.Set(start)
	if !c.Now().Equal(start) {
		t.Fatalf("after Set: %v", c.Now())
	}
	// Safe for concurrent use (run with -race).
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 {
			c.Advance(time.Second)
		}
	}()
	for range 100 {
		_ = c.Now()
	}
	<-done
	if got := c.Now().Sub(start); got != 100*time.Second {
		t.Fatalf("after 100 concurrent Advances: %v", got)
	}
}
