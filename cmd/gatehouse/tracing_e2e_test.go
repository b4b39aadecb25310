package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/gatehouse/gatehouse/pkg/config/configtest"
	"github.com/gatehouse/gatehouse/pkg/testutil"
)

// TestTracingSplitDeployment: a request through a split deployment
// (databroker, authorize and proxy processes) is one trace, exported by
// each process to a real OTLP receiver (the proxy over OTLP/HTTP, the
// others over OTLP/gRPC): the client's traceparent is the parent of the
// proxy's request span, the proxy's gRPC Check span the parent of
// authorize's Check span (with the decision), and the upstream receives a
// traceparent naming the proxy's upstream span, so its own spans join.
func TestTracingSplitDeployment(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a deployment")
	}
	otlp := testutil.StartOTLPReceiver(t)

	var mu sync.Mutex
	var upstreamTraceparent, upstreamBaggage string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		upstreamTraceparent, upstreamBaggage = r.Header.Get("Traceparent"), r.Header.Get("Baggage")
		mu.Unlock()
		_, _ = io.WriteString(w, "hello")
	}))
	t.Cleanup(upstream.Close)

	d := &deployment{procSet: newProcSet(t)}
	d.config = configtest.New().
		Set("authenticate_service_url", "http://authenticate.localhost").
		Set("otel_traces_exporter", "otlp").
		Set("otel_bsp_schedule_delay", "100").
		Set("otel_resource_attributes", "deployment.environment=test").
		Route(`
			from: http://app.localhost
			to: ` + upstream.URL + `
			allow_public_unauthenticated_access: true`).
		Write(t)
	db, az := testutil.FreeAddr(t), testutil.FreeAddr(t)
	grpcEnv := "OTEL_EXPORTER_OTLP_ENDPOINT=http://" + otlp.GRPCAddr
	d.add("databroker", "SERVICES=databroker", "GRPC_ADDRESS="+db, grpcEnv, "OTEL_EXPORTER_OTLP_PROTOCOL=grpc")
	d.add("authorize", "SERVICES=authorize", "GRPC_ADDRESS="+az, "DATABROKER_SERVICE_URL=http://"+db, grpcEnv, "OTEL_EXPORTER_OTLP_PROTOCOL=grpc")
	proxyAddr := testutil.FreeAddr(t)
	d.add("proxy", "SERVICES=proxy", "ADDRESS="+proxyAddr, "AUTHORIZE_SERVICE_URL=http://"+az,
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="+otlp.HTTPURL+"/v1/traces")
	for _, name := range []string{"databroker", "authorize", "proxy"} {
		d.start(name)
	}
	for _, name := range []string{"databroker", "authorize", "proxy"} {
		d.waitReady(name)
	}

	// The client's trace: its id is continued, its sampled flag decides
	// nothing (the sampler ratio is 1 here), its baggage is not read.
	const clientTrace, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	const secretCookie = "_pomerium=not-a-real-session-but-never-in-a-span"
	req, _ := http.NewRequest(http.MethodGet, "http://"+proxyAddr+"/hello?pomerium_jwt=secret-handle", nil)
	req.Host = "app.localhost"
	req.Header.Set("Traceparent", "00-"+clientTrace+"-"+clientSpan+"-00")
	req.Header.Set("Baggage", "gatehouse.user=mallory")
	req.Header.Set("Cookie", secretCookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "hello" {
		t.Fatalf("GET through the proxy: %d %s", resp.StatusCode, body)
	}

	find := func(spans []testutil.Span, service, name string) *testutil.Span {
		for i := range spans {
			if spans[i].Service == service && spans[i].Name == name {
				return &spans[i]
			}
		}
		return nil
	}
	const checkName = "envoy.service.auth.v3.Authorization/Check"
	var spans []testutil.Span
	testutil.WaitFor(t, 20*time.Second, "the proxy's and authorize's spans of the request", func() error {
		spans = otlp.Trace(clientTrace)
		for _, want := range [][2]string{
			{"gatehouse-proxy", "proxy GET"}, {"gatehouse-proxy", "route match"}, {"gatehouse-proxy", checkName},
			{"gatehouse-proxy", "upstream GET"}, {"gatehouse-authorize", checkName},
		} {
			if find(spans, want[0], want[1]) == nil {
				return fmt.Errorf("no span %q from %s among %d: %v", want[1], want[0], len(spans), names(spans))
			}
		}
		return nil
	})

	root := find(spans, "gatehouse-proxy", "proxy GET")
	match := find(spans, "gatehouse-proxy", "route match")
	checkClient := find(spans, "gatehouse-proxy", checkName)
	up := find(spans, "gatehouse-proxy", "upstream GET")
	checkServer := find(spans, "gatehouse-authorize", checkName)
	if root.ParentSpanID != clientSpan || root.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("proxy span: parent %q kind %v, want the client's span %s, server", root.ParentSpanID, root.Kind, clientSpan)
	}
	if root.Attributes["gatehouse.route"] == "" || root.Attributes["gatehouse.decision"] != "allow" || root.Attributes["http.response.status_code"] != "200" {
		t.Errorf("proxy span attributes: %v", root.Attributes)
	}
	for _, s := range []*testutil.Span{match, checkClient, up} {
		if s.ParentSpanID != root.SpanID {
			t.Errorf("%s: parent %s, want the proxy's request span %s", s.Name, s.ParentSpanID, root.SpanID)
		}
	}
	if checkClient.Kind != tracepb.Span_SPAN_KIND_CLIENT || checkServer.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("Check spans: kinds %v / %v, want client / server", checkClient.Kind, checkServer.Kind)
	}
	if checkServer.ParentSpanID != checkClient.SpanID {
		t.Errorf("authorize's Check span: parent %s, want the proxy's Check span %s", checkServer.ParentSpanID, checkClient.SpanID)
	}
	if a := checkServer.Attributes; a["gatehouse.decision"] != "allow" || a["gatehouse.route"] != root.Attributes["gatehouse.route"] || a["gatehouse.authenticated"] != "false" {
		t.Errorf("authorize's Check span attributes: %v", a)
	}
	if root.Protocol != "http" || checkServer.Protocol != "grpc" {
		t.Errorf("exported over %s (proxy) and %s (authorize), want http and grpc", root.Protocol, checkServer.Protocol)
	}

	// The upstream continues the trace from the proxy's upstream span.
	mu.Lock()
	tp, bg := upstreamTraceparent, upstreamBaggage
	mu.Unlock()
	if want := "00-" + clientTrace + "-" + up.SpanID + "-01"; tp != want {
		t.Errorf("upstream traceparent %q, want %q", tp, want)
	}
	// A client's baggage is between it and its upstream: gatehouse
	// neither reads it nor adds to it.
	if bg != "gatehouse.user=mallory" {
		t.Errorf("upstream baggage %q, want the client's, untouched", bg)
	}

	// No credential, session handle or hand-off value in any span.
	for _, s := range otlp.Spans() {
		for k, v := range s.Attributes {
			if strings.Contains(v, "not-a-real-session") || strings.Contains(v, "secret-handle") || strings.Contains(v, "mallory") || strings.Contains(v, "_pomerium") {
				t.Errorf("%s/%s: attribute %s=%q carries a client credential", s.Service, s.Name, k, v)
			}
		}
	}
}

func names(spans []testutil.Span) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Service + ":" + s.Name
	}
	return out
}
