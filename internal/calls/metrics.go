package calls

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routr-go/routr/internal/events"
)

// metrics are the tracker's series, namespace routr, subsystem calls.
type metrics struct {
	started   prometheus.Counter
	answered  prometheus.Counter
	endedVec  *prometheus.CounterVec
	byCause   map[string]prometheus.Counter
	untracked prometheus.Counter
	duplicate prometheus.Counter // Started for a tracked call
	unknown   prometheus.Counter // report for a call not tracked
	ignored   prometheus.Counter // report that does not apply in the call's state
}

func newMetrics(reg prometheus.Registerer, active func() float64) metrics {
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "routr", Subsystem: "calls", Name: name, Help: help}
	}
	ignored := prometheus.NewCounterVec(opts("ignored_total",
		"Reports that published nothing: reason duplicate (Started for a tracked call), unknown (call not tracked, e.g. already ended), state (does not apply, e.g. CANCEL after answer)."),
		[]string{"reason"})
	m := metrics{
		started:   prometheus.NewCounter(opts("started_total", "Calls started (call.started published).")),
		answered:  prometheus.NewCounter(opts("answered_total", "Calls answered (call.answered published).")),
		endedVec:  prometheus.NewCounterVec(opts("ended_total", "Calls ended (call.ended published), by hangup cause."), []string{"cause"}),
		byCause:   make(map[string]prometheus.Counter),
		untracked: prometheus.NewCounter(opts("untracked_total", "New calls not tracked because MaxCalls calls were tracked.")),
		duplicate: ignored.WithLabelValues("duplicate"),
		unknown:   ignored.WithLabelValues("unknown"),
		ignored:   ignored.WithLabelValues("state"),
	}
	for _, c := range events.HangupCauses() {
		m.byCause[c] = m.endedVec.WithLabelValues(c)
	}
	if reg != nil {
		reg.MustRegister(m.started, m.answered, m.endedVec, m.untracked, ignored,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: "routr", Subsystem: "calls", Name: "active", Help: "Calls tracked now.",
			}, active))
	}
	return m
}

func (m *metrics) ended(cause string) {
	if c, ok := m.byCause[cause]; ok {
		c.Inc()
		return
	}
	m.endedVec.WithLabelValues(cause).Inc()
}
