package api

import (
	"context"
	"net/http"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts calls by procedure and outcome. Procedures are the fixed
// set the mux serves; anything else is counted as "unknown", so that the
// label values stay bounded whatever clients send.
type metrics struct {
	calls *prometheus.CounterVec
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{calls: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "routr", Subsystem: "api", Name: "calls_total",
		Help: "Management API calls by procedure and result code (ok, or the Connect/gRPC code name).",
	}, []string{"procedure", "code"})}
	if r != nil {
		r.MustRegister(m.calls)
	}
	return m
}

// interceptor counts every call that reached a service.
func (m *metrics) interceptor() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			res, err := next(ctx, req)
			code := "ok"
			if err != nil {
				code = connect.CodeOf(err).String()
			}
			m.calls.WithLabelValues(req.Spec().Procedure, code).Inc()
			return res, err
		}
	}
}

// refused counts a call refused before it reached a service.
func (m *metrics) refused(r *http.Request, code connect.Code, known func(string) bool) {
	p := r.URL.Path
	if !known(p) {
		p = "unknown"
	}
	m.calls.WithLabelValues(p, code.String()).Inc()
}
