package edge

import (
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/routr-go/routr/internal/events"
	"github.com/routr-go/routr/internal/siptest"
)

const wait = 3 * time.Second

// call is one call set up through the edge by test phones.
type call struct {
	t        *testing.T
	caller   *siptest.Phone
	callee   *siptest.Phone
	callID   string
	invite   *sip.Request // as the caller sent it (authenticated)
	received *sip.Request // as the callee got it
}

// dial sends an INVITE from caller to the user calleeUser, answers the
// 407, and returns once the callee (if any) has the INVITE.
func dial(t *testing.T, caller, callee *siptest.Phone, calleeUser, callID string) *call {
	t.Helper()
	inv := caller.NewRequest(sip.INVITE, "sip:"+calleeUser+"@sip.local", callID)
	inv.AppendHeader(sip.NewHeader("X-Room-Id", "room-7"))
	if err := caller.Send(inv); err != nil {
		t.Fatal(err)
	}
	ch, err := caller.Response(sip.INVITE, wait)
	if err != nil {
		t.Fatal(err)
	}
	if ch.StatusCode != 407 {
		t.Fatalf("INVITE without credentials: %d, want 407", ch.StatusCode)
	}
	if ch.GetHeader("Proxy-Authenticate") == nil {
		t.Fatal("407 without Proxy-Authenticate")
	}
	ack := sip.NewRequest(sip.ACK, inv.Recipient)
	ack.AppendHeader(sip.HeaderClone(inv.Via()))
	mf := sip.MaxForwardsHeader(70)
	ack.AppendHeader(&mf)
	ack.AppendHeader(sip.HeaderClone(inv.From()))
	ack.AppendHeader(sip.HeaderClone(ch.To()))
	ack.AppendHeader(sip.HeaderClone(inv.CallID()))
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.ACK})
	ack.SetBody(nil)
	_ = caller.Send(ack)

	authd, err := caller.Authorize(inv, ch, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := caller.Send(authd); err != nil {
		t.Fatal(err)
	}
	c := &call{t: t, caller: caller, callee: callee, callID: callID, invite: authd}
	if callee != nil {
		got, err := callee.Request(sip.INVITE, wait)
		if err != nil {
			t.Fatal(err)
		}
		c.received = got
	}
	return c
}

// answer has the callee answer 180 then 200, and the caller ACK; it
// returns the 200 the caller saw.
func (c *call) answer() *sip.Response {
	t := c.t
	t.Helper()
	_ = c.callee.Send(c.callee.Reply(c.received, 180, "Ringing"))
	r180, err := c.caller.Response(sip.INVITE, wait)
	if err != nil {
		t.Fatal(err)
	}
	if r180.StatusCode != 180 {
		t.Fatalf("caller got %d, want 180", r180.StatusCode)
	}
	_ = c.callee.Send(c.callee.Reply(c.received, 200, "OK"))
	ok, err := c.caller.Response(sip.INVITE, wait)
	if err != nil {
		t.Fatal(err)
	}
	if ok.StatusCode != 200 {
		t.Fatalf("caller got %d, want 200", ok.StatusCode)
	}
	ack := c.caller.InDialog(sip.ACK, c.invite, ok, true, c.invite.CSeq().SeqNo)
	if err := c.caller.Send(ack); err != nil {
		t.Fatal(err)
	}
	if _, err := c.callee.Request(sip.ACK, wait); err != nil {
		t.Fatal(err)
	}
	return ok
}

func (te *testEdge) wantEvents(t *testing.T, callID string, want ...string) {
	t.Helper()
	waitFor(t, "events "+strings.Join(want, ","), func() bool {
		return reflect.DeepEqual(te.rec.byCall(callID), want)
	})
}

