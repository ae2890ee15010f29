package edge

import (
	"fmt"
	"testing"
	"time"
)

func TestAckGate(t *testing.T) {
	now := time.Unix(1000, 0)
	g := newAckGate()
	g.now = func() time.Time { return now }

	// A waiter is released by the ACK.
	g.expect("a", nil)
	released := make(chan struct{})
	go func() { g.wait("a"); close(released) }()
	g.acked("a")
	select {
	case <-released:
	case <-time.After(time.Second):
		t.Fatal("wait not released by the ACK")
	}
	// Nothing to wait for: no block.
	g.wait("unknown")

	// Entries whose ACK never came go after the TTL, at the next sweep
	// (every ackGateSweep inserts; "a" was the first).
	for i := 0; i < ackGateSweep-2; i++ {
		g.expect(fmt.Sprint("lost-", i), nil)
	}
	if n := g.len(); n != ackGateSweep-2 {
		t.Fatalf("%d entries, want %d", n, ackGateSweep-2)
	}
	now = now.Add(ackGateTTL + time.Second)
	g.expect("fresh", nil) // the sweep runs on this insert
	if n := g.len(); n != 1 {
		t.Fatalf("%d entries after the TTL, want only the fresh one", n)
	}
}
