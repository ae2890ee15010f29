package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// gcHeadroom gives the collector a floor on how far the heap may grow
// over what is live: at least headroom bytes, where GOGC=100 alone
// allows as much as is live. Under call load the edge's live heap is
// small (~40 MB at 5,000 calls/s) and allocation fast, so GOGC=100
// collects every few tens of milliseconds and the collector took ~16% of
// the CPU; with 128 MiB of headroom it runs about three times less
// often. A large live heap (100,000 bindings, ~100 MB) gets little or no
// extra: the floor adds at most headroom bytes of garbage to the
// resident size, and a soft memory limit (GOMEMLIMIT, or the cgroup's,
// memlimit.go) still bounds the whole.
//
// After every collection it sets the GOGC percentage to
// max(base, 100*headroom/live), at most maxHeadroomPercent. It runs no
// goroutine: a finalizer that re-arms itself fires once per collection.
type gcHeadroom struct {
	headroom uint64
	base     int

	mu      sync.Mutex
	stopped bool
	percent int
	sample  []metrics.Sample
}

// maxHeadroomPercent caps GOGC: with a few MB live, a collection every
// 10x growth is frequent enough.
const maxHeadroomPercent = 1000

// gcPercentFor is the GOGC percentage for live bytes: base, or enough for
// headroom bytes of growth, capped.
func gcPercentFor(live, headroom uint64, base int) int {
	p := base
	if live == 0 {
		live = 1
	}
	if want := headroom * 100 / live; want > uint64(p) {
		p = int(min(want, maxHeadroomPercent))
	}
	return max(p, base)
}

// startGCHeadroom installs the floor over the GOGC percentage base (100
// unless GOGC said otherwise) and returns what removes it and restores
// base. headroom 0 installs nothing.
func startGCHeadroom(headroom uint64, base int) (stop func()) {
	if headroom == 0 || base <= 0 {
		return func() {}
	}
	g := &gcHeadroom{headroom: headroom, base: base, percent: base,
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	g.adjust()
	g.arm()
	return g.stop
}

// sentinel is unreachable from the moment it is armed: the collection
// that finds it so queues its finalizer, which adjusts and re-arms it.
type sentinel struct {
	g *gcHeadroom
	_ [16]byte // not a tiny allocation: those batch finalizers with others
}

func (g *gcHeadroom) arm() {
	runtime.SetFinalizer(&sentinel{g: g}, sentinelFired)
}

func sentinelFired(s *sentinel) {
	if s.g.adjust() {
		runtime.SetFinalizer(s, sentinelFired)
	}
}

// adjust sets the percentage for the live heap of the last collection;
// it reports false once stopped.
func (g *gcHeadroom) adjust() bool {
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
	if p := gcPercentFor(live, g.headroom, g.base); p != g.percent {
		g.percent = p
		debug.SetGCPercent(p)
	}
	return true
}

func (g *gcHeadroom) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.stopped {
		g.stopped = true
		debug.SetGCPercent(g.base)
	}
}
