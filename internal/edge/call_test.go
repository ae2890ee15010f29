package edge

import (
	"os"
	"os/exec"
	"reflect"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/routr-go/routr/internal/events"
	"github.com/routr-go/routr/internal/siptest"
)

const wait = siptest.Wait

func (te *testEdge) wantEvents(t *testing.T, callID string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		got := te.rec.byCall(callID)
		if reflect.DeepEqual(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events of %s: got %v, want %v", callID, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCallAnsweredCallerHangsUp(t *testing.T) {
	te := startEdge(t)
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			a := te.phone(t, transport, "1001")
			b := te.phone(t, transport, "1002")
			mustRegister(t, b)
			c := siptest.Dial(t, a, b, "1002", "call-caller-bye-"+transport)

			in := c.Received
			if h := in.GetHeader("X-Call-Direction"); h == nil || h.Value() != "agent-to-agent" {
				t.Fatalf("X-Call-Direction = %v", h)
			}
			if in.GetHeader("Proxy-Authorization") != nil {
				t.Fatal("credentials forwarded to the callee")
			}
			if len(in.GetHeaders("Via")) != 2 {
				t.Fatalf("callee sees %d Vias, want 2", len(in.GetHeaders("Via")))
			}
			rr := in.RecordRoute()
			if rr == nil || !rr.Address.UriParams.Has("lr") {
				t.Fatalf("no loose Record-Route: %v", rr)
			}
			if in.MaxForwards().Val() != 69 {
				t.Fatalf("Max-Forwards = %d, want 69", in.MaxForwards().Val())
			}
			if in.Recipient.Host != "127.0.0.1" {
				t.Fatalf("Request-URI not the callee's contact: %s", in.Recipient.String())
			}

			ok := c.Answer()
			if len(ok.GetHeaders("Record-Route")) == 0 {
				t.Fatal("200 reached the caller without Record-Route")
			}
			c.Hangup(ok, true)
			te.wantEvents(t, c.CallID, events.TypeCallStarted, events.TypeCallAnswered, events.TypeCallEnded)
			ended := te.rec.find(events.TypeCallEnded, "callId", c.CallID)
			if ended["hangupCause"] != "NORMAL_CLEARING" {
				t.Fatalf("hangupCause %v", ended["hangupCause"])
			}
			started := te.rec.find(events.TypeCallStarted, "callId", c.CallID)
			if started["from"] != "sip:1001@sip.local" || started["to"] != "sip:1002@sip.local" {
				t.Fatalf("call.started from/to: %v %v", started["from"], started["to"])
			}
			if xh, _ := started["extraHeaders"].(map[string]any); xh["X-Room-Id"] != "room-7" {
				t.Fatalf("call.started extraHeaders: %v", started["extraHeaders"])
			}
		})
	}
}

func TestCallCalleeHangsUpAndReInvite(t *testing.T) {
	te := startEdge(t)
	a := te.phone(t, "udp", "1001")
	b := te.phone(t, "udp", "1002")
	mustRegister(t, b)
	c := siptest.Dial(t, a, b, "1002", "call-callee-bye")
	ok := c.Answer()

	// re-INVITE from the caller: routed without a new challenge.
	re := a.InDialog(sip.INVITE, c.Invite, ok, true, c.Invite.CSeq().SeqNo+1)
	_ = a.Send(re)
	gotRe, err := b.Request(sip.INVITE, wait)
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Send(b.Reply(gotRe, 200, "OK"))
	reOK, err := a.Response(sip.INVITE, wait)
	if err != nil || reOK.StatusCode != 200 {
		t.Fatalf("re-INVITE answered %v %v", reOK, err)
	}
	_ = a.Send(a.InDialog(sip.ACK, c.Invite, ok, true, c.Invite.CSeq().SeqNo+1))
	if _, err := b.Request(sip.ACK, wait); err != nil {
		t.Fatal(err)
	}

	c.Hangup(ok, false) // from the callee
	te.wantEvents(t, c.CallID, events.TypeCallStarted, events.TypeCallAnswered, events.TypeCallEnded)
}

