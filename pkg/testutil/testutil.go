// Package testutil holds helpers shared by gatehouse tests: free loopback
// ports, a real redis-server and gatehouse processes started and stopped
// per test, bounded waits on a condition (WaitFor) in place of sleeps, and
// a fake clock for code that takes a `now func() time.Time`.
package testutil

import (
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
)

// Ports are taken below Linux's ephemeral range (32768–60999): a port the
// kernel picks for ":0" can be handed to any outgoing connection before the
// process that was told about it binds it, which fails as "address already
// in use". Outgoing connections never take a port from this range.
const (
	portLow  = 20000
	portHigh = 32767
)

var (
	portsMu sync.Mutex
	given   = map[int]bool{} // never hand out the same port twice in one test binary
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that no other call in this test binary has returned.
func FreePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		port := portLow + rand.IntN(portHigh-portLow+1)
		if given[port] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		given[port] = true
		return port
	}
	t.Fatalf("testutil: no free port in %d-%d", portLow, portHigh)
	return 0
}

// FreeAddr returns "127.0.0.1:PORT" for a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}
