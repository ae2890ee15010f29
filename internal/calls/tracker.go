package calls

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routr-go/routr/internal/events"
)

// Header is a SIP header as on the wire.
type Header = events.Header

// DefaultMaxCalls is the default bound on tracked calls.
const DefaultMaxCalls = 100_000

// CauseMaxDuration is the hangupCause of a call ended because it outlived
// Options.MaxDuration (FreeSWITCH's name for the same thing).
const CauseMaxDuration = events.CauseAllottedTimeout

// Options configures a Tracker.
type Options struct {
	// Sink receives the events; it must not block. Nil discards them.
	Sink events.Sink
	// MaxCalls bounds the calls tracked at once; beyond it a new call is
	// not tracked (nothing is published for it) and is counted. 0 means
	// DefaultMaxCalls.
	MaxCalls int
	// MaxDuration ends a call that long after its start (answered or not)
	// with hangupCause ALLOTTED_TIMEOUT and sipCode 0; Run checks every
	// second (or every MaxDuration, when shorter). 0 means no limit.
	MaxDuration time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Registerer receives the metrics (namespace routr, subsystem calls);
	// nil registers nothing.
	Registerer prometheus.Registerer
	// OnUnknownEnd, if set, learns of every end of a call the Tracker does
	// not track (a BYE for a call another edge instance routed), with what
	// call.ended would say; it must not block (cluster.Ledger.EndUnknown).
	OnUnknownEnd func(callID, cause string, code int, h []Header, at time.Time)
}

// StartInfo describes a call whose initial INVITE was forwarded.
type StartInfo struct {
	// CallID is the Call-ID of the INVITE: the call's key.
	CallID string
	// From and To are the From and To URIs (or header values) as received;
	// events normalises them to sip:user@host.
	From, To string
	// ExtraHeaders may hold every header of the INVITE (or only its X-
	// ones): call.started writes the X- ones that carry no credential.
	ExtraHeaders []Header
	// Metadata is the extended metadata of the caller or of the Number,
	// written at the top level of call.started (compat fields win).
	Metadata map[string]any
}

// shards spreads calls over this many locks.
const shards = 64

// Tracker follows calls from their initial INVITE to their end and
// publishes their events. All methods are safe for concurrent use.
type Tracker struct {
	sink        events.Sink
	maxCalls    int64
	maxDuration time.Duration
	now         func() time.Time
	seed        maphash.Seed
	active      atomic.Int64
	shards      [shards]shard
	m           metrics
	onUnknown   func(callID, cause string, code int, h []Header, at time.Time)
}

type shard struct {
	mu    sync.Mutex
	calls map[string]*call
	_     [48]byte // keep shards on separate cache lines
}

// call is what is kept per tracked call: enough for call.answered and
// call.ended.
type call struct {
	from, to string // normalised
	start    time.Time
	answer   time.Time // zero until answered
}

