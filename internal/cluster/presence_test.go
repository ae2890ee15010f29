package cluster

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/routr-go/routr/internal/natstest"
)

// TestPresenceWithdraw has instance A withdraw, as a draining edge does
// when its drain starts: B takes A for gone at once, long before A's
// missed heartbeats would say so, and A's heartbeats do not announce it
// again while A goes on running.
func TestPresenceWithdraw(t *testing.T) {
	srv := natstest.Single(t)
	const interval = 5 * time.Second // three missed beats: 15 s
	open := func(self string) *Presence {
		nc, err := nats.Connect(srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		p, err := NewPresence(context.Background(), PresenceOptions{Conn: nc, Bucket: "instances", Self: self, Interval: interval})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := open("sip:127.0.0.1:5060"), open("sip:127.0.0.1:5061")
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { a.Run(ctx) })
	wg.Go(func() { b.Run(ctx) })
	defer func() { stop(); wg.Wait() }()

	if !b.Alive(a.self) {
		t.Fatal("B does not see A")
	}
	a.Withdraw()
	deadline := time.Now().Add(interval)
	for b.Alive(a.self) {
		if time.Now().After(deadline) {
			t.Fatal("B still takes A for up after A withdrew")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(interval + time.Second) // A's next heartbeat is due
	if b.Alive(a.self) {
		t.Error("A's heartbeat announced it again after it withdrew")
	}
	if !a.Alive(a.self) || b.up() != 1 {
		t.Errorf("instances up as B sees them: %d, want 1", b.up())
	}
}
