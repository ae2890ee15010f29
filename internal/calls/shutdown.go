package calls

import "github.com/routr-go/routr/internal/events"

// CauseShutdown is the hangupCause of a call still up when the edge
// stopped (FreeSWITCH's name for the same thing).
const CauseShutdown = events.CauseSystemShutdown

// EndAll ends every call still tracked, answered or not, with hangupCause
// SYSTEM_SHUTDOWN and sipCode 0, and returns how many it ended. A stopping
// edge calls it once SIP has stopped, so that every call.started it
// published has its call.ended: the edge no longer follows these calls,
// even if their media, or another edge, carries on with them. Reports
// about them that come later publish nothing (unknown call).
func (t *Tracker) EndAll() int {
	ended := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		now := t.now()
		for id, c := range sh.calls {
			t.finish(sh, id, c, CauseShutdown, 0, nil, now)
			ended++
		}
		sh.mu.Unlock()
	}
	return ended
}
