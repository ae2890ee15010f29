package calls

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/routr-go/routr/internal/events"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a Sink that keeps every event, in order.
type recorder struct {
	mu     sync.Mutex
	events []events.Event
}

func (r *recorder) Publish(e events.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) all() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// summary renders an event as "type" or "call.ended CAUSE sipCode".
func summary(t testing.TB, e events.Event) string {
	t.Helper()
	var p struct {
		CallID      string `json:"callId"`
		HangupCause string `json:"hangupCause"`
		SIPCode     *int   `json:"sipCode"`
	}
	if err := json.Unmarshal(e.Body, &p); err != nil {
		t.Fatalf("%s: %v: %s", e.Type, err, e.Body)
	}
	if e.Type == events.TypeCallEnded {
		return fmt.Sprintf("%s %s %d", e.Type, p.HangupCause, *p.SIPCode)
	}
	return e.Type
}

// clock is a fake clock advanced by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2026, 11, 25, 18, 53, 34, 120_000_000, time.UTC)

const id = "a84b4c76e66710@pc33.atlanta.example.com"

func start(tr *Tracker) bool {
	return tr.Started(StartInfo{CallID: id, From: `"Alice" <sip:alice@atlanta.example.com:5060>;tag=1928301774`, To: "sip:bob@biloxi.example.com;transport=tcp"})
}

