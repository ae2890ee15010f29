package sip

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// routr-go patch: every submitted message is handled once, by kept
// workers; after close no worker is left.
func TestMsgWorkers(t *testing.T) {
	before := runtime.NumGoroutine()
	var mu sync.Mutex
	seen := map[Message]int{}
	var wg sync.WaitGroup
	w := newMsgWorkers(func(m Message) {
		mu.Lock()
		seen[m]++
		mu.Unlock()
		wg.Done()
	})
	const n = 1000
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = &Request{}
	}
	wg.Add(n)
	for _, m := range msgs {
		w.submit(m)
	}
	wg.Wait()
	for i, m := range msgs {
		if seen[m] != 1 {
			t.Fatalf("message %d handled %d times", i, seen[m])
		}
	}
	w.close()
	deadline := time.Now().Add(workerIdle / 2) // idle workers would stay workerIdle
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after close, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
