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
	open := func(self string) *Presence { return openPresence(t, srv.URL(), self, interval) }
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

// TestPresenceRestartedInstance restarts A at once under the same URI,
// as a supervisor does after a crash, long before three heartbeats are
// missed: B still takes A's URI for up (its phones are still reached
// through it), but no longer the process that ran before, whose call
// markers are then taken over.
func TestPresenceRestartedInstance(t *testing.T) {
	srv := natstest.Single(t)
	const interval = 5 * time.Second // three missed beats: 15 s
	open := func(self string) *Presence { return openPresence(t, srv.URL(), self, interval) }
	const uriA = "sip:127.0.0.1:5060"
	a, b := open(uriA), open("sip:127.0.0.1:5061")
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { b.Run(ctx) })
	defer func() { stop(); wg.Wait() }()

	old := a.Incarnation()
	if !b.Alive(old) || !b.Alive(uriA) || !a.Alive(old) {
		t.Fatal("A's first process is not up")
	}
	a2 := open(uriA) // A crashed and came back: a new process
	if a2.Incarnation() == old {
		t.Fatal("a restarted process has the same incarnation")
	}
	if a2.Alive(old) {
		t.Error("the new process takes its predecessor for itself")
	}
	deadline := time.Now().Add(interval)
	for b.Alive(old) {
		if time.Now().After(deadline) {
			t.Fatal("B still takes A's first process for up after A restarted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !b.Alive(uriA) || !b.Alive(a2.Incarnation()) {
		t.Error("B does not take A's new process for up")
	}
	if b.Alive("sip:127.0.0.1:5061#another") || !b.Alive(b.Incarnation()) {
		t.Error("B takes another process of its own URI for itself")
	}
}

// openPresence announces self in the bucket "instances" of the server at
// url, with heartbeats every interval once run.
func openPresence(t *testing.T, url, self string, interval time.Duration) *Presence {
	t.Helper()
	nc, err := nats.Connect(url)
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
