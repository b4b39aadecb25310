package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Milliseconds is a duration written as whole milliseconds, as Pomerium and
// the OpenTelemetry environment variables write the otel_* durations
// (otel_exporter_otlp_timeout: 10000). Go duration text ("10s") is
// accepted too.
type Milliseconds time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (m *Milliseconds) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected whole milliseconds such as 5000, got %s", n.Line, kindName(n))
	}
	s := strings.TrimSpace(n.Value)
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < 0 {
			return fmt.Errorf("line %d: expected whole milliseconds, 0 or more, got %q", n.Line, s)
		}
		*m = Milliseconds(time.Duration(ms) * time.Millisecond)
		return nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		*m = Milliseconds(d)
		return nil
	}
	return fmt.Errorf("line %d: expected whole milliseconds such as 5000 (or a duration such as 5s), got %q", n.Line, s)
}

// Std returns the value as a time.Duration.
func (m Milliseconds) Std() time.Duration { return time.Duration(m) }

// OTLP protocols (otel_exporter_otlp_protocol).
const (
	OTLPProtocolGRPC = "grpc"
	OTLPProtocolHTTP = "http/protobuf"
)

// Tracing defaults and bounds, the OpenTelemetry SDK's and Pomerium's.
const (
	DefaultOTLPTimeout       = 10 * time.Second
	DefaultBSPScheduleDelay  = 5 * time.Second
	MinBSPScheduleDelay      = 100 * time.Millisecond
	DefaultBSPMaxExportBatch = 512
	defaultOTLPHTTPEndpoint  = "http://localhost:4318"
	defaultOTLPGRPCEndpoint  = "http://localhost:4317"
	otlpHTTPTracesPath       = "/v1/traces"
	otlpGRPCStandardPort     = "4317"
	tracingProviderOTLP      = "otlp"
	tracesExporterNone       = "none"
)

// TracingSettings is what the tracing options resolve to. Tracing is on
// when Enabled; everything else then has a value (defaults filled in).
type TracingSettings struct {
	// Enabled is true when otel_traces_exporter (or tracing_provider) is otlp.
	Enabled bool
	// Protocol is OTLPProtocolGRPC or OTLPProtocolHTTP.
	Protocol string
	// Endpoint is the OTLP receiver: for HTTP the full URL spans are
	// POSTed to (…/v1/traces), for gRPC a URL whose host:port is dialled
	// (https means TLS).
	Endpoint *url.URL
	// Headers are added to every export request (authentication to a
	// hosted collector). Never logged.
	Headers map[string]string
	// Timeout bounds one export request.
	Timeout time.Duration
	// SampleRatio is the fraction of traces recorded, in [0, 1].
	SampleRatio float64
	// ResourceAttributes are added to the resource of every span.
	ResourceAttributes map[string]string
	// ScheduleDelay and MaxExportBatchSize tune the batch span processor.
	ScheduleDelay      time.Duration
	MaxExportBatchSize int
	// AttributeValueLengthLimit truncates longer string attributes; 0 is
	// no limit.
	AttributeValueLengthLimit int
	// LogLevel is the level of the OpenTelemetry SDK's own messages
	// (export failures): debug, info, warn or error.
	LogLevel string
}

