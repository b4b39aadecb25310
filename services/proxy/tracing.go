package proxy

import (
	"net"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/tracing"
)

// Span attributes of the proxy's request span. They say which route and
// what decision, never who: no session, cookie, token or email goes in a
// span.
const (
	attrRoute    = attribute.Key("gatehouse.route")
	attrDecision = attribute.Key("gatehouse.decision")
)

// serveTraced serves a request in a server span. A client's traceparent
// is continued as the parent (it is an id, not a credential; whether the
// trace is recorded is gatehouse's own choice, see tracing.NewSampler);
// its baggage is not read. The Check (in process or over gRPC) and the
// upstream request are children of this span, and the upstream gets the
// trace as traceparent.
func (s *Service) serveTraced(w http.ResponseWriter, r *http.Request) {
	ctx := tracing.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ctx, span := s.tracer.Start(ctx, "proxy "+r.Method, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("http.request.method", r.Method),
		attribute.String("server.address", host),
		attribute.String("url.path", requestPathForSpan(r)),
		attribute.String("network.protocol.version", r.Proto),
	))
	defer span.End()
	routeID, d, status := s.serveLogged(w, r.WithContext(ctx))
	span.SetAttributes(attrRoute.String(routeID), attrDecision.String(string(d)), attribute.Int("http.response.status_code", status))
	if status >= http.StatusInternalServerError {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
}

// requestPathForSpan is the path as received, without the query: a query
// may carry hand-off values (pomerium_jwt) that no span may hold.
func requestPathForSpan(r *http.Request) string {
	if r.URL.RawPath != "" {
		return r.URL.RawPath
	}
	return r.URL.Path
}

// tracedMatch is the route match in a span of its own.
func (s *Service) tracedMatch(r *http.Request, st *state, path string) *config.Route {
	_, span := s.tracer.Start(r.Context(), "route match")
	cr := st.table.Match(r.Host, path)
	if cr != nil {
		span.SetAttributes(attrRoute.String(cr.ID))
	}
	span.End()
	return cr
}
