package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/extauthz"
	"github.com/gatehouse/gatehouse/pkg/health"
)

// wiringCookieSecret is the cookie_secret of these tests' configs: random
// bytes, distinct from shared_secret, as config validation asks.
const wiringCookieSecret = "T8zOEAsRUS2JVIAAblfrmdsFYjFms4VwEE05jRK2xuA="

// allInOneYAML is an all-in-one configuration with the given routes.
func allInOneYAML(routes ...string) string {
	y := fmt.Sprintf(`
address: 127.0.0.1:1
grpc_address: 127.0.0.1:1
insecure_server: true
shared_secret: %s
cookie_secret: %s
authenticate_service_url: http://authenticate.localhost
idp_provider_url: http://127.0.0.1:1
idp_client_id: x
idp_client_secret: y
routes:
`, testSecret, wiringCookieSecret)
	for _, r := range routes {
		y += r
	}
	return y
}

func publicRoute(host, upstream string) string {
	return fmt.Sprintf("  - from: http://%s\n    to: %s\n    allow_public_unauthenticated_access: true\n", host, upstream)
}

// syncBuffer is a log sink that tests read while the process writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// statusOf returns the status h answers a GET of http://host/ with.
func statusOf(h http.Handler, host string) int {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Host = host
	r.Header.Set("Accept", "text/html")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

// When one service of an all-in-one process refuses a new configuration,
// no service switches to it: the proxy keeps its routes, authorize its
// policies, the source its current configuration, and the log says which
// service refused and why. Once nothing refuses, they all switch.
func TestReloadRefusedByOneServiceSwitchesNone(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer upstream.Close()
	path := filepath.Join(t.TempDir(), "config.yaml")
	write := func(y string) {
		if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(allInOneYAML(publicRoute("one.localhost", upstream.URL)))
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	src, err := config.NewSource(path, func(string) (string, bool) { return "", false }, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := newProcess(ctx, src, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	// A service added after the real ones, which refuses while refuse is
	// set: every real service has built the new configuration by then.
	refuse := errors.New("the fake service cannot run this")
	refusing, committed := true, false
	src.OnChange("fake", config.ReloaderFunc(func(context.Context, *config.Config) (func(), error) {
		if refusing {
			return nil, refuse
		}
		return func() { committed = true }, nil
	}))
	old := src.Current()

	// The new file makes route one need a user (authorize's policy) and
	// adds route two (the proxy's routes).
	write(allInOneYAML(
		strings.Replace(publicRoute("one.localhost", upstream.URL), "allow_public_unauthenticated_access", "allow_any_authenticated_user", 1),
		publicRoute("two.localhost", upstream.URL)))
	err = src.Reload(ctx)
	if !errors.Is(err, refuse) {
		t.Fatalf("Reload = %v, want the fake service's refusal", err)
	}
	if src.Current() != old {
		t.Error("the refused configuration became current")
	}
	if got := statusOf(p.http, "one.localhost"); got != http.StatusOK {
		t.Errorf("route one after the refusal: %d, want 200 (authorize switched to the refused policy)", got)
	}
	if got := statusOf(p.http, "two.localhost"); got != http.StatusNotFound {
		t.Errorf("route two after the refusal: %d, want 404 (the proxy switched to the refused routes)", got)
	}
	if l := logs.String(); !strings.Contains(l, "config reload refused") || !strings.Contains(l, "service=fake") || !strings.Contains(l, refuse.Error()) {
		t.Errorf("the log does not say who refused and why:\n%s", l)
	}

	refusing = false
	if err := src.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if !committed || src.Current() == old {
		t.Fatal("the accepted configuration is not in force")
	}
	if got := statusOf(p.http, "one.localhost"); got != http.StatusFound {
		t.Errorf("route one after the reload: %d, want 302 to sign in", got)
	}
	if got := statusOf(p.http, "two.localhost"); got != http.StatusOK {
		t.Errorf("route two after the reload: %d, want 200", got)
	}
}

// In all-in-one, the proxy's Check to authorize runs the gRPC server's
// interceptors without the network: its calls are counted in /metrics.
func TestInProcessCheckMetrics(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer upstream.Close()
	cfg, err := config.Parse([]byte(allInOneYAML(publicRoute("one.localhost", upstream.URL))), "config.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newProcess(context.Background(), config.NewStaticSource(cfg), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	for range 3 {
		if got := statusOf(p.http, "one.localhost"); got != http.StatusOK {
			t.Fatalf("status %d", got)
		}
	}
	if got := checkMetric(t, p.metrics, "grpc_server_started_total", ""); got != 3 {
		t.Errorf("Checks started: %v, want 3", got)
	}
	if got := checkMetric(t, p.metrics, "grpc_server_handled_total", "OK"); got != 3 {
		t.Errorf("Checks handled OK: %v, want 3", got)
	}
	if got := checkMetric(t, p.metrics, "grpc_server_handling_seconds", ""); got != 3 {
		t.Errorf("Check durations observed: %v, want 3", got)
	}
}

// panicAuthorizer is an authorize service whose Check panics.
type panicAuthorizer struct {
	authv3.UnimplementedAuthorizationServer
}

func (panicAuthorizer) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	panic("authorize bug")
}

// A Check that panics in process is what it is over gRPC: the panic is
// recovered into Internal, counted, and the proxy fails closed with a 503
// page, where it used to drop the browser's connection.
func TestInProcessCheckPanicIs503(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("a request reached the upstream")
	}))
	defer upstream.Close()
	cfg, err := config.Parse([]byte(allInOneYAML(publicRoute("one.localhost", upstream.URL))), "config.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The process's wiring, with a broken authorize in place of the real one.
	p := &process{
		src: config.NewStaticSource(cfg), cfg: cfg, logger: slog.New(slog.DiscardHandler),
		health: health.NewRegistry(), metrics: prometheus.NewRegistry(),
	}
	p.grpc = newGRPCServer(cfg, p.logger, p.metrics, nil)
	h, err := p.addProxy(context.Background(), extauthz.NewLocalClient(panicAuthorizer{}, p.grpc.LocalInterceptor()))
	if err != nil {
		t.Fatal(err)
	}
	if got := statusOf(h, "one.localhost"); got != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", got)
	}
	if got := checkMetric(t, p.metrics, "grpc_server_handled_total", "Internal"); got != 1 {
		t.Errorf("Checks handled with Internal: %v, want 1", got)
	}
}

// checkMetric returns the value (a counter's, or a histogram's count) of
// the series of metric name for envoy.service.auth.v3.Authorization/Check
// (unary), with grpc_code code when code is set.
func checkMetric(t *testing.T, g prometheus.Gatherer, name, code string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"grpc_type": "unary", "grpc_service": "envoy.service.auth.v3.Authorization", "grpc_method": "Check"}
	if code != "" {
		want["grpc_code"] = code
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue series
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