// validateTracing resolves the tracing options into c.Tracing.
func (c *Config) validateTracing(errs *Errors) {
	o := &c.Options
	at := func(key string) int { return c.lines[key] }
	t := &c.Tracing

	exporter := strings.ToLower(strings.TrimSpace(o.OtelTracesExporter))
	switch exporter {
	case "", tracesExporterNone:
	case tracingProviderOTLP:
		t.Enabled = true
	default:
		errs.add("otel_traces_exporter", at("otel_traces_exporter"), fmt.Sprintf("expected otlp or none, got %q", o.OtelTracesExporter))
	}
	switch p := strings.ToLower(strings.TrimSpace(o.TracingProvider)); p {
	case "", tracesExporterNone:
	case tracingProviderOTLP:
		if exporter == "" {
			t.Enabled = true
		}
	default:
		errs.add("tracing_provider", at("tracing_provider"), fmt.Sprintf("expected otlp (Pomerium dropped %s; send OTLP to a collector that forwards to it), got %q", p, o.TracingProvider))
	}

	protoKey, proto := firstSet(
		[2]string{"otel_exporter_otlp_traces_protocol", o.OtelExporterOTLPTracesProtocol},
		[2]string{"otel_exporter_otlp_protocol", o.OtelExporterOTLPProtocol},
		[2]string{"tracing_otlp_protocol", o.TracingOTLPProtocol})
	switch strings.ToLower(proto) {
	case "":
	case "grpc":
		t.Protocol = OTLPProtocolGRPC
	case "http/protobuf", "http":
		t.Protocol = OTLPProtocolHTTP
	default:
		errs.add(protoKey, at(protoKey), fmt.Sprintf("expected grpc or http/protobuf, got %q", proto))
	}

	// otel_exporter_otlp_traces_endpoint is used as it is; the others are
	// base URLs to which OTLP/HTTP adds /v1/traces, as the OTLP exporter
	// specification says.
	endpointKey, endpoint := firstSet(
		[2]string{"otel_exporter_otlp_traces_endpoint", o.OtelExporterOTLPTracesEndpoint},
		[2]string{"otel_exporter_otlp_endpoint", o.OtelExporterOTLPEndpoint},
		[2]string{"tracing_otlp_endpoint", o.TracingOTLPEndpoint})
	var u *url.URL
	if endpoint != "" {
		var err error
		u, err = url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs.add(endpointKey, at(endpointKey), fmt.Sprintf("expected an http:// or https:// URL such as http://localhost:4318, got %q", endpoint))
			u = nil
		}
	}
	if t.Protocol == "" {
		// Pomerium's guess: the standard ports, else OTLP/HTTP.
		t.Protocol = OTLPProtocolHTTP
		if u != nil && u.Port() == otlpGRPCStandardPort {
			t.Protocol = OTLPProtocolGRPC
		}
	}
	if u == nil {
		def := defaultOTLPHTTPEndpoint
		if t.Protocol == OTLPProtocolGRPC {
			def = defaultOTLPGRPCEndpoint
		}
		u, _ = url.Parse(def)
		endpointKey = ""
	}
	if t.Protocol == OTLPProtocolHTTP && endpointKey != "otel_exporter_otlp_traces_endpoint" {
		u = u.JoinPath(otlpHTTPTracesPath)
	}
	if t.Protocol == OTLPProtocolGRPC && u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), otlpGRPCStandardPort)
	}
	t.Endpoint = u

	headersKey, headers := "otel_exporter_otlp_headers", o.OtelExporterOTLPHeaders
	if len(o.OtelExporterOTLPTracesHeaders) > 0 {
		headersKey, headers = "otel_exporter_otlp_traces_headers", o.OtelExporterOTLPTracesHeaders
	}
	t.Headers = keyValues(errs, headersKey, at(headersKey), headers, true)
	t.ResourceAttributes = keyValues(errs, "otel_resource_attributes", at("otel_resource_attributes"), o.OtelResourceAttributes, false)

	t.Timeout = DefaultOTLPTimeout
	switch {
	case o.OtelExporterOTLPTracesTimeout != nil && *o.OtelExporterOTLPTracesTimeout > 0:
		t.Timeout = o.OtelExporterOTLPTracesTimeout.Std()
	case o.OtelExporterOTLPTimeout != nil && *o.OtelExporterOTLPTimeout > 0:
		t.Timeout = o.OtelExporterOTLPTimeout.Std()
	}

	t.SampleRatio = 1
	rateKey, rate := "otel_traces_sampler_arg", o.OtelTracesSamplerArg
	if rate == nil {
		rateKey, rate = "tracing_sample_rate", o.TracingSampleRate
	}
	if rate != nil {
		if *rate < 0 || *rate > 1 {
			errs.add(rateKey, at(rateKey), fmt.Sprintf("expected a fraction of traces from 0 to 1 (0.25 records a quarter), got %v", *rate))
		} else {
			t.SampleRatio = *rate
		}
	}

	t.ScheduleDelay = DefaultBSPScheduleDelay
	if d := o.OtelBSPScheduleDelay; d != nil {
		if d.Std() < MinBSPScheduleDelay {
			errs.add("otel_bsp_schedule_delay", at("otel_bsp_schedule_delay"), fmt.Sprintf("expected 100 (milliseconds) or more, got %d", d.Std().Milliseconds()))
		} else {
			t.ScheduleDelay = d.Std()
		}
	}
	t.MaxExportBatchSize = DefaultBSPMaxExportBatch
	if n := o.OtelBSPMaxExportBatchSize; n != nil {
		if *n < 1 {
			errs.add("otel_bsp_max_export_batch_size", at("otel_bsp_max_export_batch_size"), fmt.Sprintf("expected 1 or more spans, got %d", *n))
		} else {
			t.MaxExportBatchSize = *n
		}
	}
	if n := o.OtelAttributeValueLengthLimit; n != nil {
		if *n < 0 {
			errs.add("otel_attribute_value_length_limit", at("otel_attribute_value_length_limit"), fmt.Sprintf("expected a length, 0 (no limit) or more, got %d", *n))
		} else {
			t.AttributeValueLengthLimit = *n
		}
	}
	t.LogLevel = "warn"
	switch l := strings.ToLower(strings.TrimSpace(o.OtelLogLevel)); l {
	case "":
	case "trace", "debug":
		t.LogLevel = "debug"
	case "info", "warn", "error":
		t.LogLevel = l
	case "warning":
		t.LogLevel = "warn"
	default:
		errs.add("otel_log_level", at("otel_log_level"), fmt.Sprintf("expected debug, info, warn or error, got %q", o.OtelLogLevel))
	}
}

// firstSet returns the first {key, value} pair whose value is set.
func firstSet(pairs ...[2]string) (key, value string) {
	for _, p := range pairs {
		if v := strings.TrimSpace(p[1]); v != "" {
			return p[0], v
		}
	}
	return "", ""
}

// keyValues reads "key=value" entries (the OTel environment form). Values
// may be percent-encoded, as the specification allows. secret keeps the
// values out of messages.
func keyValues(errs *Errors, key string, line int, list []string, secret bool) map[string]string {
	if len(list) == 0 {
		return nil
	}
	out := make(map[string]string, len(list))
	for i, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			msg := fmt.Sprintf("expected key=value entries, got %q", kv)
			if secret {
				// Never the value: it may be a token without its key.
				msg = fmt.Sprintf("expected key=value entries; entry %d has no key", i+1)
			}
			errs.add(key, line, msg)
			continue
		}
		if dec, err := url.PathUnescape(strings.TrimSpace(v)); err == nil {
			v = dec
		}
		out[k] = strings.TrimSpace(v)
	}
	return out
}
