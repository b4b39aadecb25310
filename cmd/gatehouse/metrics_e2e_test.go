package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/config/configtest"
	"github.com/gatehouse/gatehouse/pkg/devcerts"
	"github.com/gatehouse/gatehouse/pkg/testutil"
)

const dashboardPath = "../../deployments/grafana/dashboards/gatehouse.json"

// scrape returns the metric family names of a /metrics answer.
func scrape(t *testing.T, url, user, password string) map[string]bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			names[f[2]] = true
		}
	}
	return names
}

// metricValue returns the value of an unlabelled counter or gauge of a
// /metrics answer (without basic auth), 0 when it is absent.
func metricValue(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatalf("%s: %s: %v", url, sc.Text(), err)
			}
			return v
		}
	}
	return 0
}

// TestMetricsAndDashboard runs gatehouse all-in-one with metrics_address
// behind metrics_basic_auth, sends requests that go through, match no
// route and find their upstream down, and checks that /metrics refuses a
// scrape without the password, and that every metric the shipped Grafana
// dashboard queries is one gatehouse exports.
func TestMetricsAndDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("starts gatehouse")
	}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	t.Cleanup(upstream.Close)
	dir := t.TempDir()
	certs, err := devcerts.Write(filepath.Join(dir, "certs"), "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	addr, metricsAddr, grpcAddr, health := testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t)
	cfgPath := configtest.New().
		Set("address", addr).Set("grpc_address", grpcAddr).Set("health_check_addr", health).
		Set("metrics_address", metricsAddr).
		Set("metrics_basic_auth", base64.StdEncoding.EncodeToString([]byte("prometheus:s3cret"))).
		// A certificate, so that its expiry is exported (insecure_server
		// keeps the listener plain).
		Set("certificate_file", certs.Cert).Set("certificate_key_file", certs.Key).
		Set("authenticate_service_url", "http://authenticate.localhost").
		IdP("http://127.0.0.1:1", "secret").
		Route("from: http://app.localhost\nto: " + upstream.URL + "\nallow_public_unauthenticated_access: true").
		Route("from: http://down.localhost\nto: http://127.0.0.1:1\nallow_public_unauthenticated_access: true").
		Write(t)
	proc := testutil.StartProcess(t, "gatehouse", testutil.Gatehouse(t), []string{"--config", cfgPath})
	testutil.WaitHTTP(t, "http://"+health+"/readyz", 30*time.Second, proc)

	for _, host := range []string{"app.localhost", "nobody.localhost", "down.localhost"} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	// Without the password: 401.
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("scrape without credentials: %d, want 401", resp.StatusCode)
	}

	var exported map[string]bool
	testutil.WaitFor(t, 10*time.Second, "the request metrics", func() bool {
		exported = scrape(t, "http://"+metricsAddr+"/metrics", "prometheus", "s3cret")
		return exported["gatehouse_proxy_upstream_errors_total"] && exported["gatehouse_proxy_requests_total"]
	})

	queried := dashboardMetrics(t)
	if len(queried) < 10 {
		t.Fatalf("the dashboard queries only %d metrics: %v", len(queried), queried)
	}
	for _, name := range queried {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if !exported[name] && !exported[base] {
			t.Errorf("the dashboard queries %s, which gatehouse does not export", name)
		}
	}
}

// metricNameRE matches the metric names in a PromQL expression: the
// families gatehouse exports (its own, gRPC's, Go's and the process's).
var metricNameRE = regexp.MustCompile(`\b(?:gatehouse|grpc|go|process)_[a-z0-9_]+\b`)

// dashboardMetrics returns every metric name the dashboard's queries use.
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	seen := map[string]bool{}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range metricNameRE.FindAllString(tg.Expr, -1) {
				// Label names such as grpc_method are not metrics.
				if m == "grpc_method" || m == "grpc_service" || m == "grpc_code" || m == "grpc_type" {
					continue
				}
				seen[m] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for m := range seen {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}
