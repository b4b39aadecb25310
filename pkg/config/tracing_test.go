package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/config"
)

// TestTracingSettings: the otel_* options resolve as Pomerium and the
// OTLP exporter specification say, from the file or from the standard
// OTEL_* environment variables.
func TestTracingSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		env  map[string]string
		want func(config.TracingSettings) string // "" when right
	}{
		{name: "off by default", want: func(s config.TracingSettings) string {
			if s.Enabled {
				return "enabled"
			}
			return ""
		}},
		{name: "http base endpoint gets /v1/traces", yaml: "otel_traces_exporter: otlp\notel_exporter_otlp_endpoint: http://collector:4318\n",
			want: func(s config.TracingSettings) string {
				if !s.Enabled || s.Protocol != config.OTLPProtocolHTTP || s.Endpoint.String() != "http://collector:4318/v1/traces" {
					return s.Protocol + " " + s.Endpoint.String()
				}
				return ""
			}},
		{name: "port 4317 means grpc", yaml: "otel_traces_exporter: otlp\notel_exporter_otlp_endpoint: http://collector:4317\n",
			want: func(s config.TracingSettings) string {
				if s.Protocol != config.OTLPProtocolGRPC || s.Endpoint.Host != "collector:4317" {
					return s.Protocol + " " + s.Endpoint.String()
				}
				return ""
			}},
		{name: "traces endpoint as is, environment", env: map[string]string{
			"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://otel.example.com/custom",
			"OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20abc,X-Tenant=acme", "OTEL_TRACES_SAMPLER_ARG": "0.25",
			"OTEL_BSP_SCHEDULE_DELAY": "250", "OTEL_EXPORTER_OTLP_TIMEOUT": "3000", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod",
		}, want: func(s config.TracingSettings) string {
			if s.Endpoint.String() != "https://otel.example.com/custom" || s.Headers["Authorization"] != "Bearer abc" || s.Headers["X-Tenant"] != "acme" ||
				s.SampleRatio != 0.25 || s.ScheduleDelay != 250*time.Millisecond || s.Timeout != 3*time.Second ||
				s.ResourceAttributes["deployment.environment"] != "prod" {
				return "wrong"
			}
			return ""
		}},
		{name: "older tracing_* names", yaml: "tracing_provider: otlp\ntracing_otlp_endpoint: http://collector:4317\ntracing_sample_rate: 0.5\n",
			want: func(s config.TracingSettings) string {
				if !s.Enabled || s.Protocol != config.OTLPProtocolGRPC || s.SampleRatio != 0.5 {
					return "wrong"
				}
				return ""
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			cfg, err := config.Parse([]byte(base().YAML()+tc.yaml), "config.yaml", env)
			if err != nil {
				t.Fatal(err)
			}
			if msg := tc.want(cfg.Tracing); msg != "" {
				t.Fatalf("%s: %+v", msg, cfg.Tracing)
			}
		})
	}
}

// TestTracingSettingsRefused: bad values stop the configuration, naming
// the option; an export header's value never appears in the message.
func TestTracingSettingsRefused(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"otel_traces_exporter: jaeger\n", "otel_traces_exporter: expected otlp or none"},
		{"otel_traces_sampler_arg: 1.5\n", "otel_traces_sampler_arg: expected a fraction"},
		{"otel_exporter_otlp_protocol: thrift\n", "otel_exporter_otlp_protocol: expected grpc or http/protobuf"},
		{"otel_exporter_otlp_endpoint: collector:4317\n", "otel_exporter_otlp_endpoint: expected an http:// or https:// URL"},
		{"otel_bsp_schedule_delay: 10\n", "otel_bsp_schedule_delay: expected 100"},
		{"otel_exporter_otlp_headers: [secret-token]\n", "otel_exporter_otlp_headers: expected key=value entries"},
		{"tracing_provider: zipkin\n", "tracing_provider: expected otlp"},
	} {
		_, err := config.Parse([]byte(base().YAML()+tc.yaml), "config.yaml", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.yaml, err, tc.want)
		}
		if err != nil && strings.Contains(tc.yaml, "secret-token") && strings.Contains(err.Error(), "secret-token") {
			t.Errorf("header value in the message: %v", err)
		}
	}
}
