package siptest

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Wait is how long call helpers wait for each message.
const Wait = 3 * time.Second

// Call is one call set up through a proxy by test phones.
type Call struct {
	t      testing.TB
	Caller *Phone
	Callee *Phone // nil when the call is not expected to ring anyone
	CallID string
	// Invite is the INVITE as the caller sent it (with credentials).
	Invite *sip.Request
	// Received is the INVITE as the callee got it.
	Received *sip.Request
}

// Dial sends an INVITE from caller to user@caller's domain, expects a
// 407, ACKs it, sends the INVITE again with credentials and, when callee
// is not nil, returns once the callee has the INVITE.
func Dial(t testing.TB, caller, callee *Phone, user, callID string) *Call {
	t.Helper()
	inv := caller.NewRequest(sip.INVITE, "sip:"+user+"@"+caller.Domain, callID)
	inv.AppendHeader(sip.NewHeader("X-Room-Id", "room-7"))
	if err := caller.Send(inv); err != nil {
		t.Fatal(err)
	}
	ch, err := caller.Response(sip.INVITE, Wait)
	if err != nil {
		t.Fatal(err)
	}
	if ch.StatusCode != 407 {
		t.Fatalf("INVITE without credentials: %d, want 407", ch.StatusCode)
	}
	if ch.GetHeader("Proxy-Authenticate") == nil {
		t.Fatal("407 without Proxy-Authenticate")
	}
	_ = caller.Send(AckFor(inv, ch))
	authd, err := caller.Authorize(inv, ch, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := caller.Send(authd); err != nil {
		t.Fatal(err)
	}
	c := &Call{t: t, Caller: caller, Callee: callee, CallID: callID, Invite: authd}
	if callee != nil {
		got, err := callee.Request(sip.INVITE, Wait)
		if err != nil {
			t.Fatal(err)
		}
		c.Received = got
	}
	return c
}

// AckFor builds the ACK of a non-2xx final response to inv (same branch).
func AckFor(inv *sip.Request, res *sip.Response) *sip.Request {
	ack := sip.NewRequest(sip.ACK, inv.Recipient)
	ack.AppendHeader(sip.HeaderClone(inv.Via()))
	mf := sip.MaxForwardsHeader(70)
	ack.AppendHeader(&mf)
	ack.AppendHeader(sip.HeaderClone(inv.From()))
	ack.AppendHeader(sip.HeaderClone(res.To()))
	ack.AppendHeader(sip.HeaderClone(inv.CallID()))
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.ACK})
	ack.SetBody(nil)
	return ack
}

// CancelFor builds the CANCEL of inv.
func CancelFor(inv *sip.Request) *sip.Request {
	c := sip.NewRequest(sip.CANCEL, inv.Recipient)
	c.AppendHeader(sip.HeaderClone(inv.Via()))
	mf := sip.MaxForwardsHeader(70)
	c.AppendHeader(&mf)
	c.AppendHeader(sip.HeaderClone(inv.From()))
	c.AppendHeader(sip.HeaderClone(inv.To()))
	c.AppendHeader(sip.HeaderClone(inv.CallID()))
	c.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	c.SetBody(nil)
	return c
}

// Answer has the callee answer 180 then 200 and the caller ACK; it returns
// the 200 the caller saw.
func (c *Call) Answer() *sip.Response {
	t := c.t
	t.Helper()
	_ = c.Callee.Send(c.Callee.Reply(c.Received, 180, "Ringing"))
	r180, err := c.Caller.Response(sip.INVITE, Wait)
	if err != nil {
		t.Fatal(err)
	}
	if r180.StatusCode != 180 {
		t.Fatalf("caller got %d, want 180", r180.StatusCode)
	}
	_ = c.Callee.Send(c.Callee.Reply(c.Received, 200, "OK"))
	ok, err := c.Caller.Response(sip.INVITE, Wait)
	if err != nil {
		t.Fatal(err)
	}
	if ok.StatusCode != 200 {
		t.Fatalf("caller got %d, want 200", ok.StatusCode)
	}
	ack := c.Caller.InDialog(sip.ACK, c.Invite, ok, true, c.Invite.CSeq().SeqNo)
	if err := c.Caller.Send(ack); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Callee.Request(sip.ACK, Wait); err != nil {
		t.Fatal(err)
	}
	return ok
}

// Hangup sends a BYE from the caller (fromCaller) or the callee, has the
// other side answer 200, and checks that the sender gets that 200.
func (c *Call) Hangup(ok *sip.Response, fromCaller bool) {
	t := c.t
	t.Helper()
	from, to := c.Caller, c.Callee
	var bye *sip.Request
	if fromCaller {
		bye = from.InDialog(sip.BYE, c.Invite, ok, true, c.Invite.CSeq().SeqNo+1)
	} else {
		from, to = c.Callee, c.Caller
		bye = from.InDialog(sip.BYE, c.Received, ok, false, 1)
	}
	bye.AppendHeader(sip.NewHeader("X-Reason", "done"))
	_ = from.Send(bye)
	got, err := to.Request(sip.BYE, Wait)
	if err != nil {
		t.Fatal(err)
	}
	_ = to.Send(to.Reply(got, 200, "OK"))
	res, err := from.Response(sip.BYE, Wait)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("BYE answered %v %v", res, err)
	}
}

// Cancel has the caller cancel a ringing call and the callee answer 200
// and 487; it checks what the caller gets back.
func (c *Call) Cancel() {
	t := c.t
	t.Helper()
	_ = c.Caller.Send(CancelFor(c.Invite))
	got, err := c.Callee.Request(sip.CANCEL, Wait)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Callee.Send(c.Callee.Reply(got, 200, "OK"))
	_ = c.Callee.Send(c.Callee.Reply(c.Received, 487, "Request Terminated"))
	if r, err := c.Caller.Response(sip.CANCEL, Wait); err != nil || r.StatusCode != 200 {
		t.Fatalf("CANCEL answered %v %v", r, err)
	}
	if r, err := c.Caller.Response(sip.INVITE, Wait); err != nil || r.StatusCode != 487 {
		t.Fatalf("INVITE after CANCEL answered %v %v", r, err)
	}
}
