package testutil_test

import (
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/pkg/testutil"
)

// A token that expires after a minute, tested without waiting a minute.
func ExampleClock() {
	clock := testutil.NewClock(time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC))
	expiry := clock.Now().Add(time.Minute)
	expired := func() bool { return !clock.Now().Before(expiry) }

	fmt.Println(expired())
	clock.Advance(time.Minute)
	fmt.Println(expired())
	// Output:
	// false
	// true
}
