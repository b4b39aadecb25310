package testutil

import (
	"net"
	"testing"
)

func TestFreeAddr(t *testing.T) {
	l, err := net.Listen("tcp", FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

func TestRedisStopStart(t *testing.T) {
	r := StartRedis(t)
	if err := ping(r.Addr()); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	if err := ping(r.Addr()); err == nil {
		t.Fatal("PING answered after Stop")
	}
	r.Start()
	if err := ping(r.Addr()); err != nil {
		t.Fatal(err)
	}
}
