package edge

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/routr-go/routr/internal/siptest"
)

// waitCount polls c until it reaches want (the edge handles each
// message on its own goroutine).
func waitCount(t *testing.T, what string, c prometheus.Counter, want float64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for testutil.ToFloat64(c) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", what, testutil.ToFloat64(c), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The INVITE's client transaction ends when the caller's ACK passes and
// the BYE's at its final response, not SIP_TRANSACTION_LINGER or Timer K
// later: a 2xx the callee sends again after the ACK (its ACK lost) still
// reaches the caller, relayed statelessly by its Via; a retransmitted
// answer to the BYE is dropped.
func TestTransactionsEndAtAckAndFinal(t *testing.T) {
	te := startEdge(t)
	a := te.phone(t, "udp", "1001")
	b := te.phone(t, "udp", "1002")
	mustRegister(t, b)
	c := siptest.Dial(t, a, b, "1002", "call-stray")
	ok := c.Answer() // 180, 200 and the ACK, delivered to the callee
	m := te.srv.metrics

	_ = b.Send(b.Reply(c.Received, 200, "OK"))
	again, err := a.Response(sip.INVITE, wait)
	if err != nil || again.StatusCode != 200 {
		t.Fatalf("retransmitted 200 after the ACK: caller got %v %v", again, err)
	}
	if n := len(again.GetHeaders("Via")); n != 1 {
		t.Fatalf("relayed 200 has %d Vias, want the caller's only", n)
	}
	waitCount(t, "stray 2xx relayed", m.strayRelayed, 1)

	bye := a.InDialog(sip.BYE, c.Invite, ok, true, c.Invite.CSeq().SeqNo+1)
	_ = a.Send(bye)
	got, err := b.Request(sip.BYE, wait)
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Send(b.Reply(got, 200, "OK"))
	if res, err := a.Response(sip.BYE, wait); err != nil || res.StatusCode != 200 {
		t.Fatalf("BYE answered %v %v", res, err)
	}
	_ = b.Send(b.Reply(got, 200, "OK"))
	waitCount(t, "stray responses dropped", m.strayDropped, 1)
	if res, err := a.Response(sip.BYE, 200*time.Millisecond); err == nil {
		t.Fatalf("caller got a second answer to its BYE: %v", res.StartLine())
	}
}

// The INVITE's server transaction ends T1 after the caller's ACK passes,
// not at Timer L (32 s here, SIP_TRANSACTION_LINGER in routr): held that
// long, answered transactions were most of the heap under call load
// (193 MB of live heap at 5,000 calls/s, 40 MB without). The call is
// challenged first: that INVITE's transaction, answered 407, ends at
// Timer I after its ACK (T4 here, at most T1 in routr).
func TestInviteServerTransactionEndsAfterAck(t *testing.T) {
	te := startEdge(t)
	a := te.phone(t, "udp", "1001")
	b := te.phone(t, "udp", "1002")
	mustRegister(t, b)
	c := siptest.Dial(t, a, b, "1002", "call-invite-ends")
	c.Answer() // 180, 200 and the ACK, delivered to the callee
	alive := &te.srv.limits.alive
	within := max(sip.T1, sip.Timer_I) + 2*time.Second
	deadline := time.Now().Add(within)
	for alive.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d server transactions alive %v after the ACK, want 0 (Timer L %v)", alive.Load(), within, sip.Timer_L)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
