package edge

import (
	"strconv"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
)

// CounterVec.WithLabelValues hashes its labels and, for a status code,
// needs strconv.Itoa's allocation: on every request and response. These
// resolve each label value once.

// codeCounters caches the counters of a vector labelled by status code.
type codeCounters struct {
	vec *prometheus.CounterVec
	c   [700]atomic.Pointer[prometheus.Counter]
}

func (cc *codeCounters) inc(code int) {
	if code < 0 || code >= len(cc.c) {
		cc.vec.WithLabelValues(strconv.Itoa(code)).Inc()
		return
	}
	p := cc.c[code].Load()
	if p == nil {
		c := cc.vec.WithLabelValues(strconv.Itoa(code))
		p = &c
		cc.c[code].Store(p)
	}
	(*p).Inc()
}

// methodCounters caches the counters of a vector labelled by method
// (metricMethod's values).
type methodCounters struct {
	vec   *prometheus.CounterVec
	known map[sip.RequestMethod]prometheus.Counter
	other prometheus.Counter
}

func newMethodCounters(vec *prometheus.CounterVec) *methodCounters {
	mc := &methodCounters{vec: vec, known: make(map[sip.RequestMethod]prometheus.Counter, len(knownMethods))}
	for m := range knownMethods {
		mc.known[m] = vec.WithLabelValues(string(m))
	}
	mc.other = vec.WithLabelValues(metricMethod("OTHER-UNKNOWN"))
	return mc
}

func (mc *methodCounters) inc(m sip.RequestMethod) {
	if c, ok := mc.known[m]; ok {
		c.Inc()
		return
	}
	mc.other.Inc()
}