func TestCallCancelled(t *testing.T) {
	te := startEdge(t)
	a := te.phone(t, "udp", "1001")
	b := te.phone(t, "udp", "1002")
	mustRegister(t, b)
	c := siptest.Dial(t, a, b, "1002", "call-cancel")
	_ = b.Send(b.Reply(c.Received, 180, "Ringing"))
	if r, err := a.Response(sip.INVITE, wait); err != nil || r.StatusCode != 180 {
		t.Fatalf("want 180, got %v %v", r, err)
	}
	c.Cancel()
	te.wantEvents(t, c.CallID, events.TypeCallStarted, events.TypeCallEnded)
	if e := te.rec.find(events.TypeCallEnded, "callId", c.CallID); e["hangupCause"] != "NORMAL_CLEARING" {
		t.Fatalf("cancelled call ended with %v", e["hangupCause"])
	}
}

func TestCallDeclined(t *testing.T) {
	te := startEdge(t)
	a := te.phone(t, "udp", "1001")
	b := te.phone(t, "udp", "1002")
	mustRegister(t, b)
	c := siptest.Dial(t, a, b, "1002", "call-busy")
	_ = b.Send(b.Reply(c.Received, 486, "Busy Here"))
	r, err := a.Response(sip.INVITE, wait)
	if err != nil || r.StatusCode != 486 {
		t.Fatalf("caller got %v %v, want 486", r, err)
	}
	if len(r.GetHeaders("Via")) != 1 {
		t.Fatalf("relayed 486 has %d Vias, want the caller's only", len(r.GetHeaders("Via")))
	}
	// The edge ACKs the 486 downstream itself.
	if _, err := b.Request(sip.ACK, wait); err != nil {
		t.Fatal(err)
	}
	te.wantEvents(t, c.CallID, events.TypeCallStarted, events.TypeCallEnded)
	if e := te.rec.find(events.TypeCallEnded, "callId", c.CallID); e["hangupCause"] != "USER_BUSY" {
		t.Fatalf("486 ended with %v", e["hangupCause"])
	}
}

func TestCallRejectedByEdge(t *testing.T) {
	te := startEdge(t)
	a := te.phone(t, "udp", "1001")
	cases := []struct {
		name, user string
		want       int
	}{
		{"unregistered agent", "1003", 480},
		{"unknown user", "7777", 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := siptest.Dial(t, a, nil, tc.user, "call-"+tc.user)
			r, err := a.Response(sip.INVITE, wait)
			if err != nil || r.StatusCode != tc.want {
				t.Fatalf("got %v %v, want %d", r, err, tc.want)
			}
			time.Sleep(50 * time.Millisecond)
			if evs := te.rec.byCall(c.CallID); len(evs) != 0 {
				t.Fatalf("a call the edge refused published %v", evs)
			}
		})
	}
}

func TestCallWrongPassword(t *testing.T) {
	te := startEdge(t)
	b := te.phone(t, "udp", "1002")
	mustRegister(t, b)
	a, err := siptest.NewPhone("udp", "1001", "sip.local", "wrong", te.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c := siptest.Dial(t, a, nil, "1002", "call-wrong-pass")
	r, err := a.Response(sip.INVITE, wait)
	if err != nil || r.StatusCode != 403 {
		t.Fatalf("got %v %v, want 403", r, err)
	}
	if _, err := b.Request(sip.INVITE, 200*time.Millisecond); err == nil {
		t.Fatal("callee rang for an unauthenticated caller")
	}
	if evs := te.rec.byCall(c.CallID); len(evs) != 0 {
		t.Fatalf("published %v", evs)
	}
}

func TestInDialogWithoutOurRouteIsRefused(t *testing.T) {
	te := startEdge(t)
	a := te.phone(t, "udp", "1001")
	bye := a.NewRequest(sip.BYE, "sip:1002@127.0.0.1:9", "forged")
	bye.To().Params.Add("tag", "x")
	forged := &sip.RouteHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: int(te.srv.Addr("udp").Port()), UriParams: sip.NewParams()}}
	forged.Address.UriParams.Add("lr", "")
	forged.Address.UriParams.Add("rt", "forged")
	bye.PrependHeader(forged)
	_ = a.Send(bye)
	r, err := a.Response(sip.BYE, wait)
	if err != nil || r.StatusCode != 403 {
		t.Fatalf("forged in-dialog request got %v %v, want 403", r, err)
	}
}