func TestCallFlows(t *testing.T) {
	x := []Header{{Name: "X-Reason", Value: "done"}}
	cases := []struct {
		name string
		flow func(tr *Tracker, c *clock)
		want []string
	}{
		{"answered then caller BYE", func(tr *Tracker, c *clock) {
			start(tr)
			tr.Answered(id)
			tr.Bye(id, 200, x)
		}, []string{"call.started", "call.answered", "call.ended NORMAL_CLEARING 200"}},
		{"answered then callee BYE", func(tr *Tracker, c *clock) {
			start(tr)
			tr.Answered(id)
			tr.Bye(id, 200, nil)
		}, []string{"call.started", "call.answered", "call.ended NORMAL_CLEARING 200"}},
		{"CANCEL before answer, then its 487", func(tr *Tracker, c *clock) {
			start(tr)
			tr.Cancelled(id, x)
			tr.Failed(id, 487, nil)
		}, []string{"call.started", "call.ended NORMAL_CLEARING 487"}},
		{"CANCEL wins the race with a 200", func(tr *Tracker, c *clock) {
			start(tr)
			tr.Cancelled(id, nil)
			tr.Answered(id)
			tr.Bye(id, 200, nil)
		}, []string{"call.started", "call.ended NORMAL_CLEARING 487"}},
		{"200 wins the race with a CANCEL", func(tr *Tracker, c *clock) {
			start(tr)
			tr.Answered(id)
			tr.Cancelled(id, nil)
			tr.Bye(id, 200, nil)
		}, []string{"call.started", "call.answered", "call.ended NORMAL_CLEARING 200"}},
		{"486 busy", func(tr *Tracker, c *clock) {
			start(tr)
			tr.Failed(id, 486, nil)
		}, []string{"call.started", "call.ended USER_BUSY 486"}},
		{"603 decline", func(tr *Tracker, c *clock) {
			start(tr)
			tr.Failed(id, 603, nil)
		}, []string{"call.started", "call.ended CALL_REJECTED 603"}},
		{"404 from downstream", func(tr *Tracker, c *clock) {
			start(tr)
			tr.Failed(id, 404, nil)
		}, []string{"call.started", "call.ended UNALLOCATED 404"}},
		{"unmapped 500", func(tr *Tracker, c *clock) {
			start(tr)
			tr.Failed(id, 500, nil)
		}, []string{"call.started", "call.ended UNKNOWN 500"}},
		{"INVITE timeout", func(tr *Tracker, c *clock) {
			start(tr)
			tr.TimedOut(id)
			tr.Failed(id, 408, nil)
		}, []string{"call.started", "call.ended NO_USER_RESPONSE 408"}},
		{"transport error", func(tr *Tracker, c *clock) {
			start(tr)
			tr.Unreachable(id)
		}, []string{"call.started", "call.ended SERVICE_UNAVAILABLE 503"}},
		{"transport error tears an answered call down", func(tr *Tracker, c *clock) {
			start(tr)
			tr.Answered(id)
			tr.Unreachable(id)
			tr.Bye(id, 200, nil)
		}, []string{"call.started", "call.answered", "call.ended SERVICE_UNAVAILABLE 503"}},
		{"INVITE retransmission and re-INVITE", func(tr *Tracker, c *clock) {
			if !start(tr) {
				t.Error("first Started = false")
			}
			if start(tr) {
				t.Error("retransmitted Started = true")
			}
			tr.Answered(id)
			if start(tr) {
				t.Error("re-INVITE Started = true")
			}
			tr.Bye(id, 200, nil)
		}, []string{"call.started", "call.answered", "call.ended NORMAL_CLEARING 200"}},
		{"retransmitted 2xx", func(tr *Tracker, c *clock) {
			start(tr)
			tr.Answered(id)
			tr.Answered(id)
			tr.Answered(id)
			tr.Bye(id, 200, nil)
		}, []string{"call.started", "call.answered", "call.ended NORMAL_CLEARING 200"}},
		{"forked responses: two 2xx, then a late 486 from a third branch", func(tr *Tracker, c *clock) {
			start(tr)
			tr.Answered(id)
			tr.Answered(id)
			tr.Failed(id, 486, nil)
			tr.TimedOut(id)
			tr.Bye(id, 200, nil)
		}, []string{"call.started", "call.answered", "call.ended NORMAL_CLEARING 200"}},
		{"BYE that times out", func(tr *Tracker, c *clock) {
			start(tr)
			tr.Answered(id)
			tr.Bye(id, 0, nil)
		}, []string{"call.started", "call.answered", "call.ended NO_USER_RESPONSE 408"}},
		{"BYE answered 481", func(tr *Tracker, c *clock) {
			start(tr)
			tr.Answered(id)
			tr.Bye(id, 481, nil)
		}, []string{"call.started", "call.answered", "call.ended UNKNOWN 481"}},
		{"BYE glare", func(tr *Tracker, c *clock) {
			start(tr)
			tr.Answered(id)
			tr.Bye(id, 200, nil)
			tr.Bye(id, 481, nil)
		}, []string{"call.started", "call.answered", "call.ended NORMAL_CLEARING 200"}},
		{"Failed after Cancelled", func(tr *Tracker, c *clock) {
			start(tr)
			tr.Cancelled(id, nil)
			tr.Failed(id, 486, nil)
			tr.TimedOut(id)
		}, []string{"call.started", "call.ended NORMAL_CLEARING 487"}},
		{"max duration", func(tr *Tracker, c *clock) {
			start(tr)
			tr.Answered(id)
			c.advance(59 * time.Minute)
			if n := tr.Sweep(); n != 0 {
				t.Errorf("Sweep before max duration ended %d calls", n)
			}
			c.advance(time.Minute)
			if n := tr.Sweep(); n != 1 {
				t.Errorf("Sweep at max duration ended %d calls, want 1", n)
			}
			tr.Bye(id, 200, nil)
		}, []string{"call.started", "call.answered", "call.ended ALLOTTED_TIMEOUT 0"}},
		{"max duration of a call still ringing", func(tr *Tracker, c *clock) {
			start(tr)
			c.advance(2 * time.Hour)
			tr.Sweep()
			tr.Failed(id, 487, nil)
		}, []string{"call.started", "call.ended ALLOTTED_TIMEOUT 0"}},
		{"reports for an unknown call", func(tr *Tracker, c *clock) {
			tr.Answered(id)
			tr.Failed(id, 486, nil)
			tr.Cancelled(id, nil)
			tr.TimedOut(id)
			tr.Unreachable(id)
			tr.Bye(id, 200, nil)
		}, nil},
		{"same Call-ID reused after the call ended", func(tr *Tracker, c *clock) {
			start(tr)
			tr.Failed(id, 407, nil)
			start(tr)
			tr.Answered(id)
			tr.Bye(id, 200, nil)
		}, []string{"call.started", "call.ended CALL_REJECTED 407", "call.started", "call.answered", "call.ended NORMAL_CLEARING 200"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			c := &clock{t: t0}
			tr := NewTracker(Options{Sink: rec, Now: c.now, MaxDuration: time.Hour, Registerer: prometheus.NewRegistry()})
			tc.flow(tr, c)
			var got []string
			for _, e := range rec.all() {
				got = append(got, summary(t, e))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("events:\n got %q\nwant %q", got, tc.want)
			}
			if tr.Active() != 0 {
				t.Errorf("Active() = %d after the flow, want 0", tr.Active())
			}
		})
	}
}

