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
// Bounded in size and time: at most ackGateMax dialogs are gated at once
// (beyond that a dialog is not gated, and the race is merely possible
// again), and an entry whose ACK never came (lost, or a caller that
// vanished) is dropped ackGateTTL after the 2xx, when the callee stops
// retransmitting it anyway. Entries also leave when the ACK passes or a
// waiter gives up.
//
// An entry also carries what ends the INVITE's transactions: once the ACK
// for the 2xx has passed, neither side retransmits (the caller got the
// 2xx, the callee its ACK), so the server and client transactions need
// not linger for SIP_TRANSACTION_LINGER, holding their requests and
// responses (~300 MB per 1,000 calls/s at 5 s). A 2xx retransmitted
// after that (the ACK lost downstream) is relayed statelessly
// (strayResponse).
type ackGate struct {
	mu      sync.Mutex
	pending map[string]gateEntry
	inserts int
	now     func() time.Time
}

type gateEntry struct {
	ch chan struct{}
	at time.Time
	// end, when not nil, ends the transactions of the INVITE.
	end []func()
}

const (
	ackGateMax   = 65536
	ackGateWait  = 100 * time.Millisecond
	ackGateTTL   = 32 * time.Second // 64*T1: how long a callee resends its 2xx
	ackGateSweep = 1024             // inserts between sweeps of stale entries
)

func newAckGate() *ackGate {
	return &ackGate{pending: make(map[string]gateEntry), now: time.Now}
}

// expect marks callID as waiting for its ACK; end, when not nil, is
// called once the ACK has passed (or the entry goes otherwise).
func (g *ackGate) expect(callID string, end func()) {
	var stale []gateEntry
	defer func() {
		for _, e := range stale {
			e.finish()
		}
	}()
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	g.inserts++
	if g.inserts%ackGateSweep == 0 || len(g.pending) >= ackGateMax {
		// Amortised: one walk per ackGateSweep inserts, or when full.
		for id, e := range g.pending {
			if now.Sub(e.at) > ackGateTTL {
				delete(g.pending, id)
				stale = append(stale, e)
			}
		}
	}
	if e, ok := g.pending[callID]; ok {
		if end != nil {
			e.end = append(e.end, end)
			g.pending[callID] = e
		}
		return
	}
	if len(g.pending) >= ackGateMax {
		return // not gated: the transactions end by their timers
	}
	e := gateEntry{ch: make(chan struct{}), at: now}
	if end != nil {
		e.end = []func(){end}
	}
	g.pending[callID] = e
}

// finish releases the waiters and ends the transactions of an entry that
// left the gate.
func (e gateEntry) finish() {
	close(e.ch)
	for _, f := range e.end {
		f()
	}
}

// acked releases whoever waits on callID's ACK.
func (g *ackGate) acked(callID string) {
	g.mu.Lock()
	e, ok := g.pending[callID]
	delete(g.pending, callID)
	g.mu.Unlock()
	if ok {
		e.finish()
	}
}

// wait blocks until callID's ACK has passed, for at most ackGateWait.
func (g *ackGate) wait(callID string) {
	g.mu.Lock()
	e, ok := g.pending[callID]
	g.mu.Unlock()
	if !ok {
		return
	}
	ch := e.ch
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