func TestCallAnsweredCallerHangsUp(t *testing.T) {
	te := startEdge(t)
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			a := te.phone(t, transport, "1001")
			b := te.phone(t, transport, "1002")
			mustRegister(t, b)
			c := dial(t, a, b, "1002", "call-caller-bye-"+transport)

			in := c.received
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

			ok := c.answer()
			if len(ok.GetHeaders("Record-Route")) == 0 {
				t.Fatal("200 reached the caller without Record-Route")
			}
			bye := a.InDialog(sip.BYE, c.invite, ok, true, c.invite.CSeq().SeqNo+1)
			bye.AppendHeader(sip.NewHeader("X-Reason", "done"))
			_ = a.Send(bye)
			gotBye, err := b.Request(sip.BYE, wait)
			if err != nil {
				t.Fatal(err)
			}
			_ = b.Send(b.Reply(gotBye, 200, "OK"))
			res, err := a.Response(sip.BYE, wait)
			if err != nil || res.StatusCode != 200 {
				t.Fatalf("BYE answered %v %v", res, err)
			}
			te.wantEvents(t, c.callID, events.TypeCallStarted, events.TypeCallAnswered, events.TypeCallEnded)
			ended := te.rec.find(events.TypeCallEnded, "callId", c.callID)
			if ended["hangupCause"] != "NORMAL_CLEARING" {
				t.Fatalf("hangupCause %v", ended["hangupCause"])
			}
			started := te.rec.find(events.TypeCallStarted, "callId", c.callID)
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
	c := dial(t, a, b, "1002", "call-callee-bye")
	ok := c.answer()

	// re-INVITE from the caller: routed without a new challenge.
	re := a.InDialog(sip.INVITE, c.invite, ok, true, c.invite.CSeq().SeqNo+1)
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
	_ = a.Send(a.InDialog(sip.ACK, c.invite, ok, true, c.invite.CSeq().SeqNo+1))
	if _, err := b.Request(sip.ACK, wait); err != nil {
		t.Fatal(err)
	}

	// BYE from the callee.
	bye := b.InDialog(sip.BYE, c.received, ok, false, 1)
	_ = b.Send(bye)
	gotBye, err := a.Request(sip.BYE, wait)
	if err != nil {
		t.Fatal(err)
	}
	_ = a.Send(a.Reply(gotBye, 200, "OK"))
	if res, err := b.Response(sip.BYE, wait); err != nil || res.StatusCode != 200 {
		t.Fatalf("callee's BYE answered %v %v", res, err)
	}
	te.wantEvents(t, c.callID, events.TypeCallStarted, events.TypeCallAnswered, events.TypeCallEnded)
}

func TestCallCancelled(t *testing.T) {
	te := startEdge(t)
	a := te.phone(t, "udp", "1001")
	b := te.phone(t, "udp", "1002")
	mustRegister(t, b)
	c := dial(t, a, b, "1002", "call-cancel")
	_ = b.Send(b.Reply(c.received, 180, "Ringing"))
	if r, err := a.Response(sip.INVITE, wait); err != nil || r.StatusCode != 180 {
		t.Fatalf("want 180, got %v %v", r, err)
	}
	cancel := sip.NewRequest(sip.CANCEL, c.invite.Recipient)
	cancel.AppendHeader(sip.HeaderClone(c.invite.Via()))
	mf := sip.MaxForwardsHeader(70)
	cancel.AppendHeader(&mf)
	cancel.AppendHeader(sip.HeaderClone(c.invite.From()))
	cancel.AppendHeader(sip.HeaderClone(c.invite.To()))
	cancel.AppendHeader(sip.HeaderClone(c.invite.CallID()))
	cancel.AppendHeader(&sip.CSeqHeader{SeqNo: c.invite.CSeq().SeqNo, MethodName: sip.CANCEL})
	cancel.SetBody(nil)
	_ = a.Send(cancel)

	gotCancel, err := b.Request(sip.CANCEL, wait)
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Send(b.Reply(gotCancel, 200, "OK"))
	_ = b.Send(b.Reply(c.received, 487, "Request Terminated"))
	if r, err := a.Response(sip.CANCEL, wait); err != nil || r.StatusCode != 200 {
		t.Fatalf("CANCEL answered %v %v", r, err)
	}
	if r, err := a.Response(sip.INVITE, wait); err != nil || r.StatusCode != 487 {
		t.Fatalf("INVITE after CANCEL answered %v %v", r, err)
	}
	te.wantEvents(t, c.callID, events.TypeCallStarted, events.TypeCallEnded)
	if e := te.rec.find(events.TypeCallEnded, "callId", c.callID); e["hangupCause"] != "NORMAL_CLEARING" {
		t.Fatalf("cancelled call ended with %v", e["hangupCause"])
	}
}

