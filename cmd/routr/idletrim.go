package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Idle trim: once the edge has gone quiet after a burst, collect and give
// the free memory back to the system (debug.FreeOSMemory) once. Left to
// itself the runtime keeps what the burst's garbage needed: the heap may
// grow to twice what is live (GOGC=100), and the scavenger only returns
// what lies beyond ~110% of that, so an edge holding 100,000 bindings
// (~100 MB live) stayed near 280 MB resident after registering them
// instead of ~170. A trim costs one collection; it runs at most once per
// quiet period, and only when the heap holds a good deal more than is
// live.
const (
	trimEvery = 10 * time.Second
	// trimQuiet: allocating less than this per trimEvery is quiet
	// (an idle edge with 100,000 agents refreshing hourly: ~30
	// REGISTERs/s, a few MB).
	trimQuiet = 16 << 20
	// trimSlack: the heap must hold this much more than is live.
	trimSlack = 32 << 20
)

// runIdleTrim checks every period until ctx ends.
func runIdleTrim(ctx context.Context, log *slog.Logger, period time.Duration) {
	s := []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
	read := func() heapReading {
		metrics.Read(s)
		return heapReading{allocs: s[0].Value.Uint64(), live: s[1].Value.Uint64(),
			held: s[2].Value.Uint64() + s[3].Value.Uint64() + s[4].Value.Uint64()}
	}
	trim := func(h heapReading) {
		start := time.Now()
		debug.FreeOSMemory()
		log.Debug("idle: memory given back", "live", h.live, "held_before", h.held, "took", time.Since(start))
	}
	idleTrimLoop(ctx, period, read, trim)
}

// heapReading is what the trim decides on: bytes allocated ever, live at
// the last collection, and held by the heap (objects, unused and free
// spans not yet given back).
type heapReading struct{ allocs, live, held uint64 }

// idleTrimLoop reads every period and trims once per quiet period.
func idleTrimLoop(ctx context.Context, period time.Duration, read func() heapReading, trim func(heapReading)) {
	last := read()
	trimmed := true // nothing to give back before a burst
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h := read()
		var do bool
		do, trimmed = shouldTrim(h.allocs-last.allocs, h, trimmed)
		last = h
		if do {
			trim(h)
		}
	}
}

// shouldTrim decides from what was allocated since the last check and
// the heap now whether to trim; trimmed says whether this quiet period
// was already trimmed, and it returns the new value.
func shouldTrim(allocated uint64, h heapReading, trimmed bool) (trim, nowTrimmed bool) {
	switch {
	case allocated >= trimQuiet:
		return false, false // busy: the next quiet period may trim
	case !trimmed && h.held > h.live+trimSlack:
		return true, true
	}
	return false, trimmed
}
