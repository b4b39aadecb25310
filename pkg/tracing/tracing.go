// Package tracing sets up OpenTelemetry tracing for a gatehouse process
// from the otel_* options (config.TracingSettings): an OTLP/gRPC or
// OTLP/HTTP exporter behind a batch span processor, head sampling by trace
// id, W3C trace context (traceparent) as the only propagation format, and
// the instrumentation the services share (HTTP handlers and transports).
//
// Tracing is off by default. Off, New returns a nil *Provider, and every
// component given a nil trace.TracerProvider leaves its request path as it
// was: no span, no context, no allocation.
package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/logging"
)

// InstrumentationName names gatehouse's tracers.
const InstrumentationName = "github.com/gatehouse/gatehouse"

// Propagator is the only propagation format gatehouse reads and writes:
// W3C trace context (traceparent, tracestate). Baggage is neither read
// from clients nor sent: gatehouse puts nothing in it, and a client's
// baggage can therefore never pass for gatehouse's.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Provider is a process's tracing. A nil *Provider is tracing off; its
// methods are safe to call on nil.
type Provider struct {
	tp *sdktrace.TracerProvider
}

// Options are what New needs besides the settings.
type Options struct {
	// Services names the services of the process ("proxy", or
	// "authorize,databroker"): the resource's service.name is
	// gatehouse-<service> for one service, gatehouse for several, unless
	// otel_resource_attributes sets service.name.
	Services []string
	// Logger receives the SDK's own errors (failed exports), rate-limited.
	Logger *slog.Logger
}

// New returns the process's tracing for s, or nil when s is not Enabled.
// It starts the batch span processor's goroutine; Shutdown stops it.
func New(ctx context.Context, s config.TracingSettings, o Options) (*Provider, error) {
	if !s.Enabled {
		return nil, nil
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	otel.SetErrorHandler(errorHandler(logger, s.LogLevel))

	exp, err := newExporter(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	res, err := newResource(s, o.Services)
	if err != nil {
		return nil, fmt.Errorf("tracing: otel_resource_attributes: %w", err)
	}
	limits := sdktrace.NewSpanLimits()
	if s.AttributeValueLengthLimit > 0 {
		limits.AttributeValueLengthLimit = s.AttributeValueLengthLimit
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp,
			sdktrace.WithBatchTimeout(s.ScheduleDelay),
			sdktrace.WithMaxExportBatchSize(s.MaxExportBatchSize),
			sdktrace.WithExportTimeout(s.Timeout),
		),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(NewSampler(s.SampleRatio)),
		sdktrace.WithRawSpanLimits(limits),
	)
	return &Provider{tp: tp}, nil
}

// TracerProvider returns the provider to hand to services and clients, or
// nil when tracing is off (nil means: do not trace).
func (p *Provider) TracerProvider() trace.TracerProvider {
	if p == nil {
		return nil
	}
	return p.tp
}

// Shutdown exports the spans still queued (bounded by ctx) and stops the
// exporter.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	return p.tp.Shutdown(ctx)
}

func newExporter(ctx context.Context, s config.TracingSettings) (*otlptrace.Exporter, error) {
	u := s.Endpoint
	if s.Protocol == config.OTLPProtocolGRPC {
		opts := []otlptracegrpc.Option{
			otlptracegrpc.WithEndpoint(u.Host),
			otlptracegrpc.WithTimeout(s.Timeout),
			otlptracegrpc.WithHeaders(s.Headers),
		}
		if u.Scheme == "http" {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		// The client connects in the background: a collector that is
		// down at start-up costs failed exports, not a failed start.
		return otlptracegrpc.New(ctx, opts...)
	}
	opts := []otlptracehttp.Option{
		otlptracehttp.WithEndpointURL(u.String()),
		otlptracehttp.WithTimeout(s.Timeout),
		otlptracehttp.WithHeaders(s.Headers),
	}
	return otlptracehttp.New(ctx, opts...)
}

func newResource(s config.TracingSettings, services []string) (*resource.Resource, error) {
	name := "gatehouse"
	if len(services) == 1 {
		name += "-" + services[0]
	}
	attrs := []attribute.KeyValue{
		semconv.ServiceName(name),
		attribute.String("gatehouse.services", strings.Join(services, ",")),
	}
	for k, v := range s.ResourceAttributes {
		attrs = append(attrs, attribute.String(k, v))
	}
	return resource.Merge(resource.Default(), resource.NewSchemaless(attrs...))
}

// errorHandler logs the SDK's errors (an unreachable collector) once per
// kind per minute: at error with otel_log_level error, else at warn.
func errorHandler(logger *slog.Logger, level string) otel.ErrorHandler {
	lim := logging.NewLimiter(time.Minute)
	lvl := slog.LevelWarn
	if level == "error" {
		lvl = slog.LevelError
	}
	return otel.ErrorHandlerFunc(func(err error) {
		if ok, held := lim.Allow(err.Error()); ok {
			logger.Log(context.Background(), lvl, "tracing: export failed", "error", err.Error(), "identical_errors_not_logged", held)
		}
	})
}

// NewSampler returns gatehouse's sampler: a span whose parent is a span of
// this process follows its parent's decision; any other span (a request
// from a client, with or without a traceparent, or a call from another
// gatehouse process) is sampled by its trace id at ratio. A trace id
// gives the same answer in every process configured with the same ratio,
// so the services of one request agree, while a client cannot force
// sampling by sending a traceparent with the sampled flag: its traceparent
// is continued as a parent only.
func NewSampler(ratio float64) sdktrace.Sampler {
	return sampler{ratio: sdktrace.TraceIDRatioBased(ratio)}
}

type sampler struct{ ratio sdktrace.Sampler }

func (s sampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	psc := trace.SpanContextFromContext(p.ParentContext)
	if psc.IsValid() && !psc.IsRemote() {
		d := sdktrace.Drop
		if psc.IsSampled() {
			d = sdktrace.RecordAndSample
		}
		return sdktrace.SamplingResult{Decision: d, Tracestate: psc.TraceState()}
	}
	return s.ratio.ShouldSample(p)
}

func (s sampler) Description() string {
	return "GatehouseSampler{" + s.ratio.Description() + "}"
}

// Handler wraps h with a server span per request (continuing a client's
// traceparent as the parent), or returns h as it is when tp is nil.
func Handler(h http.Handler, tp trace.TracerProvider, operation string) http.Handler {
	if tp == nil {
		return h
	}
	return otelhttp.NewHandler(h, operation,
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(Propagator),
		otelhttp.WithMeterProvider(noop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(op string, r *http.Request) string { return op + " " + r.Method }),
	)
}

// Transport wraps rt with a client span per request that sends the span as
// traceparent, or returns rt as it is when tp is nil.
func Transport(rt http.RoundTripper, tp trace.TracerProvider, operation string) http.RoundTripper {
	if tp == nil {
		return rt
	}
	return otelhttp.NewTransport(rt,
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(Propagator),
		otelhttp.WithMeterProvider(noop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return operation + " " + r.Method }),
	)
}

// Tracer returns gatehouse's tracer of tp, or nil when tp is nil.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(InstrumentationName)
}
