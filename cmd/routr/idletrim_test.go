package main

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

func TestShouldTrim(t *testing.T) {
	const mib = 1 << 20
	bloated := heapReading{live: 100 * mib, held: 250 * mib}
	tight := heapReading{live: 100 * mib, held: 120 * mib}
	for _, c := range []struct {
		name            string
		allocated       uint64
		h               heapReading
		trimmed         bool
		want, wantState bool
	}{
		{"busy", 200 * mib, bloated, false, false, false},
		{"busy after a trim re-arms", 200 * mib, bloated, true, false, false},
		{"quiet after a burst", 1 * mib, bloated, false, true, true},
		{"quiet, already trimmed", 1 * mib, bloated, true, false, true},
		{"quiet, little to give back", 1 * mib, tight, false, false, false},
	} {
		got, state := shouldTrim(c.allocated, c.h, c.trimmed)
		if got != c.want || state != c.wantState {
			t.Errorf("%s: shouldTrim = %v, %v; want %v, %v", c.name, got, state, c.want, c.wantState)
		}
	}
}

// A burst, then quiet: one trim, not one per period; a new burst and
// quiet again: one more. Before any burst: none.
func TestIdleTrimLoopOncePerQuietPeriod(t *testing.T) {
	const mib = 1 << 20
	var mu sync.Mutex
	allocs := uint64(0)
	trims := 0
	read := func() heapReading {
		mu.Lock()
		defer mu.Unlock()
		return heapReading{allocs: allocs, live: 50 * mib, held: 300 * mib}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		idleTrimLoop(ctx, time.Millisecond, read, func(heapReading) { mu.Lock(); trims++; mu.Unlock() })
		close(done)
	}()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return trims
	}
	waitTrims := func(want int) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for count() < want && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond) // ~20 more quiet periods
		if n := count(); n != want {
			t.Fatalf("%d trims, want %d", n, want)
		}
	}
	waitTrims(0)
	for round := 1; round <= 2; round++ {
		mu.Lock()
		allocs += 500 * mib // a burst
		mu.Unlock()
		waitTrims(round)
	}
	cancel()
	<-done
}

// runIdleTrim reads the runtime metrics it names (an unknown name would
// panic on its first read) and stops with its context.
func TestRunIdleTrimReadsAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		runIdleTrim(ctx, slog.New(slog.DiscardHandler), time.Millisecond)
		close(done)
	}()
	time.Sleep(20 * time.Millisecond) // several periods
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("runIdleTrim did not stop")
	}
}
