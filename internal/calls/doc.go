// Package calls is the call lifecycle state machine: the edge tells a Tracker what happens to each call and it publishes call.started, call.answered and call.ended exactly once per call, in order.
//
// # What the edge reports, and what is published
//
//	Started    initial INVITE (no To tag) forwarded -> call.started
//	           (a retransmission, re-INVITE or spiral of a tracked call: nothing)
//	Answered   2xx to the initial INVITE relayed  -> call.answered (first 2xx only)
//	Failed     final >= 300 relayed, before answer -> call.ended, cause HangupCause(code)
//	Cancelled  caller's CANCEL, before answer      -> call.ended NORMAL_CLEARING, sipCode 487
//	TimedOut   INVITE transaction timeout          -> call.ended NO_USER_RESPONSE, sipCode 408
//	Unreachable transport error                    -> call.ended SERVICE_UNAVAILABLE, sipCode 503
//	Bye        BYE from either side got its final  -> call.ended NORMAL_CLEARING for 2xx, else
//	           response (0: it timed out = 408)       HangupCause(code) (408: NO_USER_RESPONSE)
//	sweeper    call older than Options.MaxDuration -> call.ended ALLOTTED_TIMEOUT, sipCode 0
//
// The first report that ends a call wins; the call is then forgotten and
// every later report for it publishes nothing (counted in
// routr_calls_ignored_total): the 487 after a CANCEL, a 200 that lost the
// race with a CANCEL (and the BYE that follows it), the second BYE of a
// glare. Answered after answer, Failed, Cancelled or TimedOut after answer
// publish nothing either.
//
// # Ordering
//
// Calls live in a sharded map. A report takes the lock of its call's shard,
// moves the state machine, builds the event and hands it to the Sink before
// releasing the lock. Sink.Publish never blocks (events.Queue takes its own
// short lock), so holding the shard lock is cheap, and it is what makes
// the events of one call reach the sink in the order the edge reported
// them: call.started always precedes the call.ended of the same call.
//
// # Bounds
//
// At most Options.MaxCalls calls are tracked (default DefaultMaxCalls); a
// new call beyond that is not tracked, publishes nothing and is counted in
// routr_calls_untracked_total. An ended call leaves nothing behind. A call
// whose end the edge never reports (lost BYE) stays tracked until
// MaxDuration ends it, which is why MaxDuration should be set in
// production.
package calls
