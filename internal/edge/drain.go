package edge

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// drainState is what a draining edge needs: whether it drains, what it
// tells refused clients, and how many requests it is still handling.
type drainState struct {
	on         atomic.Bool
	retryAfter atomic.Int64 // seconds, for the Retry-After of refusals
	active     atomic.Int64 // requests inside the chain past the gate
	refused    atomic.Int64
}

// Drain makes the edge stop taking new work while it finishes what it
// has: from now on every out-of-dialog request (INVITE, REGISTER,
// OPTIONS, MESSAGE...) is answered 503 Service Unavailable with a
// Retry-After of retryAfter (at least one second), so that clients and
// load balancers try another edge, while requests inside the dialogs the
// edge routed (ACK, BYE, re-INVITE, UPDATE...) and CANCELs are served as
// before. Transactions already being handled go on. Drain does not wait;
// Busy tells when the edge has nothing left. It cannot be undone: Run's
// context ends the edge.
func (s *Server) Drain(retryAfter time.Duration) {
	secs := max(int64((retryAfter+time.Second-1)/time.Second), 1)
	s.drain.retryAfter.Store(secs)
	if s.drain.on.CompareAndSwap(false, true) {
		s.log.Info("draining: new requests are refused with 503", "retry_after_s", secs)
	}
}

// Draining reports whether Drain was called.
func (s *Server) Draining() bool { return s.drain.on.Load() }

// Busy reports what the edge still has in hand: requests being handled
// (an INVITE until its final response is relayed, a BYE until its
// answer...) and answered dialogs whose ACK has not passed yet. Calls
// that are up but quiet are the calls tracker's to count.
func (s *Server) Busy() (requests, awaitingACK int) {
	return int(s.drain.active.Load()), s.acks.len()
}

// Refused returns how many requests Drain has refused so far.
func (s *Server) Refused() int { return int(s.drain.refused.Load()) }

// drainGate is the link of the chain that refuses new transactions while
// the edge drains, and counts the requests it lets through.
func (s *Server) drainGate(next Handler) Handler {
	return HandlerFunc(func(r *Request) {
		if s.drain.on.Load() && opensTransaction(r) {
			s.drain.refused.Add(1)
			s.reply(r, 503, "Service Unavailable", sip.NewHeader("Retry-After", strconv.FormatInt(s.drain.retryAfter.Load(), 10)))
			return
		}
		s.drain.active.Add(1)
		defer s.drain.active.Add(-1)
		next.ServeSIP(r)
	})
}

// opensTransaction reports whether r starts something new, as opposed to
// continuing a dialog or transaction the edge already has: an ACK or a
// CANCEL never does, nor does a request with a To tag.
func opensTransaction(r *Request) bool {
	return r.Method != sip.ACK && r.Method != sip.CANCEL && !r.inDialog()
}