// NewTracker returns a Tracker; call Run to enforce MaxDuration. It panics
// if its metrics cannot be registered (two trackers on one Registerer).
func NewTracker(o Options) *Tracker {
	if o.Sink == nil {
		o.Sink = events.Discard{}
	}
	if o.MaxCalls <= 0 {
		o.MaxCalls = DefaultMaxCalls
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	t := &Tracker{
		sink:        o.Sink,
		maxCalls:    int64(o.MaxCalls),
		maxDuration: o.MaxDuration,
		now:         o.Now,
		seed:        maphash.MakeSeed(),
		onUnknown:   o.OnUnknownEnd,
	}
	for i := range t.shards {
		t.shards[i].calls = make(map[string]*call)
	}
	t.m = newMetrics(o.Registerer, func() float64 { return float64(t.active.Load()) })
	return t
}

func (t *Tracker) shard(callID string) *shard {
	return &t.shards[maphash.String(t.seed, callID)%shards]
}

// Started reports that the initial INVITE of a call (no To tag) was
// forwarded, and publishes call.started. It returns false, publishing
// nothing, when the call is already tracked: a retransmission, a re-INVITE
// or a spiral. A new call beyond MaxCalls is not tracked and publishes
// nothing, but Started still returns true (it is a new call). A Call-ID
// whose call has ended starts a new call (e.g. an INVITE sent again with
// credentials after a downstream 407): report only INVITEs the transaction
// layer did not absorb as retransmissions.
func (t *Tracker) Started(s StartInfo) bool {
	sh := t.shard(s.CallID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.calls[s.CallID]; ok {
		t.m.duplicate.Inc()
		return false
	}
	if t.active.Add(1) > t.maxCalls {
		t.active.Add(-1)
		t.m.untracked.Inc()
		return true
	}
	c := &call{from: events.NormalizeURI(s.From), to: events.NormalizeURI(s.To), start: t.now()}
	sh.calls[s.CallID] = c
	t.m.started.Inc()
	t.sink.Publish(events.CallStarted(events.CallStart{
		CallID: s.CallID, From: c.from, To: c.to, StartTime: c.start,
		ExtraHeaders: s.ExtraHeaders, Metadata: s.Metadata,
	}))
	return true
}

// Answered reports that a 2xx to the initial INVITE was relayed and
// publishes call.answered for the first one; a retransmitted or forked 2xx
// publishes nothing.
func (t *Tracker) Answered(callID string) {
	sh := t.shard(callID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c := sh.calls[callID]
	switch {
	case c == nil:
		t.m.unknown.Inc()
		return
	case !c.answer.IsZero():
		t.m.ignored.Inc()
		return
	}
	c.answer = t.now()
	t.m.answered.Inc()
	t.sink.Publish(events.CallAnswered(events.CallAnswer{
		CallID: callID, From: c.from, To: c.to, StartTime: c.start, AnswerTime: c.answer,
	}))
}

// Failed reports that a final response >= 300 to the initial INVITE was
// relayed: the call ends with HangupCause(code). After an answer it
// publishes nothing.
func (t *Tracker) Failed(callID string, code int, h []Header) {
	t.end(callID, false, events.HangupCause(code), code, h)
}

// Cancelled reports the caller's CANCEL of an unanswered call: it ends
// with NORMAL_CLEARING (sipCode 487). The 487 that follows publishes
// nothing; a CANCEL after the answer publishes nothing.
func (t *Tracker) Cancelled(callID string, h []Header) {
	t.end(callID, false, events.CauseNormalClearing, 487, h)
}

// TimedOut reports that the INVITE transaction timed out without a final
// response: the call ends with NO_USER_RESPONSE (sipCode 408).
func (t *Tracker) TimedOut(callID string) {
	t.end(callID, false, events.CauseNoUserResponse, 408, nil)
}

// Unreachable reports that the call failed because its destination could
// not be reached (transport error), or that the edge tore the dialog down
// because it can no longer reach either party: the call ends with
// SERVICE_UNAVAILABLE (sipCode 503), answered or not. With forking, report
// it only when no branch is left (otherwise the final response does it).
func (t *Tracker) Unreachable(callID string) {
	t.end(callID, true, events.CauseServiceUnavailable, 503, nil)
}

// Bye reports that a BYE from either side got its final response code, or
// timed out (code 0, taken as 408): the call ends with NORMAL_CLEARING for
// a 2xx, else HangupCause(code). The call ends whatever the outcome; a
// second BYE (glare) publishes nothing.
func (t *Tracker) Bye(callID string, code int, h []Header) {
	if code == 0 {
		code = 408
	}
	cause := events.HangupCause(code)
	if code >= 200 && code < 300 {
		cause = events.CauseNormalClearing
	}
	t.end(callID, true, cause, code, h)
}

// end ends a call: when afterAnswer is false, only if it is not answered.
func (t *Tracker) end(callID string, afterAnswer bool, cause string, code int, h []Header) {
	sh := t.shard(callID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c := sh.calls[callID]
	switch {
	case c == nil:
		t.m.unknown.Inc()
		if t.onUnknown != nil {
			t.onUnknown(callID, cause, code, h, t.now())
		}
		return
	case !afterAnswer && !c.answer.IsZero():
		t.m.ignored.Inc()
		return
	}
	t.finish(sh, callID, c, cause, code, h, t.now())
}

// finish removes c and publishes its call.ended; sh.mu is held.
func (t *Tracker) finish(sh *shard, callID string, c *call, cause string, code int, h []Header, now time.Time) {
	delete(sh.calls, callID)
	t.active.Add(-1)
	t.m.ended(cause)
	t.sink.Publish(events.CallEnded(events.CallEnd{
		CallID: callID, From: c.from, To: c.to,
		StartTime: c.start, AnswerTime: c.answer, EndTime: now,
		HangupCause: cause, SIPCode: code, ExtraHeaders: h,
	}))
}

// Active returns the number of calls tracked.
func (t *Tracker) Active() int { return int(t.active.Load()) }

// Run ends calls that outlive MaxDuration, checking every second (or every
// MaxDuration when shorter), until ctx ends; then it returns nil. Without
// MaxDuration it just waits for ctx.
func (t *Tracker) Run(ctx context.Context) error {
	if t.maxDuration <= 0 {
		<-ctx.Done()
		return nil
	}
	tick := time.NewTicker(min(time.Second, t.maxDuration))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			t.Sweep()
		}
	}
}

// Sweep ends, now, every call older than MaxDuration (ALLOTTED_TIMEOUT)
// and returns how many; Run calls it periodically.
func (t *Tracker) Sweep() int {
	if t.maxDuration <= 0 {
		return 0
	}
	ended := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		now := t.now()
		for id, c := range sh.calls {
			if now.Sub(c.start) >= t.maxDuration {
				t.finish(sh, id, c, CauseMaxDuration, 0, nil, now)
				ended++
			}
		}
		sh.mu.Unlock()
	}
	return ended
}
