package location

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// realistic returns binding i as a phone would register it; its strings
// are fresh allocations, as if parsed from a message.
func realistic(i int, expires time.Time) Binding {
	return Binding{
		AOR:       fmt.Sprintf("sip:%d@sip.local", 100000+i),
		Contact:   fmt.Sprintf("sip:%d@10.%d.%d.%d:5060;transport=udp", 100000+i, i>>16&255, i>>8&255, i&255),
		Transport: "udp",
		Source:    fmt.Sprintf("203.0.%d.%d:%d", i>>8&255, i&255, 1024+i%60000),
		LocalAddr: "192.0.2.10:5060",
		CallID:    fmt.Sprintf("%08x-4f3c-11ef-9a2b-%012x", i, i*7919),
		CSeq:      1,
		Expires:   expires,
		UserAgent: "Grandstream GXP2170 1.0.11.23",
		Instance:  "edge-0",
	}
}

// BenchmarkPut measures Puts from all cores on 100k AORs already
// registered (refreshes, the steady state) and of new bindings.
func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	const population = 100_000
	pre := make([]Binding, population)
	for i := range pre {
		pre[i] = realistic(i, exp)
	}
	b.Run("refresh", func(b *testing.B) {
		m := NewMemory(MemoryOptions{})
		for _, x := range pre {
			m.Put(ctx, x)
		}
		var seq atomic.Uint32
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n := seq.Add(1)
				x := pre[n%population]
				x.CSeq = n + 1 // racing goroutines may be refused: fine
				if _, err := m.Put(ctx, x); err != nil && !errors.Is(err, ErrOutOfOrder) {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("new", func(b *testing.B) {
		m := NewMemory(MemoryOptions{})
		var seq atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n := int(seq.Add(1))
				x := pre[n%population]
				x.Contact = x.Contact + fmt.Sprint(n/population) // distinct contact; costs ~2 allocs
				if _, err := m.Put(ctx, x); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkLookup measures Lookups from all cores among 100k AORs.
func BenchmarkLookup(b *testing.B) {
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	const population = 100_000
	m := NewMemory(MemoryOptions{})
	aors := make([]string, population)
	for i := range aors {
		x := realistic(i, exp)
		aors[i] = x.AOR
		m.Put(ctx, x)
	}
	var seq atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bs, _ := m.Lookup(ctx, aors[seq.Add(1)%population])
			if len(bs) != 1 {
				b.Fatal(len(bs))
			}
		}
	})
}

// BenchmarkBytesPerBinding reports the heap held per stored binding with
// realistic strings, at 100k bindings.
func BenchmarkBytesPerBinding(b *testing.B) {
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	const n = 100_000
	var per float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m := NewMemory(MemoryOptions{})
		for i := range n {
			m.Put(ctx, realistic(i, exp))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		per = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(m)
	}
	b.ReportMetric(per, "bytes/binding")
}

// BenchmarkSweep measures the sweeper at 1M bindings: a tick when nothing
// is due (the common case), and the cost per expired binding.
func BenchmarkSweep(b *testing.B) {
	ctx := context.Background()
	const n = 1_000_000
	clk := newClock()
	fill := func() *Memory {
		m := NewMemory(MemoryOptions{Now: clk.now, OnExpire: func(Binding) {}})
		for i := range n {
			// Spread over an hour as real registrations are.
			m.Put(ctx, realistic(i, clk.now().Add(time.Minute+time.Duration(i)*3600*time.Microsecond)))
		}
		return m
	}
	m := fill()
	b.Run("idle-1M", func(b *testing.B) {
		for b.Loop() {
			m.sweep(nil)
		}
	})
	// Each iteration refills 1M bindings (untimed, a few seconds) and
	// expires them all in one sweep: run it with -benchtime=3x.
	b.Run("expire-1M", func(b *testing.B) {
		start := clk.now()
		for b.Loop() {
			b.StopTimer()
			m = nil
			clk.t(start)
			m = fill()
			clk.advance(2 * time.Hour)
			b.StartTimer()
			m.sweep(nil)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/binding")
	})
}
