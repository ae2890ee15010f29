package edge

import (
	"sync"
	"time"
)

// ackGate keeps a dialog's BYE from overtaking its ACK. sipgo hands every
// message to its own goroutine, and Go's scheduler runs the newest
// goroutine first, so a UA that sends ACK and BYE back to back often sees
// them forwarded in the opposite order; strict UAs (sipp among them) then
// drop the call. After the edge relays the 2xx of an INVITE, a request of
// the same dialog other than the ACK waits (at most ackGateWait) until the
// ACK has been forwarded.
//
// Bounded: at most ackGateMax dialogs are gated at once; beyond that a
// dialog is not gated (and the race is merely possible again). Entries
// leave when the ACK passes or when a waiter gives up.
type ackGate struct {
	mu      sync.Mutex
	pending map[string]chan struct{}
}

const (
	ackGateMax  = 65536
	ackGateWait = 100 * time.Millisecond
)

func newAckGate() *ackGate {
	return &ackGate{pending: make(map[string]chan struct{})}
}

// expect marks callID as waiting for its ACK.
func (g *ackGate) expect(callID string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.pending[callID]; ok || len(g.pending) >= ackGateMax {
		return
	}
	g.pending[callID] = make(chan struct{})
}

// acked releases whoever waits on callID's ACK.
func (g *ackGate) acked(callID string) {
	g.mu.Lock()
	ch, ok := g.pending[callID]
	delete(g.pending, callID)
	g.mu.Unlock()
	if ok {
		close(ch)
	}
}

// wait blocks until callID's ACK has passed, for at most ackGateWait.
func (g *ackGate) wait(callID string) {
	g.mu.Lock()
	ch, ok := g.pending[callID]
	g.mu.Unlock()
	if !ok {
		return
	}
	select {
	case <-ch:
	case <-time.After(ackGateWait):
		g.acked(callID) // the ACK was lost or went another way
	}
}

// len is the number of gated dialogs, for the metric.
func (g *ackGate) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pending)
}
