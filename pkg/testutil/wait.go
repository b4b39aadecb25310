package testutil

import (
	"errors"
	"testing"
	"time"
)

// Condition is what WaitFor polls: a func() bool that reports whether the
// awaited state holds, or a func() error that returns nil once it holds.
// Prefer the error form when the check can say what is still wrong: the
// last error goes into the failure message.
type Condition interface {
	func() bool | func() error
}

// Polling starts fast, so that a condition which holds a moment later
// costs the test little, and backs off, so that a long wait on a busy
// machine does not spin.
const (
	waitFirstDelay = 2 * time.Millisecond
	waitMaxDelay   = 100 * time.Millisecond
)

var errNotYet = errors.New("condition false")

// WaitFor polls cond until it holds and fails the test (t.Fatalf) when
// timeout passes first, naming what it waited for (e.g. "authorize
// ready") and, for a func() error, the last error. cond runs on the
// calling goroutine, so it may itself call t.Fatal, e.g. when a process
// it waits on has exited. The condition is checked once more after the
// bound, so a slow poll never fails a condition that holds.
func WaitFor[C Condition](t testing.TB, timeout time.Duration, what string, cond C) {
	t.Helper()
	if err := waitFor(timeout, asErrorFunc(cond)); err != nil {
		if err == errNotYet {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		t.Fatalf("timed out after %v waiting for %s: last error: %v", timeout, what, err)
	}
}

func asErrorFunc[C Condition](cond C) func() error {
	switch c := any(cond).(type) {
	case func() bool:
		return func() error {
			if c() {
				return nil
			}
			return errNotYet
		}
	case func() error:
		return c
	}
	panic("unreachable: Condition has two members")
}

// waitFor is WaitFor without the testing.TB, returning the last error.
func waitFor(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	delay := waitFirstDelay
	for {
		err := cond()
		if err == nil {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return err
		}
		time.Sleep(min(delay, left))
		delay = min(2*delay, waitMaxDelay)
	}
}
