package tracing

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/pkg/config"
)

func spanContext(t *testing.T, traceID string, sampled, remote bool) trace.SpanContext {
	t.Helper()
	tid, err := trace.TraceIDFromHex(traceID)
	if err != nil {
		t.Fatal(err)
	}
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	var flags trace.TraceFlags
	if sampled {
		flags = trace.FlagsSampled
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, Remote: remote})
}

// TestSamplerIgnoresRemoteFlag: a client's sampled flag neither forces
// nor prevents recording; the trace id decides, the same way in every
// process; a span of this process follows its parent.
func TestSamplerIgnoresRemoteFlag(t *testing.T) {
	const id = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, tc := range []struct {
		ratio           float64
		sampled, remote bool
		want            sdktrace.SamplingDecision
	}{
		{0, true, true, sdktrace.Drop},             // a client cannot force sampling
		{1, false, true, sdktrace.RecordAndSample}, // nor prevent it
		{0, true, false, sdktrace.RecordAndSample}, // a local parent is followed
		{1, false, false, sdktrace.Drop},
	} {
		ctx := trace.ContextWithSpanContext(context.Background(), spanContext(t, id, tc.sampled, tc.remote))
		tid, _ := trace.TraceIDFromHex(id)
		got := NewSampler(tc.ratio).ShouldSample(sdktrace.SamplingParameters{ParentContext: ctx, TraceID: tid, Name: "x"})
		if got.Decision != tc.want {
			t.Errorf("ratio %v sampled %v remote %v: %v, want %v", tc.ratio, tc.sampled, tc.remote, got.Decision, tc.want)
		}
	}
}

// TestOffIsNil: tracing off is a nil Provider whose methods are safe, and
// the helpers hand back what they were given.
func TestOffIsNil(t *testing.T) {
	p, err := New(context.Background(), config.TracingSettings{}, Options{})
	if err != nil || p != nil {
		t.Fatalf("New(off) = %v, %v; want nil, nil", p, err)
	}
	if p.TracerProvider() != nil || p.Shutdown(context.Background()) != nil || Tracer(nil) != nil {
		t.Fatal("a nil Provider must trace nothing")
	}
}
