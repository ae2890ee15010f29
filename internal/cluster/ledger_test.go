package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/routr-go/routr/internal/events"
	"github.com/routr-go/routr/internal/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sink records events.
type sink struct {
	mu  sync.Mutex
	evs []events.Event
}

func (s *sink) Publish(e events.Event) { s.mu.Lock(); s.evs = append(s.evs, e); s.mu.Unlock() }

func (s *sink) count(typ string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.evs {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func (s *sink) last(typ string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.evs) - 1; i >= 0; i-- {
		if s.evs[i].Type == typ {
			var m map[string]any
			_ = json.Unmarshal(s.evs[i].Body, &m)
			return m
		}
	}
	return nil
}

type instance struct {
	l    *Ledger
	out  *sink
	stop func()
}

func startLedger(t *testing.T, url, bucket string, maxDuration time.Duration) *instance {
	return startLedgerWith(t, url, bucket, maxDuration, t.Name(), nil)
}

func startLedgerWith(t *testing.T, url, bucket string, maxDuration time.Duration, name string, alive func(string) bool) *instance {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	out := &sink{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := NewLedger(ctx, LedgerOptions{Conn: nc, Bucket: bucket, Next: out, MaxDuration: maxDuration, Instance: name, Alive: alive})
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	go l.Run(runCtx)
	in := &instance{l: l, out: out}
	var once sync.Once
	in.stop = func() { once.Do(func() { stop(); <-l.Done(); l.Close(); nc.Close() }) }
	t.Cleanup(in.stop)
	return in
}

func total(ins []*instance, typ string) int {
	n := 0
	for _, in := range ins {
		n += in.out.count(typ)
	}
	return n
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitWithin(t, 5*time.Second, what, cond)
}

// waitWithin polls cond every 10 ms for up to d.
func waitWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("not within %s: %s", d, what)
}

func started(callID string, at time.Time) events.Event {
	return events.CallStarted(events.CallStart{CallID: callID, From: "sip:1001@sip.local", To: "sip:1002@sip.local", StartTime: at})
}

func ended(callID string, start, at time.Time) events.Event {
	return events.CallEnded(events.CallEnd{CallID: callID, From: "sip:1001@sip.local", To: "sip:1002@sip.local",
		StartTime: start, EndTime: at, HangupCause: events.CauseNormalClearing, SIPCode: 200})
}

// TestLedgerOncePerCall publishes the same call's events through three
// instances: one call.started and one call.ended come out.
func TestLedgerOncePerCall(t *testing.T) {
	srv := natstest.Single(t)
	var ins []*instance
	for range 3 {
		ins = append(ins, startLedger(t, srv.URL(), "calls_once", 0))
	}
	now := time.Now()
	for i := range 20 {
		id := "call-" + string(rune('a'+i))
		for _, in := range ins {
			in.l.Publish(started(id, now))
		}
		for _, in := range ins[1:] {
			in.l.Publish(ended(id, now, now.Add(time.Second)))
		}
	}
	ins[0].l.Publish(events.EndpointRegistered("sip:1001@sip.local", 60, nil, now))
	waitUntil(t, "20 starts and 20 ends", func() bool {
		return total(ins, events.TypeCallStarted) >= 20 && total(ins, events.TypeCallEnded) >= 20
	})
	time.Sleep(200 * time.Millisecond)
	if s, e := total(ins, events.TypeCallStarted), total(ins, events.TypeCallEnded); s != 20 || e != 20 {
		t.Errorf("%d call.started and %d call.ended for 20 calls", s, e)
	}
	if n := ins[0].out.count(events.TypeEndpointRegistered); n != 1 {
		t.Errorf("registration events: %d, want 1 (not deduplicated)", n)
	}
}

// TestLedgerEndsElsewhere has a call routed by one instance ended by
// another (a BYE it did not route), then by the maximum duration when
// its instance is gone: each ends once.
func TestLedgerEndsElsewhere(t *testing.T) {
	srv := natstest.Single(t)
	owner := startLedger(t, srv.URL(), "calls_elsewhere", 3*time.Second)
	other := startLedger(t, srv.URL(), "calls_elsewhere", 3*time.Second)
	now := time.Now()

	owner.l.Publish(started("bye-elsewhere", now))
	waitUntil(t, "the record", func() bool {
		other.l.mu.Lock()
		defer other.l.mu.Unlock()
		return len(other.l.active) == 1
	})
	other.l.EndUnknown("bye-elsewhere", events.CauseNormalClearing, 200, nil, now.Add(time.Second))
	waitUntil(t, "ended by the other instance", func() bool { return other.out.count(events.TypeCallEnded) == 1 })
	if got := other.out.last(events.TypeCallEnded); got["from"] != "sip:1001@sip.local" || got["hangupCause"] != "NORMAL_CLEARING" {
		t.Errorf("call.ended from the record: %v", got)
	}
	owner.l.Publish(ended("bye-elsewhere", now, now.Add(time.Second))) // the owner's own, later
	other.l.EndUnknown("never-started", events.CauseNormalClearing, 200, nil, now)

	// The owner dies with a call up: the survivor ends it at the maximum
	// duration.
	owner.l.Publish(started("orphan", now))
	waitUntil(t, "the owner's start", func() bool { return owner.out.count(events.TypeCallStarted) == 2 })
	owner.stop()
	waitUntil(t, "ended at the maximum duration", func() bool { return other.out.count(events.TypeCallEnded) == 2 })
	if got := other.out.last(events.TypeCallEnded); got["callId"] != "orphan" || got["hangupCause"] != events.CauseAllottedTimeout {
		t.Errorf("orphan's call.ended: %v", got)
	}
	time.Sleep(1500 * time.Millisecond)
	if n := owner.out.count(events.TypeCallEnded) + other.out.count(events.TypeCallEnded); n != 2 {
		t.Errorf("%d call.ended for 2 calls", n)
	}
}

// TestLedgerLeavesLiveOwnersCalls: a BYE seen by an instance that did not
// route the call, while the one that did is up, publishes nothing there:
// the owner, which the BYE crosses too, reports the call in order.
func TestLedgerLeavesLiveOwnersCalls(t *testing.T) {
	srv := natstest.Single(t)
	up := func(string) bool { return true }
	owner := startLedgerWith(t, srv.URL(), "calls_owner", 0, "sip:a", up)
	other := startLedgerWith(t, srv.URL(), "calls_owner", 0, "sip:b", up)
	now := time.Now()
	owner.l.Publish(started("owned", now))
	waitUntil(t, "the record", func() bool {
		other.l.mu.Lock()
		defer other.l.mu.Unlock()
		return len(other.l.active) == 1
	})
	other.l.EndUnknown("owned", events.CauseNormalClearing, 200, nil, now)
	owner.l.Publish(ended("owned", now, now))
	waitUntil(t, "the owner's call.ended", func() bool { return owner.out.count(events.TypeCallEnded) == 1 })
	time.Sleep(200 * time.Millisecond)
	if n := other.out.count(events.TypeCallEnded); n != 0 {
		t.Errorf("the other instance published %d call.ended", n)
	}
}

// TestLedgerOrderPerCall publishes the events of many calls at once: the
// workers take different calls side by side, and each call's events
// still come out in order, each once. Call-IDs with characters JSON
// escapes keep to one worker too.
func TestLedgerOrderPerCall(t *testing.T) {
	srv := natstest.Single(t)
	in := startLedger(t, srv.URL(), "calls_order", 0)
	now := time.Now()
	const calls = 64
	id := func(i int) string { return fmt.Sprintf(`order-"%d"\x`, i) }
	for i := range calls {
		in.l.Publish(started(id(i), now))
		in.l.Publish(events.CallAnswered(events.CallAnswer{CallID: id(i), From: "sip:1001@sip.local", To: "sip:1002@sip.local", StartTime: now, AnswerTime: now}))
		in.l.Publish(ended(id(i), now, now))
	}
	waitUntil(t, "every call.ended", func() bool { return in.out.count(events.TypeCallEnded) == calls })
	in.out.mu.Lock()
	defer in.out.mu.Unlock()
	seq := map[string][]string{}
	for _, e := range in.out.evs {
		var b struct {
			CallID string `json:"callId"`
		}
		if err := json.Unmarshal(e.Body, &b); err != nil {
			t.Fatal(err)
		}
		seq[b.CallID] = append(seq[b.CallID], e.Type)
	}
	for i := range calls {
		if got := strings.Join(seq[id(i)], ","); got != "call.started,call.answered,call.ended" {
			t.Errorf("call %q: %s", id(i), got)
		}
	}
}

func TestCallIDOf(t *testing.T) {
	for body, want := range map[string]string{
		`{"callId":"abc","from":"x"}`:  "abc",
		`{"callId":"a\"b\\","to":"y"}`: `a"b\`, // decoded: EndUnknown hashes the plain Call-ID
		`{"callId":"\u003cx\u003e"}`:   "<x>",
		`{"from":"x"}`:                 "",
		`{"callId":"unterminated`:      "unterminated",
		`{"callId":"ends\`:             `ends\`,
	} {
		if got := string(callIDOf([]byte(body))); got != want {
			t.Errorf("callIDOf(%s) = %q, want %q", body, got, want)
		}
	}
}