func TestCalleeBehindNAT(t *testing.T) {
	te := startEdge(t)
	a := te.phone(t, "udp", "1001")
	b := te.phone(t, "udp", "1002")
	b.ContactAddr = "10.99.99.99:5060" // what the phone thinks it is
	mustRegister(t, b)
	c := siptest.Dial(t, a, b, "1002", "call-nat")
	if c.Received.Recipient.Host != "10.99.99.99" {
		t.Fatalf("Request-URI should stay the registered contact, got %s", c.Received.Recipient.String())
	}
	ok := c.Answer()
	// The callee's Contact in the 200 points where the 200 came from, so
	// the caller's BYE reaches it through the edge.
	if ok.Contact().Address.Host != "127.0.0.1" || ok.Contact().Address.Port != b.Port() {
		t.Fatalf("200 Contact not fixed for NAT: %s", ok.Contact().Address.String())
	}
	c.Hangup(ok, true)
}

func TestForkToEveryContact(t *testing.T) {
	te := startEdge(t)
	a := te.phone(t, "udp", "1001")
	desk := te.phone(t, "udp", "1002")
	mobile := te.phone(t, "tcp", "1002")
	mustRegister(t, desk)
	mustRegister(t, mobile)
	c := siptest.Dial(t, a, nil, "1002", "call-fork")
	deskInv, err := desk.Request(sip.INVITE, wait)
	if err != nil {
		t.Fatal(err)
	}
	mobInv, err := mobile.Request(sip.INVITE, wait)
	if err != nil {
		t.Fatal(err)
	}
	// Crossing from UDP to TCP doubles the Record-Route (RFC 5658).
	if n := len(mobInv.GetHeaders("Record-Route")); n != 2 {
		t.Fatalf("UDP->TCP branch has %d Record-Route, want 2", n)
	}
	if n := len(deskInv.GetHeaders("Record-Route")); n != 1 {
		t.Fatalf("UDP->UDP branch has %d Record-Route, want 1", n)
	}
	_ = desk.Send(desk.Reply(deskInv, 180, "Ringing"))
	_ = mobile.Send(mobile.Reply(mobInv, 180, "Ringing"))
	_ = mobile.Send(mobile.Reply(mobInv, 200, "OK"))
	// The desk phone is cancelled once the mobile answers.
	cancel, err := desk.Request(sip.CANCEL, wait)
	if err != nil {
		t.Fatal(err)
	}
	_ = desk.Send(desk.Reply(cancel, 200, "OK"))
	_ = desk.Send(desk.Reply(deskInv, 487, "Request Terminated"))
	for {
		r, err := a.Response(sip.INVITE, wait)
		if err != nil {
			t.Fatal(err)
		}
		if r.StatusCode == 180 {
			continue
		}
		if r.StatusCode != 200 {
			t.Fatalf("caller got %d, want the mobile's 200", r.StatusCode)
		}
		break
	}
	te.wantEvents(t, c.CallID, events.TypeCallStarted, events.TypeCallAnswered)
}

func TestCalleeUnreachable(t *testing.T) {
	te := startEdge(t)
	a := te.phone(t, "udp", "1001")
	b := te.phone(t, "tcp", "1002")
	mustRegister(t, b)
	b.Close() // its connection, and so its binding's address, is gone
	time.Sleep(50 * time.Millisecond)
	// A binding whose connection closed is no longer offered: the callee
	// has no usable binding, as if it had never registered.
	c := siptest.Dial(t, a, nil, "1002", "call-unreachable")
	r, err := a.Response(sip.INVITE, wait)
	if err != nil || r.StatusCode != 480 {
		t.Fatalf("got %v %v, want 480", r, err)
	}
	if evs := te.rec.byCall(c.CallID); len(evs) != 0 {
		t.Fatalf("events for a call that never left the edge: %v", evs)
	}
}

