package authenticate

import "github.com/prometheus/client_golang/prometheus"

// Metric names of the authenticate service.
const (
	MetricSignIns   = "gatehouse_authenticate_sign_ins_total"
	MetricRefreshes = "gatehouse_authenticate_session_refreshes_total"
	MetricSignOuts  = "gatehouse_authenticate_sign_outs_total"
)

// Results of sign-ins and refreshes (the result label).
const (
	resultSuccess  = "success"
	resultFailure  = "failure"
	resultRejected = "rejected" // the IdP refused a refresh: the session ends
)

type metrics struct {
	signIns, refreshes *prometheus.CounterVec
	signOuts           prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricSignIns,
			Help: "Sign-ins completed at the IdP callback, by result (success, or failure: a bad state, a refused code, the databroker unreachable…).",
		}, []string{"result"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRefreshes,
			Help: "Session refreshes with the IdP's refresh token, by result (success; failure, retried; rejected, the session ends).",
		}, []string{"result"}),
		signOuts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricSignOuts,
			Help: "Sessions ended by a sign-out.",
		}),
	}
	for _, r := range []string{resultSuccess, resultFailure} {
		m.signIns.WithLabelValues(r)
	}
	for _, r := range []string{resultSuccess, resultFailure, resultRejected} {
		m.refreshes.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.signIns, m.refreshes, m.signOuts} {
			_ = reg.Register(c)
		}
	}
	return m
}
