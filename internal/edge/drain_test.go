package edge

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/routr-go/routr/internal/siptest"
)

// A draining edge answers new requests 503 with Retry-After and goes on
// serving the call that rang when it started draining: answer, ACK and BYE
// pass, Busy counts the INVITE until its answer and the dialog until its
// ACK.
func TestDrain(t *testing.T) {
	te := startEdge(t)
	caller := te.phone(t, "udp", "1001")
	callee := te.phone(t, "udp", "1002")
	mustRegister(t, callee)

	c := siptest.Dial(t, caller, callee, "1002", "drain-ringing")
	_ = callee.Send(callee.Reply(c.Received, 180, "Ringing"))
	if r, err := caller.Response(sip.INVITE, siptest.Wait); err != nil || r.StatusCode != 180 {
		t.Fatalf("want 180: %v %v", r, err)
	}
	if req, _ := te.srv.Busy(); req != 1 {
		t.Fatalf("Busy requests = %d with one call ringing, want 1", req)
	}

	te.srv.Drain(1500 * time.Millisecond)
	if !te.srv.Draining() {
		t.Fatal("Draining() = false after Drain")
	}
	other := te.phone(t, "udp", "1003")
	for _, m := range []sip.RequestMethod{sip.INVITE, sip.REGISTER, sip.OPTIONS, sip.MESSAGE} {
		req := other.NewRequest(m, "sip:1002@sip.local", "drain-new-"+string(m))
		if err := other.Send(req); err != nil {
			t.Fatal(err)
		}
		res, err := other.Response(m, siptest.Wait)
		if err != nil {
			t.Fatalf("%s while draining: %v", m, err)
		}
		if res.StatusCode != 503 {
			t.Fatalf("%s while draining: %d, want 503", m, res.StatusCode)
		}
		if ra := res.GetHeader("Retry-After"); ra == nil || ra.Value() != "2" {
			t.Fatalf("%s while draining: Retry-After %v, want 2", m, ra)
		}
		if m == sip.INVITE {
			_ = other.Send(siptest.AckFor(req, res))
		}
	}
	if n := te.srv.Refused(); n != 4 {
		t.Fatalf("Refused = %d, want 4", n)
	}

	// The ringing call completes.
	_ = callee.Send(callee.Reply(c.Received, 200, "OK"))
	ok, err := caller.Response(sip.INVITE, siptest.Wait)
	if err != nil || ok.StatusCode != 200 {
		t.Fatalf("200 while draining: %v %v", ok, err)
	}
	waitFor(t, "the INVITE to leave the edge", func() bool { req, _ := te.srv.Busy(); return req == 0 })
	_ = caller.Send(caller.InDialog(sip.ACK, c.Invite, ok, true, c.Invite.CSeq().SeqNo))
	if _, err := callee.Request(sip.ACK, siptest.Wait); err != nil {
		t.Fatalf("ACK while draining: %v", err)
	}
	waitFor(t, "the ACK to pass", func() bool { _, acks := te.srv.Busy(); return acks == 0 })
	c.Hangup(ok, false)
	waitFor(t, "call.ended", func() bool {
		got := te.rec.byCall("drain-ringing")
		return len(got) == 3 && got[2] == "call.ended"
	})
	if got := te.rec.byCall("drain-new-INVITE"); len(got) != 0 {
		t.Fatalf("a refused INVITE published %v", got)
	}
}
