package proxy

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names the proxy exports (on metrics_address). Labels are the
// route id (from the configuration), the status code and the decision:
// never a user, session or path, so the number of series is bounded by
// the configuration.
const (
	MetricRequests          = "gatehouse_proxy_requests_total"
	MetricRequestDuration   = "gatehouse_proxy_request_duration_seconds"
	MetricCheckDuration     = "gatehouse_proxy_authorize_check_duration_seconds"
	MetricUpstreamDuration  = "gatehouse_proxy_upstream_duration_seconds"
	MetricUpstreamErrors    = "gatehouse_proxy_upstream_errors_total"
	MetricReusedDecisions   = "gatehouse_proxy_reused_decisions_total"
	upstreamErrUnreachable  = "unreachable"
	upstreamErrTimeout      = "timeout"
	upstreamErrOther        = "other"
	labelRoute, labelStatus = "route", "status"
	labelDecision           = "decision"
)

// latencyBuckets suit a proxy: from a Check answered from memory (a
// fraction of a millisecond) to a slow upstream.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// metrics are the proxy's Prometheus metrics. Recording a request costs no
// allocation once its series exist: each route's series are resolved once
// and kept (copied on write), as grpcutil's server metrics are.
type metrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	check          prometheus.Histogram
	reused         prometheus.Counter
	upstream       *prometheus.HistogramVec
	upstreamErrors *prometheus.CounterVec

	mu     sync.Mutex
	routes atomic.Pointer[map[string]*routeMetrics]
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRequests,
			Help: "Requests the proxy answered, by route, status code and decision (allow, deny, error, no-route, internal…).",
		}, []string{labelRoute, labelStatus, labelDecision}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricRequestDuration,
			Help:    "Time from a request's arrival to the end of its answer (its headers, for a streamed one), by route.",
			Buckets: latencyBuckets,
		}, []string{labelRoute}),
		check: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    MetricCheckDuration,
			Help:    "Latency of the proxy's Check calls to authorize (in process or over gRPC), failures included.",
			Buckets: latencyBuckets,
		}),
		reused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricReusedDecisions,
			Help: "Requests answered with an allowed answer authorize gave for the identical request, without asking again (a proxy remote from authorize that follows the databroker's changes).",
		}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricUpstreamDuration,
			Help:    "Time from sending a request upstream to its response headers, by route.",
			Buckets: latencyBuckets,
		}, []string{labelRoute}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricUpstreamErrors,
			Help: "Upstream requests that got no response (kind unreachable: no connection; timeout; other), by route.",
		}, []string{labelRoute, "kind"}),
	}
	m.routes.Store(&map[string]*routeMetrics{})
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration, m.check, m.reused, m.upstream, m.upstreamErrors} {
			_ = reg.Register(c)
		}
	}
	return m
}

// routeMetrics are one route's series.
type routeMetrics struct {
	m        *metrics
	id       string
	duration prometheus.Observer
	upstream prometheus.Observer
	// requests maps status<<8 | decision index to its counter.
	requests atomic.Pointer[map[uint32]prometheus.Counter]
	mu       sync.Mutex
}

// route returns the series of route id ("" for requests that matched no
// route), creating them on first use. It does not allocate afterwards.
func (m *metrics) route(id string) *routeMetrics {
	if rm := (*m.routes.Load())[id]; rm != nil {
		return rm
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.routes.Load()
	if rm := old[id]; rm != nil {
		return rm
	}
	rm := &routeMetrics{m: m, id: id, duration: m.duration.WithLabelValues(id), upstream: m.upstream.WithLabelValues(id)}
	rm.requests.Store(&map[uint32]prometheus.Counter{})
	next := make(map[string]*routeMetrics, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[id] = rm
	m.routes.Store(&next)
	return rm
}

// decisions indexes the decisions for routeMetrics' keys.
var decisions = [...]decision{decisionAllow, decisionDeny, decisionError, decisionClientGone, decisionInternal,
	decisionNoRoute, decisionInvalid, decisionRedirect, decisionUpgradeRefused}

func decisionIndex(d decision) uint32 {
	for i, x := range decisions {
		if x == d {
			return uint32(i)
		}
	}
	return uint32(len(decisions))
}

// observe records one answered request.
func (rm *routeMetrics) observe(status int, d decision, elapsed time.Duration) {
	rm.duration.Observe(elapsed.Seconds())
	if status < 0 || status > 999 {
		status = 0
	}
	key := uint32(status)<<8 | decisionIndex(d)
	c := (*rm.requests.Load())[key]
	if c == nil {
		c = rm.counter(key, status, d)
	}
	c.Inc()
}

func (rm *routeMetrics) counter(key uint32, status int, d decision) prometheus.Counter {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	old := *rm.requests.Load()
	if c := old[key]; c != nil {
		return c
	}
	c := rm.m.requests.WithLabelValues(rm.id, strconv.Itoa(status), string(d))
	next := make(map[uint32]prometheus.Counter, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[key] = c
	rm.requests.Store(&next)
	return c
}

// upstreamError counts an upstream request that got no response.
func (rm *routeMetrics) upstreamError(kind string) {
	rm.m.upstreamErrors.WithLabelValues(rm.id, kind).Inc()
}
