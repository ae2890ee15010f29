package cluster

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/routr-go/routr/internal/events"
	"github.com/routr-go/routr/internal/natstest"
)

// signal is a Next that reports each event handed on, and confirms it
// when it is a confirmer.
type signal struct {
	confirmer bool
	f         func([]events.Event)
	ch        chan struct{}
}

func (s *signal) OnSent(f func([]events.Event)) bool { s.f = f; return s.confirmer }

func (s *signal) Publish(e events.Event) {
	if s.confirmer {
		s.f([]events.Event{e})
	}
	s.ch <- struct{}{}
}

// BenchmarkLedgerWindow measures, one call at a time on an embedded NATS
// server, what an instance killed at the wrong moment loses: the time
// from a call event reaching the ledger to its marker (holding the
// event) being written, claim-ms (routr_cluster_ledger_claim_seconds);
// ns/op is a whole call through the ledger: call.started and call.ended,
// each claimed, handed on, and marked published. Sub-benchmark
// "unconfirmed" has a Next that confirms nothing: markers are written
// published at once and hold no event, as before markers held them.
//
//	go test -run XXX -bench LedgerWindow -benchtime 2000x ./internal/cluster/
func BenchmarkLedgerWindow(b *testing.B) {
	for _, confirmed := range []bool{true, false} {
		name := "confirmed"
		if !confirmed {
			name = "unconfirmed"
		}
		b.Run(name, func(b *testing.B) { benchLedgerWindow(b, confirmed) })
	}
}

func benchLedgerWindow(b *testing.B, confirmed bool) {
	srv := natstest.Single(b)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	reg := prometheus.NewRegistry()
	next := &signal{confirmer: confirmed, ch: make(chan struct{}, 2)}
	var up atomic.Bool
	up.Store(true)
	l, err := NewLedger(context.Background(), LedgerOptions{Conn: nc, Bucket: "calls_bench", Next: next, Instance: "sip:bench",
		Alive: func(string) bool { return up.Load() }, Registerer: reg})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go l.Run(ctx)
	defer func() { cancel(); <-l.Done(); l.Close() }()
	now := time.Now()
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("bench-%d", i)
		l.Publish(started(id, now))
		<-next.ch
		l.Publish(ended(id, now, now))
		<-next.ch
	}
	b.StopTimer()
	var m dto.Metric
	if err := l.m.claimed.Write(&m); err != nil {
		b.Fatal(err)
	}
	h := m.GetHistogram()
	if h.GetSampleCount() > 0 {
		b.ReportMetric(1000*h.GetSampleSum()/float64(h.GetSampleCount()), "claim-ms")
	}
}
