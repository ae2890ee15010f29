package edge

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routr-go/routr/internal/location"
)

// metrics are the edge's Prometheus series, namespace routr.
type metrics struct {
	requests      *prometheus.CounterVec
	responses     *prometheus.CounterVec
	relayed       *prometheus.CounterVec
	registrations *prometheus.CounterVec
	authFailures  *prometheus.CounterVec
	inflight      prometheus.Gauge
	clientTx      prometheus.Gauge
	stray         *prometheus.CounterVec

	// Resolved label values of the vectors above, for the hot path.
	byMethod       *methodCounters
	byCode         *codeCounters
	relayedByCode  *codeCounters
	authFailMethod *methodCounters
	outcomes       map[string]prometheus.Counter
	strayRelayed   prometheus.Counter
	strayDropped   prometheus.Counter
}

// registrationOutcome returns the counter of a registrar outcome.
func (m *metrics) registrationOutcome(outcome string) prometheus.Counter {
	if c, ok := m.outcomes[outcome]; ok {
		return c
	}
	return m.registrations.WithLabelValues(outcome)
}

func newMetrics(reg prometheus.Registerer, loc location.Store, acks *ackGate) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "routr", Subsystem: "sip", Name: "requests_total",
			Help: "SIP requests received, by method.",
		}, []string{"method"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "routr", Subsystem: "sip", Name: "responses_total",
			Help: "SIP responses the edge generated itself, by status code.",
		}, []string{"code"}),
		relayed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "routr", Subsystem: "sip", Name: "relayed_responses_total",
			Help: "SIP responses relayed from downstream, by status code.",
		}, []string{"code"}),
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "routr", Subsystem: "registrar", Name: "registrations_total",
			Help: "REGISTER outcomes: stored, refreshed, removed, rejected.",
		}, []string{"outcome"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "routr", Subsystem: "auth", Name: "failures_total",
			Help: "Digest authentications that failed, by method.",
		}, []string{"method"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "routr", Subsystem: "sip", Name: "server_transactions_active",
			Help: "Server transactions being handled by the edge.",
		}),
		clientTx: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "routr", Subsystem: "sip", Name: "client_transactions_active",
			Help: "Client transactions the proxy has open downstream.",
		}),
		stray: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "routr", Subsystem: "sip", Name: "stray_responses_total",
			Help: "Responses that matched no client transaction: 2xx to INVITE relayed statelessly, the rest dropped.",
		}, []string{"action"}),
	}
	cs := []prometheus.Collector{m.requests, m.responses, m.relayed, m.registrations, m.authFailures, m.inflight, m.clientTx, m.stray,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "routr", Subsystem: "sip", Name: "dialogs_awaiting_ack",
			Help: "Answered dialogs whose ACK has not been forwarded yet (bounded at 65536).",
		}, func() float64 { return float64(acks.len()) }),
	}
	if l, ok := loc.(interface{ Len() int }); ok {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "routr", Subsystem: "location", Name: "bindings",
			Help: "Registered bindings in the location store.",
		}, func() float64 { return float64(l.Len()) }))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("edge: register metrics: %w", err)
		}
	}
	m.byMethod = newMethodCounters(m.requests)
	m.byCode = &codeCounters{vec: m.responses}
	m.relayedByCode = &codeCounters{vec: m.relayed}
	m.authFailMethod = newMethodCounters(m.authFailures)
	m.strayRelayed = m.stray.WithLabelValues("relayed")
	m.strayDropped = m.stray.WithLabelValues("dropped")
	m.outcomes = make(map[string]prometheus.Counter)
	for _, o := range []string{"stored", "refreshed", "removed", "rejected"} {
		m.outcomes[o] = m.registrations.WithLabelValues(o)
	}
	return m, nil
}

// metricMethod keeps the method label bounded: unknown methods share one.
func metricMethod(m sip.RequestMethod) string {
	if knownMethods[m] {
		return string(m)
	}
	return "OTHER"
}

// quietSIPLogger wraps the logger given to sipgo. sipgo logs every
// unparsable UDP packet at Error with its whole content: anyone who can send
// garbage could flood the log. Those records are demoted to Debug, and
// everything else sipgo says is kept at Warn and above.
func quietSIPLogger(base *slog.Logger) *slog.Logger {
	return slog.New(parseHook{next: &quietHandler{next: base.Handler()}})
}

type quietHandler struct {
	next slog.Handler
}

func (h *quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		if !h.next.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		return h.next.Handle(ctx, r)
	}
	if strings.Contains(r.Message, "parse") || strings.Contains(r.Message, "Failed to") && strings.Contains(r.Message, "response") {
		if !h.next.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		nr := slog.NewRecord(r.Time, slog.LevelDebug, r.Message, r.PC)
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "data" {
				return true
			}
			nr.AddAttrs(a)
			return true
		})
		return h.next.Handle(ctx, nr)
	}
	return h.next.Handle(ctx, r)
}

func (h *quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &quietHandler{next: h.next.WithAttrs(as)}
}

func (h *quietHandler) WithGroup(name string) slog.Handler {
	return &quietHandler{next: h.next.WithGroup(name)}
}