func TestCallDeclined(t *testing.T) {
	te := startEdge(t)
	a := te.phone(t, "udp", "1001")
	b := te.phone(t, "udp", "1002")
	mustRegister(t, b)
	c := dial(t, a, b, "1002", "call-busy")
	_ = b.Send(b.Reply(c.received, 486, "Busy Here"))
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
	te.wantEvents(t, c.callID, events.TypeCallStarted, events.TypeCallEnded)
	if e := te.rec.find(events.TypeCallEnded, "callId", c.callID); e["hangupCause"] != "USER_BUSY" {
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
			c := dial(t, a, nil, tc.user, "call-"+tc.user)
			r, err := a.Response(sip.INVITE, wait)
			if err != nil || r.StatusCode != tc.want {
				t.Fatalf("got %v %v, want %d", r, err, tc.want)
			}
			time.Sleep(50 * time.Millisecond)
			if evs := te.rec.byCall(c.callID); len(evs) != 0 {
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
	c := dial(t, a, nil, "1002", "call-wrong-pass")
	r, err := a.Response(sip.INVITE, wait)
	if err != nil || r.StatusCode != 403 {
		t.Fatalf("got %v %v, want 403", r, err)
	}
	if _, err := b.Request(sip.INVITE, 200*time.Millisecond); err == nil {
		t.Fatal("callee rang for an unauthenticated caller")
	}
	if evs := te.rec.byCall(c.callID); len(evs) != 0 {
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
	c := dial(t, a, b, "1002", "call-nat")
	if c.received.Recipient.Host != "10.99.99.99" {
		t.Fatalf("Request-URI should stay the registered contact, got %s", c.received.Recipient.String())
	}
	ok := c.answer()
	// The callee's Contact in the 200 points where the 200 came from, so
	// the caller's BYE reaches it through the edge.
	if ok.Contact().Address.Host != "127.0.0.1" || ok.Contact().Address.Port != b.Port() {
		t.Fatalf("200 Contact not fixed for NAT: %s", ok.Contact().Address.String())
	}
	_ = a.Send(a.InDialog(sip.BYE, c.invite, ok, true, c.invite.CSeq().SeqNo+1))
	gotBye, err := b.Request(sip.BYE, wait)
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Send(b.Reply(gotBye, 200, "OK"))
	if r, err := a.Response(sip.BYE, wait); err != nil || r.StatusCode != 200 {
		t.Fatalf("BYE answered %v %v", r, err)
	}
}

func TestForkToEveryContact(t *testing.T) {
	te := startEdge(t)
	a := te.phone(t, "udp", "1001")
	desk := te.phone(t, "udp", "1002")
	mobile := te.phone(t, "tcp", "1002")
	mustRegister(t, desk)
	mustRegister(t, mobile)
	c := dial(t, a, nil, "1002", "call-fork")
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
	te.wantEvents(t, c.callID, events.TypeCallStarted, events.TypeCallAnswered)
}

func TestCalleeUnreachable(t *testing.T) {
	te := startEdge(t)
	a := te.phone(t, "udp", "1001")
	b := te.phone(t, "tcp", "1002")
	mustRegister(t, b)
	b.Close() // its connection, and so its binding's address, is gone
	time.Sleep(50 * time.Millisecond)
	c := dial(t, a, nil, "1002", "call-unreachable")
	r, err := a.Response(sip.INVITE, wait)
	if err != nil || r.StatusCode != 503 {
		t.Fatalf("got %v %v, want 503", r, err)
	}
	te.wantEvents(t, c.callID, events.TypeCallStarted, events.TypeCallEnded)
	if e := te.rec.find(events.TypeCallEnded, "callId", c.callID); e["hangupCause"] != "SERVICE_UNAVAILABLE" {
		t.Fatalf("unreachable callee ended with %v", e["hangupCause"])
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
	c := dial(t, a, b, "1002", "call-timeout") // b never answers
	r, err := a.Response(sip.INVITE, wait)
	if err != nil || r.StatusCode != 408 {
		t.Fatalf("got %v %v, want 408", r, err)
	}
	te.wantEvents(t, c.callID, events.TypeCallStarted, events.TypeCallEnded)
	if e := te.rec.find(events.TypeCallEnded, "callId", c.callID); e["hangupCause"] != "NO_USER_RESPONSE" {
		t.Fatalf("timed out call ended with %v", e["hangupCause"])
	}
}
