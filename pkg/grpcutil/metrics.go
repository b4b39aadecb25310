package grpcutil

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// rpcMetrics are the gRPC metrics of one side, server or client, under
// the names and labels of go-grpc-middleware's Prometheus provider
// (grpc_server_started_total, grpc_server_handled_total,
// grpc_server_msg_received_total, grpc_server_msg_sent_total,
// grpc_server_handling_seconds; grpc_client_* the same but the histogram,
// which the provider's client leaves off), so that dashboards built for it
// work. gatehouse keeps its own recorder so that a call made in process
// (Server.LocalInterceptor) is counted in the same series at no
// allocation, and a Check over the network at none either: each method's
// series are resolved once and kept, where the provider resolves every
// label set on every call.
type rpcMetrics struct {
	started, handled, received, sent *prometheus.CounterVec
	seconds                          *prometheus.HistogramVec // nil on the client

	mu      sync.Mutex                                // guards writes of methods
	methods atomic.Pointer[map[string]*methodMetrics] // copied on write
}

// rpcMetricsHelp is the provider's help text of each series of one side.
type rpcMetricsHelp struct {
	side                                      string // "server" or "client"
	started, handled, received, sent, seconds string
}

func newServerMetrics() *rpcMetrics {
	return newRPCMetrics(rpcMetricsHelp{
		side:     "server",
		started:  "Total number of RPCs started on the server.",
		handled:  "Total number of RPCs completed on the server, regardless of success or failure.",
		received: "Total number of RPC stream messages received on the server.",
		sent:     "Total number of gRPC stream messages sent by the server.",
		seconds:  "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
	})
}

func newClientMetrics() *rpcMetrics {
	return newRPCMetrics(rpcMetricsHelp{
		side:     "client",
		started:  "Total number of RPCs started on the client.",
		handled:  "Total number of RPCs completed by the client, regardless of success or failure.",
		received: "Total number of RPC stream messages received by the client.",
		sent:     "Total number of gRPC stream messages sent by the client.",
	})
}

func newRPCMetrics(h rpcMetricsHelp) *rpcMetrics {
	labels := []string{"grpc_type", "grpc_service", "grpc_method"}
	name := func(n string) string { return "grpc_" + h.side + "_" + n }
	m := &rpcMetrics{
		started:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("started_total"), Help: h.started}, labels),
		handled:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("handled_total"), Help: h.handled}, append(labels[:3:3], "grpc_code")),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("msg_received_total"), Help: h.received}, labels),
		sent:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("msg_sent_total"), Help: h.sent}, labels),
	}
	if h.seconds != "" {
		m.seconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: name("handling_seconds"), Help: h.seconds, Buckets: prometheus.DefBuckets,
		}, labels)
	}
	m.methods.Store(&map[string]*methodMetrics{})
	return m
}

