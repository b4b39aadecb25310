package databroker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
)

// Metric names of a Syncer (one per consumer process: each authorize
// replica exports its own, told apart by Prometheus's instance label).
const (
	MetricSyncRecordVersion = "gatehouse_databroker_sync_record_version"
	MetricSyncLag           = "gatehouse_databroker_sync_lag_seconds"
	MetricSyncResyncs       = "gatehouse_databroker_sync_full_resyncs_total"
)

// syncMetrics are a Syncer's metrics; a nil *syncMetrics records nothing.
type syncMetrics struct {
	version prometheus.Gauge
	lag     prometheus.Gauge
	resyncs prometheus.Counter
}

func newSyncMetrics(reg prometheus.Registerer) *syncMetrics {
	if reg == nil {
		return nil
	}
	m := &syncMetrics{
		version: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricSyncRecordVersion,
			Help: "The latest databroker record version this replica applied (compare with gatehouse_databroker_latest_record_version).",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricSyncLag,
			Help: "Seconds from the databroker write of the latest change this replica applied to its applying it.",
		}),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricSyncResyncs,
			Help: "Full resynchronisations (SyncLatest) of this replica: at start, and after the store was wiped or the replica fell behind.",
		}),
	}
	for _, c := range []prometheus.Collector{m.version, m.lag, m.resyncs} {
		_ = reg.Register(c)
	}
	return m
}

func (m *syncMetrics) reset(version uint64) {
	if m == nil {
		return
	}
	m.resyncs.Inc()
	m.version.Set(float64(version))
	m.lag.Set(0)
}

func (m *syncMetrics) applied(r *databrokerv1.Record) {
	if m == nil {
		return
	}
	m.version.Set(float64(r.GetVersion()))
	if t := r.GetModifiedAt(); t != nil {
		m.lag.Set(max(0, time.Since(t.AsTime()).Seconds()))
	}
}