func TestCalleeNeverAnswers(t *testing.T) {
	// Timer B is 64*T1 and sipgo's timers are process-wide: run this test
	// in a child process whose T1 is 10 ms, so the INVITE times out in
	// ~0.6 s without touching the timers of the other tests.
	if os.Getenv("EDGE_SHORT_TIMERS") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCalleeNeverAnswers$", "-test.count=1")
		cmd.Env = append(os.Environ(), "EDGE_SHORT_TIMERS=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return
	}
	sip.SetTimers(10*time.Millisecond, 40*time.Millisecond, 50*time.Millisecond)
	te := startEdge(t)
	a := te.phone(t, "udp", "1001")
	b := te.phone(t, "udp", "1002")
	mustRegister(t, b)
	c := siptest.Dial(t, a, b, "1002", "call-timeout") // b never answers
	r, err := a.Response(sip.INVITE, wait)
	if err != nil || r.StatusCode != 408 {
		t.Fatalf("got %v %v, want 408", r, err)
	}
	te.wantEvents(t, c.CallID, events.TypeCallStarted, events.TypeCallEnded)
	if e := te.rec.find(events.TypeCallEnded, "callId", c.CallID); e["hangupCause"] != "NO_USER_RESPONSE" {
		t.Fatalf("timed out call ended with %v", e["hangupCause"])
	}
}

func TestCancelRacingAnswer(t *testing.T) {
	te := startEdge(t)
	a := te.phone(t, "udp", "1001")
	b := te.phone(t, "udp", "1002")
	mustRegister(t, b)
	c := siptest.Dial(t, a, b, "1002", "call-cancel-race")
	_ = b.Send(b.Reply(c.Received, 180, "Ringing"))
	if r, err := a.Response(sip.INVITE, wait); err != nil || r.StatusCode != 180 {
		t.Fatalf("want 180: %v %v", r, err)
	}
	_ = a.Send(siptest.CancelFor(c.Invite))
	if r, err := a.Response(sip.CANCEL, wait); err != nil || r.StatusCode != 200 {
		t.Fatalf("CANCEL answered %v %v", r, err)
	}
	// The callee answers anyway, crossing the CANCEL on the wire.
	gotCancel, err := b.Request(sip.CANCEL, wait)
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Send(b.Reply(c.Received, 200, "OK"))
	_ = b.Send(b.Reply(gotCancel, 200, "OK"))
	// The edge ends the callee's leg itself: ACK, then BYE.
	if _, err := b.Request(sip.ACK, wait); err != nil {
		t.Fatal(err)
	}
	bye, err := b.Request(sip.BYE, wait)
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Send(b.Reply(bye, 200, "OK"))
	if r, err := a.Response(sip.INVITE, wait); err != nil || r.StatusCode != 487 {
		t.Fatalf("caller got %v %v, want 487", r, err)
	}
	te.wantEvents(t, c.CallID, events.TypeCallStarted, events.TypeCallEnded)
}

func TestAnswerRetransmissionsRelayed(t *testing.T) {
	te := startEdge(t)
	a := te.phone(t, "udp", "1001")
	b := te.phone(t, "udp", "1002")
	mustRegister(t, b)
	c := siptest.Dial(t, a, b, "1002", "call-2xx-retrans")
	ok := b.Reply(c.Received, 200, "OK")
	_ = b.Send(ok)
	if r, err := a.Response(sip.INVITE, wait); err != nil || r.StatusCode != 200 {
		t.Fatalf("want 200: %v %v", r, err)
	}
	// The caller's ACK is lost; the callee retransmits its 200, which
	// only the proxy can carry back.
	_ = b.Send(ok)
	if r, err := a.Response(sip.INVITE, wait); err != nil || r.StatusCode != 200 {
		t.Fatalf("retransmitted 200 not relayed: %v %v", r, err)
	}
	te.wantEvents(t, c.CallID, events.TypeCallStarted, events.TypeCallAnswered)
}