func TestCallEndedFields(t *testing.T) {
	rec := &recorder{}
	c := &clock{t: t0}
	tr := NewTracker(Options{Sink: rec, Now: c.now})
	tr.Started(StartInfo{
		CallID: id, From: "<sip:alice:secret@atlanta.example.com:5061;transport=tls>;tag=9", To: "sip:bob@biloxi.example.com",
		ExtraHeaders: []Header{{Name: "Via", Value: "SIP/2.0/UDP x"}, {Name: "X-Room-Id", Value: "r1"}, {Name: "X-Connect-Token", Value: "jwt"}},
		Metadata:     map[string]any{"accessKeyId": "WO00000000", "from": "overwrite?", "apiSecret": "s"},
	})
	c.advance(3 * time.Second)
	tr.Answered(id)
	c.advance(61*time.Second + 999*time.Millisecond)
	tr.Bye(id, 200, []Header{{Name: "x-hangup-by", Value: "callee"}})

	ev := rec.all()
	if len(ev) != 3 {
		t.Fatalf("got %d events, want 3", len(ev))
	}
	var started, answered, ended map[string]any
	for i, p := range []*map[string]any{&started, &answered, &ended} {
		if err := json.Unmarshal(ev[i].Body, p); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]any{
		"callId": id, "from": "sip:alice@atlanta.example.com", "to": "sip:bob@biloxi.example.com",
		"startTime": "2026-11-25T18:53:34.120Z", "extraHeaders": map[string]any{"X-Room-Id": "r1"},
		"accessKeyId": "WO00000000",
	}
	if fmt.Sprint(started) != fmt.Sprint(want) {
		t.Errorf("call.started = %v\nwant %v", started, want)
	}
	if answered["answerTime"] != "2026-11-25T18:53:37.120Z" || answered["startTime"] != "2026-11-25T18:53:34.120Z" {
		t.Errorf("call.answered = %v", answered)
	}
	wantEnded := map[string]any{
		"callId": id, "endTime": "2026-11-25T18:54:39.119Z", "hangupCause": "NORMAL_CLEARING",
		"extraHeaders": map[string]any{"x-hangup-by": "callee"},
		"from":         "sip:alice@atlanta.example.com", "to": "sip:bob@biloxi.example.com",
		"sipCode": 200.0, "startTime": "2026-11-25T18:53:34.120Z", "answerTime": "2026-11-25T18:53:37.120Z",
		"duration": 61.0,
	}
	if fmt.Sprint(ended) != fmt.Sprint(wantEnded) {
		t.Errorf("call.ended = %v\nwant %v", ended, wantEnded)
	}
	if !ev[0].Time.Equal(t0) || ev[2].Type != events.TypeCallEnded {
		t.Errorf("event times/types: %v %v", ev[0].Time, ev[2].Type)
	}
}

func TestUnansweredCallHasNoAnswerTime(t *testing.T) {
	rec := &recorder{}
	tr := NewTracker(Options{Sink: rec})
	start(tr)
	tr.Failed(id, 486, nil)
	var ended map[string]any
	if err := json.Unmarshal(rec.all()[1].Body, &ended); err != nil {
		t.Fatal(err)
	}
	if _, ok := ended["answerTime"]; ok {
		t.Errorf("answerTime in an unanswered call.ended: %v", ended)
	}
	if ended["duration"] != 0.0 {
		t.Errorf("duration = %v, want 0", ended["duration"])
	}
}

