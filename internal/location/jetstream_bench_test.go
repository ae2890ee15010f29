package location

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/routr-go/routr/internal/natstest"
)

// BenchmarkJetStreamLoad measures how fast an instance that starts loads
// the bucket (bindings per second) and the heap its copy holds per
// binding, at 50k bindings.
func BenchmarkJetStreamLoad(b *testing.B) {
	srv := natstest.Single(b)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	w, err := NewJetStream(ctx, JetStreamOptions{Conn: nc, Bucket: "load"})
	if err != nil {
		b.Fatal(err)
	}
	const n = 50_000
	exp := time.Now().Add(time.Hour)
	for i := range n {
		bd := realistic(i, exp)
		bd.Instance = "sip:10.0.0.11:5060;transport=udp"
		if _, err := w.Put(ctx, bd); err != nil {
			b.Fatal(err)
		}
	}
	var perSec, perBinding float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		j, err := NewJetStream(ctx, JetStreamOptions{Conn: nc, Bucket: "load"})
		if err != nil {
			b.Fatal(err)
		}
		perSec = n / time.Since(start).Seconds()
		runtime.GC()
		runtime.ReadMemStats(&after)
		perBinding = float64(after.HeapAlloc-before.HeapAlloc) / n
		if j.Len() != n {
			b.Fatalf("loaded %d of %d", j.Len(), n)
		}
		runtime.KeepAlive(j)
	}
	b.ReportMetric(perSec, "bindings/s")
	b.ReportMetric(perBinding, "bytes/binding")
}
