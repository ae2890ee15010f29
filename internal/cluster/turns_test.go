package cluster

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/routr-go/routr/internal/natstest"
)

// TestTurnsShared takes turns from three instances at once: together they
// hand out every number once, as one counter would. The wait for the
// shared counter is long here: past it a turn is local by design, and a
// loaded test machine can stretch a round trip past the 250 ms default.
func TestTurnsShared(t *testing.T) {
	srv := natstest.Single(t)
	var ts []*Turns
	for range 3 {
		nc, err := nats.Connect(srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		tu, err := NewTurns(context.Background(), TurnsOptions{Conn: nc, Bucket: "turns", Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tu)
	}
	var mu sync.Mutex
	var got []uint64
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			for range 10 {
				n := ts[i%3].Next("sip:pbx@sip.local")
				mu.Lock()
				got = append(got, n)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(got)
	for i, n := range got {
		if n != uint64(i) {
			t.Fatalf("turns %v: want 0..59 once each", got)
		}
	}
	if n := ts[0].Next("other"); n != 0 {
		t.Errorf("a new key starts at %d", n)
	}
}

// TestTurnsLocalWhenNATSAway stops the server: turns keep coming, from
// the local counter.
func TestTurnsLocalWhenNATSAway(t *testing.T) {
	srv := natstest.Single(t)
	nc, err := nats.Connect(srv.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	tu, err := NewTurns(context.Background(), TurnsOptions{Conn: nc, Bucket: "turns"})
	if err != nil {
		t.Fatal(err)
	}
	if n := tu.Next("k"); n != 0 {
		t.Fatalf("first turn %d", n)
	}
	srv.Stop()
	for i := range 3 {
		if n := tu.Next("k"); n != uint64(i) {
			t.Errorf("local turn %d = %d", i, n)
		}
	}
}
