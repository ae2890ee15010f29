// Package health serves the edge's HTTP endpoints: /healthz for liveness
// and readiness probes and /metrics for Prometheus.
package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server is the HTTP endpoint. It reports ready once SetReady(true).
type Server struct {
	addr    string
	gather  prometheus.Gatherer
	health  bool
	ready   atomic.Bool
	ln      net.Listener
	handler http.Handler
}

// New prepares a Server on addr. healthz turns /healthz on, as Routr's
// ENABLE_HEALTHCHECKS does; /metrics is always served. profiling adds
// /debug/pprof/: keep it off, or keep addr off public networks, since a
// profile reveals internals and costs CPU.
func New(addr string, g prometheus.Gatherer, healthz, profiling bool) *Server {
	s := &Server{addr: addr, gather: g, health: healthz}
	mux := http.NewServeMux()
	if profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	if healthz {
		mux.HandleFunc("/healthz", s.healthz)
	}
	s.handler = mux
	return s
}

// SetReady flips what /healthz answers.
func (s *Server) SetReady(v bool) { s.ready.Store(v) }

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	if !s.ready.Load() {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintln(w, "ok")
}

// Listen binds the address, so that errors surface before serving.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("health: listen %s: %w", s.addr, err)
	}
	s.ln = ln
	return nil
}

// Addr is the bound address, after Listen.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	hs := &http.Server{Handler: s.handler, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(s.ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
		<-errc
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}