func TestMaxCalls(t *testing.T) {
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	tr := NewTracker(Options{Sink: rec, MaxCalls: 2, Registerer: reg})
	for i := range 3 {
		if !tr.Started(StartInfo{CallID: fmt.Sprint(i), From: "sip:a@b", To: "sip:c@d"}) {
			t.Errorf("Started(new call %d) = false", i)
		}
	}
	if tr.Active() != 2 {
		t.Errorf("Active() = %d, want 2", tr.Active())
	}
	tr.Bye("2", 200, nil) // the untracked call
	tr.Bye("0", 200, nil)
	if !tr.Started(StartInfo{CallID: "3", From: "sip:a@b", To: "sip:c@d"}) || tr.Active() != 2 {
		t.Errorf("a slot freed by an ended call is not reused: Active() = %d", tr.Active())
	}
	var got []string
	for _, e := range rec.all() {
		got = append(got, e.Type)
	}
	if want := []string{"call.started", "call.started", "call.ended", "call.started"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	if n := gathered(t, reg, "routr_calls_untracked_total"); n != 1 {
		t.Errorf("untracked = %v, want 1", n)
	}
	if n := gathered(t, reg, `routr_calls_ignored_total{reason="unknown"}`); n != 1 {
		t.Errorf("unknown = %v, want 1", n)
	}
	if n := gathered(t, reg, "routr_calls_active"); n != 2 {
		t.Errorf("routr_calls_active = %v, want 2", n)
	}
}

// gathered returns the value of one series, named like name{label="value"}.
func gathered(t *testing.T, reg *prometheus.Registry, series string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			if len(m.GetLabel()) > 0 {
				var l []string
				for _, lp := range m.GetLabel() {
					l = append(l, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
				}
				name += "{" + strings.Join(l, ",") + "}"
			}
			if name == series {
				return value(m)
			}
		}
	}
	t.Fatalf("no series %s", series)
	return 0
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

func TestRunSweeps(t *testing.T) {
	rec := &recorder{}
	tr := NewTracker(Options{Sink: rec, MaxDuration: 20 * time.Millisecond})
	start(tr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- tr.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for tr.Active() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if got := rec.all(); len(got) != 2 || summary(t, got[1]) != "call.ended ALLOTTED_TIMEOUT 0" {
		t.Errorf("events after max duration: %d", len(got))
	}
}

func TestRunWithoutMaxDurationStops(t *testing.T) {
	tr := NewTracker(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tr.Run(ctx); err != nil {
		t.Errorf("Run = %v", err)
	}
}

// TestConcurrentCalls runs many calls at once, each with racing reports
// (CANCEL against 200, BYE glare, retransmissions) from several goroutines,
// and checks that every call published exactly one call.started, at most
// one call.answered and exactly one call.ended, in that order.
func TestConcurrentCalls(t *testing.T) {
	const calls = 2000
	rec := &recorder{}
	tr := NewTracker(Options{Sink: rec, Registerer: prometheus.NewRegistry()})
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			id := fmt.Sprintf("call-%d@test", i)
			tr.Started(StartInfo{CallID: id, From: "sip:a@b", To: "sip:c@d"})
			var race sync.WaitGroup
			r := rand.New(rand.NewPCG(uint64(i), 7))
			switch i % 4 {
			case 0: // CANCEL against 200, then BYE
				race.Go(func() { tr.Cancelled(id, nil) })
				race.Go(func() { tr.Answered(id); tr.Answered(id) })
				race.Wait()
				tr.Bye(id, 200, nil)
			case 1: // retransmitted INVITE and 2xx, then BYE glare
				race.Go(func() { tr.Started(StartInfo{CallID: id}) })
				race.Go(func() { tr.Answered(id) })
				race.Wait()
				race.Go(func() { tr.Bye(id, 200, nil) })
				race.Go(func() { tr.Bye(id, 481, nil) })
				race.Go(func() { tr.Answered(id) })
			case 2: // final response against timeout and transport error
				race.Go(func() { tr.Failed(id, 400+r.IntN(200), nil) })
				race.Go(func() { tr.TimedOut(id) })
				race.Go(func() { tr.Unreachable(id) })
			case 3: // everything at once
				for range 4 {
					race.Go(func() {
						switch r2 := rand.IntN(5); r2 {
						case 0:
							tr.Answered(id)
						case 1:
							tr.Cancelled(id, nil)
						case 2:
							tr.Failed(id, 486, nil)
						default:
							tr.Bye(id, 200, nil)
						}
					})
				}
				race.Wait()
				tr.Bye(id, 200, nil)
			}
			race.Wait()
		})
	}
	wg.Wait()

	type seen struct{ started, answered, ended, order int }
	per := map[string]*seen{}
	for i, e := range rec.all() {
		var p struct {
			CallID string `json:"callId"`
		}
		if err := json.Unmarshal(e.Body, &p); err != nil {
			t.Fatal(err)
		}
		s := per[p.CallID]
		if s == nil {
			s = &seen{}
			per[p.CallID] = s
		}
		switch e.Type {
		case events.TypeCallStarted:
			s.started++
			if s.answered+s.ended > 0 {
				t.Errorf("%s: call.started after other events (#%d)", p.CallID, i)
			}
		case events.TypeCallAnswered:
			s.answered++
			if s.started != 1 || s.ended != 0 {
				t.Errorf("%s: call.answered out of order", p.CallID)
			}
		case events.TypeCallEnded:
			s.ended++
			if s.started != 1 {
				t.Errorf("%s: call.ended before call.started", p.CallID)
			}
		}
	}
	if len(per) != calls {
		t.Errorf("events for %d calls, want %d", len(per), calls)
	}
	for id, s := range per {
		if s.started != 1 || s.ended != 1 || s.answered > 1 {
			t.Errorf("%s: started %d, answered %d, ended %d", id, s.started, s.answered, s.ended)
		}
	}
	if tr.Active() != 0 {
		t.Errorf("Active() = %d, want 0", tr.Active())
	}
}

func BenchmarkCallLifecycle(b *testing.B) {
	tr := NewTracker(Options{Sink: events.Discard{}})
	h := []Header{{Name: "X-Room-Id", Value: "room"}}
	var g atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ids := make([]string, 1024)
		for i := range ids {
			ids[i] = fmt.Sprintf("%d-%d-bench@host", g.Add(1), i)
		}
		i := 0
		for pb.Next() {
			id := ids[i%len(ids)]
			i++
			tr.Started(StartInfo{CallID: id, From: "sip:alice@a.example.com", To: "sip:bob@b.example.com", ExtraHeaders: h})
			tr.Answered(id)
			tr.Bye(id, 200, nil)
		}
	})
}
