package main

import (
	"net"
	"strconv"
	"testing"
)

func TestFreeAddrs(t *testing.T) {
	addrs, err := freeAddrs(15)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	low := ephemeralLow()
	for _, a := range addrs {
		host, p, err := net.SplitHostPort(a)
		if err != nil || host != "127.0.0.1" {
			t.Fatalf("address %q: want 127.0.0.1:port", a)
		}
		if seen[a] {
			t.Fatalf("address %s handed out twice", a)
		}
		seen[a] = true
		if n, _ := strconv.Atoi(p); low-20000 > 1000 && n >= low {
			t.Errorf("port %d is in the ephemeral range (from %d)", n, low)
		}
	}
	if len(addrs) != 15 {
		t.Fatalf("%d addresses, want 15", len(addrs))
	}
}
