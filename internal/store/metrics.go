package store

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the DB's counters, exported through Collect so that a DB
// registers with any registry without global state.
type metrics struct {
	revision     atomic.Uint64 // highest revision handed to a watcher
	reloads      atomic.Uint64 // Sets loaded because another instance wrote
	reloadErrors atomic.Uint64 // failed revision checks and reloads
	writes       atomic.Uint64 // committed writes through this DB
	writeErrors  atomic.Uint64 // refused or failed writes (validation included)
}

var (
	revisionDesc     = prometheus.NewDesc("routr_store_revision", "Revision of the resources this instance serves (the same on every instance once changes have spread).", nil, nil)
	reloadsDesc      = prometheus.NewDesc("routr_store_reloads_total", "Resource sets reloaded after a change by another instance.", nil, nil)
	reloadErrorsDesc = prometheus.NewDesc("routr_store_reload_errors_total", "Failed checks or reloads of the stored resources; the instance keeps serving the last good set.", nil, nil)
	writesDesc       = prometheus.NewDesc("routr_store_writes_total", "Resource changes committed through this instance.", nil, nil)
	writeErrorsDesc  = prometheus.NewDesc("routr_store_write_errors_total", "Resource changes refused (invalid, conflicting) or failed.", nil, nil)
)

// Describe implements prometheus.Collector.
func (db *DB) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{revisionDesc, reloadsDesc, reloadErrorsDesc, writesDesc, writeErrorsDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (db *DB) Collect(ch chan<- prometheus.Metric) {
	m := &db.metrics
	ch <- prometheus.MustNewConstMetric(revisionDesc, prometheus.GaugeValue, float64(m.revision.Load()))
	ch <- prometheus.MustNewConstMetric(reloadsDesc, prometheus.CounterValue, float64(m.reloads.Load()))
	ch <- prometheus.MustNewConstMetric(reloadErrorsDesc, prometheus.CounterValue, float64(m.reloadErrors.Load()))
	ch <- prometheus.MustNewConstMetric(writesDesc, prometheus.CounterValue, float64(m.writes.Load()))
	ch <- prometheus.MustNewConstMetric(writeErrorsDesc, prometheus.CounterValue, float64(m.writeErrors.Load()))
}
