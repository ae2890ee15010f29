package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, minHeap uint64
		base, want    int
	}{
		{live: 40 * mib, minHeap: 192 * mib, base: 100, want: 380},
		{live: 96 * mib, minHeap: 192 * mib, base: 100, want: 100}, // half the goal live: GOGC alone
		{live: 100 * mib, minHeap: 192 * mib, base: 100, want: 100},
		{live: 300 * mib, minHeap: 192 * mib, base: 100, want: 100},
		{live: 1 * mib, minHeap: 192 * mib, base: 100, want: maxMinHeapPercent},
		{live: 0, minHeap: 192 * mib, base: 100, want: maxMinHeapPercent},
		{live: 40 * mib, minHeap: 192 * mib, base: 400, want: 400},
	} {
		if got := gcPercentFor(c.live, c.minHeap, c.base); got != c.want {
			t.Errorf("gcPercentFor(%d MiB live, %d MiB, %d) = %d, want %d", c.live/mib, c.minHeap/mib, c.base, got, c.want)
		}
	}
}

func gogc() int64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// After each collection the percentage follows the live heap; stopping
// restores the base and no later collection changes it.
func TestGCMinHeapFollowsCollections(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	keep := make([][]byte, 0, 64)
	for range 64 { // ~64 MiB live
		keep = append(keep, make([]byte, 1<<20))
	}
	testHeap = keep
	runtime.GC()
	stop := startGCMinHeap(320<<20, 100)
	waitGOGC := func(ok func(int64) bool, what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !ok(gogc()) {
			if time.Now().After(deadline) {
				t.Fatalf("GOGC %d, want %s", gogc(), what)
			}
			runtime.GC()
			time.Sleep(5 * time.Millisecond)
		}
	}
	// 320 MiB with ~64 live: ~400 (the test binary's own heap adds a little).
	waitGOGC(func(p int64) bool { return p > 250 && p <= 400 }, "about 400 with ~64 MiB live")
	testHeap = nil // ~2 MiB live: the cap
	waitGOGC(func(p int64) bool { return p == maxMinHeapPercent }, "the cap")
	stop()
	if p := gogc(); p != 100 {
		t.Fatalf("GOGC after stop = %d, want 100", p)
	}
	for range 3 { // with ~2 MiB live, a running floor would set the cap
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	if p := gogc(); p != 100 {
		t.Fatalf("GOGC changed after stop: %d", p)
	}
}

// testHeap is what TestGCMinHeapFollowsCollections keeps live: a
// package variable, which the compiler cannot find dead.
var testHeap [][]byte
