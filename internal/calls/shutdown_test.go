package calls

import (
	"fmt"
	"testing"
)

// EndAll ends answered and unanswered calls once each, with
// SYSTEM_SHUTDOWN, and later reports about them publish nothing.
func TestEndAll(t *testing.T) {
	rec := &recorder{}
	tr := NewTracker(Options{Sink: rec})
	for i := range 3 {
		tr.Started(StartInfo{CallID: fmt.Sprint("call-", i), From: "sip:a@b", To: "sip:c@d"})
	}
	tr.Answered("call-0")
	tr.Bye("call-2", 200, nil) // ended before the shutdown
	if n := tr.EndAll(); n != 2 {
		t.Fatalf("EndAll ended %d calls, want 2", n)
	}
	if tr.Active() != 0 {
		t.Fatalf("Active = %d after EndAll", tr.Active())
	}
	tr.Bye("call-0", 200, nil) // too late: nothing more
	tr.Failed("call-1", 486, nil)
	if n := tr.EndAll(); n != 0 {
		t.Fatalf("second EndAll ended %d", n)
	}
	var got []string
	for _, e := range rec.all() {
		got = append(got, summary(t, e))
	}
	want := []string{"call.started", "call.started", "call.started", "call.answered",
		"call.ended NORMAL_CLEARING 200", "call.ended SYSTEM_SHUTDOWN 0", "call.ended SYSTEM_SHUTDOWN 0"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events\n%v\nwant\n%v", got, want)
	}
}
