package authorize

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names of the authorize service. The Check's latency is the gRPC
// server's grpc_server_handling_seconds{grpc_method="Check"} (in process
// too); the proxy's gatehouse_proxy_requests_total has the decisions by
// route.
const (
	MetricChecks        = "gatehouse_authorize_checks_total"
	MetricCachedRecords = "gatehouse_authorize_cached_records"
)

// metrics are the authorize service's metrics. Counting a Check costs no
// allocation: the two series are resolved once.
type metrics struct {
	allow, deny prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, st *store) *metrics {
	checks := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricChecks,
		Help: "Checks answered, by decision (allow or deny: a sign-in redirect is a deny).",
	}, []string{"decision"})
	m := &metrics{allow: checks.WithLabelValues(decisionAllow), deny: checks.WithLabelValues(decisionDeny)}
	if reg != nil {
		_ = reg.Register(checks)
		_ = reg.Register(&storeCollector{st: st})
	}
	return m
}

func (m *metrics) count(decision string) {
	if decision == decisionAllow {
		m.allow.Inc()
	} else {
		m.deny.Inc()
	}
}

// storeCollector reports the number of sessions and users in this
// replica's synced copy of the databroker, by record type.
type storeCollector struct{ st *store }

var cachedRecordsDesc = prometheus.NewDesc(MetricCachedRecords,
	"Live records in this authorize replica's synced copy of the databroker, by type (session, user).", []string{"type"}, nil)

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- cachedRecordsDesc }

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	c.st.mu.RLock()
	sessions, users := len(c.st.sessions), len(c.st.users)
	c.st.mu.RUnlock()
	ch <- prometheus.MustNewConstMetric(cachedRecordsDesc, prometheus.GaugeValue, float64(sessions), "session")
	ch <- prometheus.MustNewConstMetric(cachedRecordsDesc, prometheus.GaugeValue, float64(users), "user")
}
