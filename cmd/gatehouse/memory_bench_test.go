package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/config/configtest"
	"github.com/gatehouse/gatehouse/pkg/testutil"
)

// rssBytes reads a process's resident set size from /proc.
func rssBytes(tb testing.TB, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	tb.Fatal("no VmRSS")
	return 0
}

// BenchmarkIdleConnectionsMemory reports the resident memory gatehouse
// (all-in-one) holds per idle keep-alive client connection, with 10,000 of
// them open, each after one request.
func BenchmarkIdleConnectionsMemory(b *testing.B) {
	const conns = 10_000
	bin := testutil.Gatehouse(b)
	addr, health, grpcAddr := testutil.FreeAddr(b), testutil.FreeAddr(b), testutil.FreeAddr(b)
	cfg := configtest.New().
		Set("address", addr).
		Set("grpc_address", grpcAddr).
		Set("health_check_addr", health).
		Set("authenticate_service_url", "http://authenticate.localhost").
		Set("idp_provider_url", "http://127.0.0.1:1").
		Set("idp_client_id", "x").
		Set("idp_client_secret", "y").
		Route(`
			from: http://app.localhost
			to: http://127.0.0.1:1
			allow_any_authenticated_user: true`).
		Write(b)
	proc := testutil.StartProcess(b, "gatehouse", bin, []string{"--config", cfg})
	testutil.WaitHTTP(b, "http://"+health+"/readyz", 30*time.Second, proc)

	request := []byte("GET /ping HTTP/1.1\r\nHost: app.localhost\r\n\r\n")
	open := func() (net.Conn, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		if _, err := c.Write(request); err != nil {
			c.Close()
			return nil, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			c.Close()
			return nil, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			c.Close()
			return nil, fmt.Errorf("/ping: %s", resp.Status)
		}
		return c, nil
	}
	for b.Loop() {
		warm, err := open()
		if err != nil {
			b.Fatal(err)
		}
		warm.Close()
		time.Sleep(time.Second) // let the runtime settle before the baseline
		before := rssBytes(b, proc.Pid())

		var mu sync.Mutex
		held := make([]net.Conn, 0, conns)
		var wg sync.WaitGroup
		errs := make(chan error, 1)
		sem := make(chan struct{}, 64)
		for i := 0; i < conns; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				c, err := open()
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
				mu.Lock()
				held = append(held, c)
				mu.Unlock()
			}()
		}
		wg.Wait()
		select {
		case err := <-errs:
			b.Fatalf("opening %d connections: %v", conns, err)
		default:
		}
		time.Sleep(6 * time.Second) // idle: let GC return what requests used
		after := rssBytes(b, proc.Pid())
		b.ReportMetric(float64(after-before)/conns, "bytes/conn")
		b.ReportMetric(float64(after)/(1<<20), "MB-rss")
		for _, c := range held {
			c.Close()
		}
	}
}
