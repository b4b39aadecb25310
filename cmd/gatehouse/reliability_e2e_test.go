package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/config/configtest"
	"github.com/gatehouse/gatehouse/pkg/testutil"
)

// readyz is one answer of a /readyz endpoint.
type readyz struct {
	code         int
	Status       string            `json:"status"`
	Failing      map[string]string `json:"failing"`
	Dependencies map[string]string `json:"dependencies"`
}

func getReadyz(t *testing.T, healthAddr string) readyz {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + healthAddr + "/readyz")
	if err != nil {
		return readyz{code: -1, Status: err.Error()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := readyz{code: resp.StatusCode}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("/readyz: %v: %s", err, body)
	}
	return r
}

// Readiness means "can serve what this service serves": with Redis down
// the databroker stays ready (it serves; writes fail), and with every
// databroker down authorize stays ready (it serves from its synced cache).
// Both report the lost dependency in /readyz's body instead. Before,
// both answered 503, and a headless Service dropping not-ready pods from
// DNS turned a storage blip into a total outage.
func TestReadinessDoesNotFollowStorage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	redis := testutil.StartRedis(t)
	s := newProcSet(t)
	s.config = configtest.New().
		Set("authenticate_service_url", "http://authenticate.localhost").
		Set("databroker_storage_type", "redis").
		Set("databroker_storage_connection_string", redis.URL()).
		Write(t)
	db := testutil.FreeAddr(t)
	s.add("databroker", "SERVICES=databroker", "GRPC_ADDRESS="+db)
	s.add("authorize", "SERVICES=authorize", "GRPC_ADDRESS="+testutil.FreeAddr(t), "DATABROKER_SERVICE_URLS=http://"+db)
	s.start("databroker")
	s.start("authorize")
	s.waitReady("databroker")
	s.waitReady("authorize")
	for name, dep := range map[string]string{"databroker": "databroker storage", "authorize": "databroker"} {
		if r := getReadyz(t, s.procs[name].health); r.Dependencies[dep] != "ok" {
			t.Fatalf("%s /readyz with everything up: %+v, want dependency %q ok", name, r, dep)
		}
	}

	// Redis goes down: the databroker notices, and stays ready.
	redis.Stop()
	var r readyz
	testutil.WaitFor(t, 10*time.Second, "the databroker to report its storage unavailable", func() error {
		r = getReadyz(t, s.procs["databroker"].health)
		if !strings.HasPrefix(r.Dependencies["databroker storage"], "unavailable") {
			return fmt.Errorf("/readyz: %+v", r)
		}
		return nil
	})
	if r.code != http.StatusOK {
		t.Fatalf("databroker /readyz with Redis down: %d %+v, want 200 (it still serves)", r.code, r)
	}

	// Every databroker goes down: authorize notices, and stays ready.
	s.procs["databroker"].proc.Kill()
	testutil.WaitFor(t, 10*time.Second, "authorize to report the databroker unavailable", func() error {
		r = getReadyz(t, s.procs["authorize"].health)
		if !strings.HasPrefix(r.Dependencies["databroker"], "unavailable") {
			return fmt.Errorf("/readyz: %+v", r)
		}
		return nil
	})
	if r.code != http.StatusOK {
		t.Fatalf("authorize /readyz with no databroker: %d %+v, want 200 (it serves from its synced cache)", r.code, r)
	}
}

// On SIGTERM a process first fails /readyz and keeps accepting and serving
// new connections for shutdown_grace_period, then drains and exits 0.
// Before, the listener closed at once: a rolling restart refused every
// connection a load balancer sent before it noticed.
func TestShutdownGracePeriodKeepsServing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "upstream") }))
	t.Cleanup(up.Close)
	const grace = 3 * time.Second
	addr := testutil.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	s := newProcSet(t)
	s.config = configtest.New().
		Set("authenticate_service_url", "http://authenticate.localhost:"+port).
		Set("shutdown_grace_period", grace.String()).
		Route(`
			from: http://public.localhost
			to: ` + up.URL + `
			allow_public_unauthenticated_access: true`).
		Write(t)
	s.add("all", "SERVICES=proxy,authorize,databroker", "ADDRESS="+addr, "GRPC_ADDRESS="+testutil.FreeAddr(t))
	s.start("all")
	s.waitReady("all")
	p := s.procs["all"]

	get := func() error {
		// A new connection for every request, as a load balancer's
		// health-checked pool would open.
		c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, DialContext: loopbackDial}}
		resp, err := c.Get("http://public.localhost:" + port + "/")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(body) != "upstream" {
			return fmt.Errorf("%d %s", resp.StatusCode, body)
		}
		return nil
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	_ = p.proc.Signal(syscall.SIGTERM, 0) // returns at once; the exit is awaited below
	testutil.WaitFor(t, grace/2, "/readyz to fail after SIGTERM", func() error {
		if r := getReadyz(t, p.health); r.code != http.StatusServiceUnavailable || r.Failing["shutdown"] == "" {
			return fmt.Errorf("/readyz: %+v", r)
		}
		return nil
	})
	// Not ready, still serving: new connections are accepted and answered
	// until the grace period ends (requests are sent while at least half
	// of it remains, so the bound is not a race).
	n := 0
	for time.Since(sent) < grace/2 {
		if err := get(); err != nil {
			t.Fatalf("request %d, %v after SIGTERM (grace period %v): %v", n, time.Since(sent).Round(time.Millisecond), grace, err)
		}
		n++
		time.Sleep(20 * time.Millisecond) // a modest rate
	}
	// Signal 0 only waits: a second SIGTERM would skip the grace period.
	if err := p.proc.Signal(syscall.Signal(0), 15*time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if d := time.Since(sent); d < grace {
		t.Errorf("exited %v after SIGTERM, before the %v grace period ended", d, grace)
	}
	t.Logf("%d requests served during the grace period; exited %v after SIGTERM", n, time.Since(sent).Round(time.Millisecond))
}