// Describe implements prometheus.Collector.
func (m *rpcMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.started.Describe(ch)
	m.handled.Describe(ch)
	m.received.Describe(ch)
	m.sent.Describe(ch)
	if m.seconds != nil {
		m.seconds.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *rpcMetrics) Collect(ch chan<- prometheus.Metric) {
	m.started.Collect(ch)
	m.handled.Collect(ch)
	m.received.Collect(ch)
	m.sent.Collect(ch)
	if m.seconds != nil {
		m.seconds.Collect(ch)
	}
}

// grpc_type label values.
const (
	typeUnary        = "unary"
	typeClientStream = "client_stream"
	typeServerStream = "server_stream"
	typeBidiStream   = "bidi_stream"
)

// methodMetrics are one method's series, each resolved once. The message
// and handled series are created on their first use, as the provider
// does: no series of a message never sent or a code that never happened.
type methodMetrics struct {
	m                    *rpcMetrics
	typ, service, method string
	started              prometheus.Counter
	seconds              prometheus.Observer // nil on the client
	received, sent       atomic.Pointer[prometheus.Counter]
	handled              [codes.Unauthenticated + 1]atomic.Pointer[prometheus.Counter]
}

// method returns the series of fullMethod called as typ.
func (m *rpcMetrics) method(fullMethod, typ string) *methodMetrics {
	// The key is fullMethod alone: a method has one type.
	if mm := (*m.methods.Load())[fullMethod]; mm != nil {
		return mm
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.methods.Load()
	if mm := old[fullMethod]; mm != nil {
		return mm
	}
	service, method := "unknown", "unknown"
	if s, me, ok := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/"); ok {
		service, method = s, me
	}
	mm := &methodMetrics{
		m: m, typ: typ, service: service, method: method,
		started: m.started.WithLabelValues(typ, service, method),
	}
	if m.seconds != nil {
		mm.seconds = m.seconds.WithLabelValues(typ, service, method)
	}
	next := make(map[string]*methodMetrics, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[fullMethod] = mm
	m.methods.Store(&next)
	return mm
}

// done records the end of a call that started at start and ended with err.
func (mm *methodMetrics) done(err error, start time.Time) {
	mm.handledCounter(errorCode(err)).Inc()
	if mm.seconds != nil {
		mm.seconds.Observe(time.Since(start).Seconds())
	}
}

// handledCounter returns the grpc_server_handled_total series of code.
func (mm *methodMetrics) handledCounter(code codes.Code) prometheus.Counter {
	if int(code) >= len(mm.handled) {
		return mm.m.handled.WithLabelValues(mm.typ, mm.service, mm.method, code.String())
	}
	if c := mm.handled[code].Load(); c != nil {
		return *c
	}
	c := mm.m.handled.WithLabelValues(mm.typ, mm.service, mm.method, code.String())
	mm.handled[code].Store(&c)
	return c
}

// receivedCounter returns the grpc_server_msg_received_total series.
func (mm *methodMetrics) receivedCounter() prometheus.Counter {
	if c := mm.received.Load(); c != nil {
		return *c
	}
	return mm.bind(&mm.received, mm.m.received)
}

// sentCounter returns the grpc_server_msg_sent_total series.
func (mm *methodMetrics) sentCounter() prometheus.Counter {
	if c := mm.sent.Load(); c != nil {
		return *c
	}
	return mm.bind(&mm.sent, mm.m.sent)
}

// bind resolves the method's series of vec into slot.
func (mm *methodMetrics) bind(slot *atomic.Pointer[prometheus.Counter], vec *prometheus.CounterVec) prometheus.Counter {
	c := vec.WithLabelValues(mm.typ, mm.service, mm.method)
	slot.Store(&c)
	return c
}

// errorCode is the status code of a handler's error, context errors
// included, as the gRPC server itself maps them.
func errorCode(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	return status.FromContextError(err).Code()
}

// unaryThen records a unary call: started, its request received, its
// response sent (when it succeeded), handled with its code and its
// duration. It calls h through rec and a (see recoverer.unary): a chain
// without a closure per call.
func (m *rpcMetrics) unaryThen(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler, rec *recoverer, a *authenticator) (resp any, err error) {
	start := time.Now()
	mm := m.method(info.FullMethod, typeUnary)
	mm.started.Inc()
	mm.receivedCounter().Inc()
	resp, err = rec.unary(ctx, req, info, h, a)
	if err == nil {
		mm.sentCounter().Inc()
	}
	mm.done(err, start)
	return resp, err
}

// stream records a streaming call: started, each message received and
// sent, handled with its code and its duration.
func (m *rpcMetrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	start := time.Now()
	typ := typeBidiStream
	switch {
	case info.IsClientStream && !info.IsServerStream:
		typ = typeClientStream
	case !info.IsClientStream && info.IsServerStream:
		typ = typeServerStream
	}
	mm := m.method(info.FullMethod, typ)
	mm.started.Inc()
	err := h(srv, &countedStream{ServerStream: ss, mm: mm})
	mm.done(err, start)
	return err
}

// countedStream counts the messages of a stream.
type countedStream struct {
	grpc.ServerStream
	mm *methodMetrics
}

func (s *countedStream) SendMsg(msg any) error {
	err := s.ServerStream.SendMsg(msg)
	if err == nil {
		s.mm.sentCounter().Inc()
	}
	return err
}

func (s *countedStream) RecvMsg(msg any) error {
	err := s.ServerStream.RecvMsg(msg)
	if err == nil {
		s.mm.receivedCounter().Inc()
	}
	return err
}
