package databroker

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/gatehouse/gatehouse/services/databroker/storage"
)

// Metric names of the databroker service.
const (
	MetricStorageErrors       = "gatehouse_databroker_storage_errors_total"
	MetricRecords             = "gatehouse_databroker_records"
	MetricLatestRecordVersion = "gatehouse_databroker_latest_record_version"
	MetricStorageUp           = "gatehouse_databroker_storage_up"
)

// storageErrors counts the storage failures that reach a caller, by the
// gRPC code they become (UNAVAILABLE: the storage is down or too slow;
// INTERNAL; DEADLINE_EXCEEDED). It is shared by the process's databroker
// services, registered by the first one given a Registerer.
var storageErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: MetricStorageErrors,
	Help: "Storage operations that failed (storage down, too slow, or broken), by the gRPC code returned.",
}, []string{"code"})

func countStorageError(code codes.Code) {
	switch code {
	case codes.Unavailable, codes.Internal, codes.DeadlineExceeded:
		storageErrors.WithLabelValues(code.String()).Inc()
	}
}

// reportedTypes are the record types counted even before the first record
// of the type is written (a zero is a value to graph, a missing series is
// not): the session and user records of services/CONTRACTS.md.
var reportedTypes = []string{
	"type.googleapis.com/gatehouse.session.v1.Session",
	"type.googleapis.com/gatehouse.user.v1.User",
}

// scrapeTimeout bounds the storage queries of one scrape.
const scrapeTimeout = 2 * time.Second

var (
	recordsDesc = prometheus.NewDesc(MetricRecords,
		"Live records in the storage, by type (the record's type URL).", []string{"type"}, nil)
	latestDesc = prometheus.NewDesc(MetricLatestRecordVersion,
		"The storage's latest record version: a replica whose gatehouse_databroker_sync_record_version is behind it lags.", nil, nil)
	upDesc = prometheus.NewDesc(MetricStorageUp,
		"1 when the storage answered this scrape's queries, else 0.", nil, nil)
)

// collector reads the storage's record counts and latest version at each
// scrape (a few cheap queries, bounded by scrapeTimeout).
type collector struct{ backend storage.Backend }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- recordsDesc
	ch <- latestDesc
	ch <- upDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	up := 1.0
	defer func() { ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up) }()
	vs, err := c.backend.Versions(ctx)
	if err != nil {
		up = 0
		return
	}
	ch <- prometheus.MustNewConstMetric(latestDesc, prometheus.GaugeValue, float64(vs.Latest))
	types, err := c.backend.ListTypes(ctx)
	if err != nil {
		up = 0
		return
	}
	seen := map[string]bool{}
	for _, t := range types {
		seen[t] = true
	}
	for _, t := range reportedTypes {
		if !seen[t] {
			types = append(types, t)
		}
	}
	for _, t := range types {
		res, err := c.backend.Query(ctx, storage.Query{Type: t, Limit: 1})
		if err != nil {
			up = 0
			return
		}
		ch <- prometheus.MustNewConstMetric(recordsDesc, prometheus.GaugeValue, float64(res.TotalCount), t)
	}
}
