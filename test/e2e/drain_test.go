package e2e

import (
	"encoding/json"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/routr-go/routr/internal/siptest"
)

// sigterm sends SIGTERM to the edge and waits until it says it drains.
func sigterm(t *testing.T, e *natsEdge) {
	t.Helper()
	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLog(t, e, `"msg":"draining"`)
}

// refusedWhileDraining sends a new INVITE and a REGISTER and expects 503
// with a Retry-After for both.
func refusedWhileDraining(t *testing.T, caller, callee *siptest.Phone) {
	t.Helper()
	inv := caller.NewRequest(sip.INVITE, "sip:1002@sip.local", "e2e-drain-refused")
	if err := caller.Send(inv); err != nil {
		t.Fatal(err)
	}
	res, err := caller.Response(sip.INVITE, siptest.Wait)
	if err != nil {
		t.Fatalf("new INVITE while draining: %v", err)
	}
	_ = caller.Send(siptest.AckFor(inv, res))
	if res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("new INVITE while draining: %d %s (Retry-After %v), want 503 with Retry-After", res.StatusCode, res.Reason, res.GetHeader("Retry-After"))
	}
	if res, err := callee.Register(600, ""); err != nil || res.StatusCode != 503 {
		t.Fatalf("REGISTER while draining: %v %v, want 503", res, err)
	}
}

// TestDrainOnSIGTERM: one call is up and one rings when the edge gets
// SIGTERM. It stops taking new transactions (a new INVITE and a REGISTER
// get 503 with Retry-After, /healthz fails), serves both calls to their
// end (the ringing one is answered, ACKed and hung up; the other is hung
// up by its callee), then exits 0 by itself, well before DRAIN_TIMEOUT,
// with every event of both calls delivered to a NATS subscriber.
func TestDrainOnSIGTERM(t *testing.T) {
	t.Parallel()
	ns := newTestNATS(t, "")
	ns.start(true)
	sub := subscribe(t, ns.url())
	const drainTimeout = 60 * time.Second
	e := startNATSEdge(t, ns.url(), "LOG_LEVEL=info", "DRAIN_TIMEOUT="+drainTimeout.String())
	caller, callee := phones(t, e)

	up := siptest.Dial(t, caller, callee, "1002", "e2e-drain-up")
	upOK := up.Answer()
	ringing := siptest.Dial(t, caller, callee, "1002", "e2e-drain-ringing")
	_ = callee.Send(callee.Reply(ringing.Received, 180, "Ringing"))
	if r, err := caller.Response(sip.INVITE, siptest.Wait); err != nil || r.StatusCode != 180 {
		t.Fatalf("want 180: %v %v", r, err)
	}

	sigterm(t, e)
	refusedWhileDraining(t, caller, callee)
	if res, err := http.Get("http://" + e.httpAddr + "/healthz"); err != nil || res.StatusCode != 503 {
		t.Errorf("/healthz while draining: %v %v, want 503", res, err)
	} else {
		res.Body.Close()
	}

	// The ringing call is answered and hung up by its caller.
	_ = callee.Send(callee.Reply(ringing.Received, 200, "OK"))
	ok, err := caller.Response(sip.INVITE, siptest.Wait)
	if err != nil || ok.StatusCode != 200 {
		t.Fatalf("200 while draining: %v %v", ok, err)
	}
	_ = caller.Send(caller.InDialog(sip.ACK, ringing.Invite, ok, true, ringing.Invite.CSeq().SeqNo))
	if _, err := callee.Request(sip.ACK, siptest.Wait); err != nil {
		t.Fatalf("ACK while draining: %v", err)
	}
	ringing.Hangup(ok, true)
	// The call that was up is hung up by its callee.
	up.Hangup(upOK, false)

	// A guard against a hang: the edge has nothing left and exits long
	// before DRAIN_TIMEOUT.
	if err := e.wait(drainTimeout); err != nil {
		t.Fatalf("edge exit: %v; log:\n%s", err, e.log)
	}
	ids := []string{"e2e-drain-up", "e2e-drain-ringing"}
	first, dups := dedupe(t, sub.waitDistinct(t, 1+eventsPerCall*len(ids)))
	if len(dups) != 0 {
		t.Errorf("duplicates: %v", dups)
	}
	checkEvents(t, first, 1, ids)
	logs := e.log.String()
	if !logHasLine(logs, `"msg":"drained"`, `"refused":2`) || logHasLine(logs, "drain timeout") {
		t.Errorf("log lacks a drained line with 2 refused, or has a drain timeout:\n%s", logs)
	}
}

// TestDrainTimeoutEndsCalls: a call still up when the drain ends, because
// DRAIN_TIMEOUT ran out or because a second SIGTERM came, is ended with
// SYSTEM_SHUTDOWN, published before the edge exits 0.
func TestDrainTimeoutEndsCalls(t *testing.T) {
	for _, tc := range []struct {
		name, timeout, why string
		again              bool
	}{
		{"timeout", "2s", `"msg":"drain timeout: stopping with work in hand"`, false},
		{"second signal", "10m", `"msg":"second signal: stopping without waiting"`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := newTestNATS(t, "")
			ns.start(true)
			sub := subscribe(t, ns.url())
			e := startNATSEdge(t, ns.url(), "LOG_LEVEL=info", "DRAIN_TIMEOUT="+tc.timeout)
			caller, callee := phones(t, e)
			siptest.Dial(t, caller, callee, "1002", "e2e-drain-stays").Answer()
			waitCallEvent(t, sub, "e2e-drain-stays", "call.answered")

			sigterm(t, e)
			refusedWhileDraining(t, caller, callee)
			if tc.again {
				if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
			}
			// A guard against a hang, well beyond the 2s timeout and the
			// flush.
			if err := e.wait(30 * time.Second); err != nil {
				t.Fatalf("edge exit: %v; log:\n%s", err, e.log)
			}
			waitCallEvent(t, sub, "e2e-drain-stays", "call.ended")
			for _, m := range sub.received() {
				if m.header.Get(hdrEventType) != "call.ended" {
					continue
				}
				var b map[string]any
				if err := json.Unmarshal(m.data, &b); err != nil {
					t.Fatal(err)
				}
				if b["hangupCause"] != "SYSTEM_SHUTDOWN" || b["sipCode"] != float64(0) {
					t.Errorf("call.ended = %v, want hangupCause SYSTEM_SHUTDOWN, sipCode 0", b)
				}
			}
			logs := e.log.String()
			for _, want := range [][]string{
				{tc.why, `"calls":1`},
				{`"msg":"calls still up at shutdown ended"`, `"calls":1`},
			} {
				if !logHasLine(logs, want...) {
					t.Errorf("log has no line with %q:\n%s", want, logs)
				}
			}
		})
	}
}
