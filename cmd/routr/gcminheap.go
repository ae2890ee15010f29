package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// gcMinHeap keeps the collector from running before the heap reaches
// minHeap bytes, where GOGC alone (the heap may grow by GOGC% of what is
// live) would run it sooner. Under call load the edge's live heap is
// small (~40 MB at 5,000 calls/s) and allocation fast, so GOGC=100
// collected every few tens of milliseconds, ~16% of the CPU; with a
// 192 MiB goal it collects about 2.5 times less often. A live heap of
// half the goal or more (100,000 bindings, ~100 MB) is left to GOGC
// alone: the goal costs its resident size nothing. A soft memory limit
// (GOMEMLIMIT, or the cgroup's: memlimit.go) still bounds the whole.
// The memory ballast some Go services allocate does the same, less
// precisely.
//
// After every collection it sets the GOGC percentage to
// max(base, 100*(minHeap-live)/live), at most maxMinHeapPercent. It runs
// no goroutine: a finalizer that re-arms itself fires once per
// collection.
type gcMinHeap struct {
	minHeap uint64
	base    int

	mu      sync.Mutex
	stopped bool
	percent int
	sample  []metrics.Sample
}

// maxMinHeapPercent caps GOGC: with a few MB live, a collection every
// 10x growth is frequent enough.
const maxMinHeapPercent = 1000

// gcPercentFor is the GOGC percentage for live bytes: base, or what lets
// the heap reach minHeap, capped.
func gcPercentFor(live, minHeap uint64, base int) int {
	if live == 0 {
		live = 1
	}
	if live >= minHeap {
		return base
	}
	want := (minHeap - live) * 100 / live
	return max(int(min(want, maxMinHeapPercent)), base)
}

// startGCMinHeap installs the goal over the GOGC percentage base (100
// unless GOGC said otherwise) and returns what removes it and restores
// base. minHeap 0 installs nothing.
func startGCMinHeap(minHeap uint64, base int) (stop func()) {
	if minHeap == 0 || base <= 0 {
		return func() {}
	}
	g := &gcMinHeap{minHeap: minHeap, base: base, percent: base,
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	g.adjust()
	g.arm()
	return g.stop
}

// sentinel is unreachable from the moment it is armed: the collection
// that finds it so queues its finalizer, which adjusts and re-arms it.
type sentinel struct{ g *gcMinHeap }

func (g *gcMinHeap) arm() {
	runtime.SetFinalizer(&sentinel{g: g}, sentinelFired)
}

func sentinelFired(s *sentinel) {
	if s.g.adjust() {
		runtime.SetFinalizer(s, sentinelFired)
	}
}

// adjust sets the percentage for the live heap of the last collection;
// it reports false once stopped.
func (g *gcMinHeap) adjust() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return false
	}
	metrics.Read(g.sample)
	var live uint64
	if g.sample[0].Value.Kind() == metrics.KindUint64 {
		live = g.sample[0].Value.Uint64()
	}
	if p := gcPercentFor(live, g.minHeap, g.base); p != g.percent {
		g.percent = p
		debug.SetGCPercent(p)
	}
	return true
}

func (g *gcMinHeap) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.stopped {
		g.stopped = true
		debug.SetGCPercent(g.base)
	}
}
