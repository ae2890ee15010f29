package cluster

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/routr-go/routr/internal/events"
	"github.com/routr-go/routr/internal/natstest"
)

// confirming is a Next that confirms events like the events pipeline:
// through a real pipeline when pipe is set, else at once unless hold
// (a publisher that never gets through). It records what it is handed,
// numbered by seq, shared by the instances of a test.
type confirming struct {
	seq  *atomic.Int64
	pipe *events.Pipeline
	hold bool
	f    func([]events.Event)

	mu  sync.Mutex
	got []handed
}

type handed struct {
	n  int64
	ev events.Event
}

func (c *confirming) OnSent(f func([]events.Event)) bool {
	if c.pipe != nil {
		return c.pipe.OnSent(f)
	}
	c.f = f
	return true
}

func (c *confirming) Publish(e events.Event) {
	c.mu.Lock()
	c.got = append(c.got, handed{c.seq.Add(1), e})
	c.mu.Unlock()
	switch {
	case c.pipe != nil:
		c.pipe.Publish(e)
	case !c.hold:
		c.f([]events.Event{e})
	}
}

func (c *confirming) handed() []handed {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]handed(nil), c.got...)
}

// peers is what the instances of a test share: the bucket, the order in
// which events were handed on, and who is up.
type peers struct {
	url, bucket string
	seq         atomic.Int64
	mu          sync.Mutex
	down        map[string]bool
	passive     map[string]bool // instances that take nothing over (no Alive)
}

func (p *peers) alive(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.down[name]
}

func (p *peers) kill(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down[name] = true
}

type node struct {
	l    *Ledger
	next *confirming
	stop func()
}

// start runs a ledger named name that confirms events through next (a
// new confirming when nil) and dies at crash.
func (p *peers) start(t *testing.T, name string, next *confirming, crash func(string, events.Event) bool) *node {
	t.Helper()
	nc, err := nats.Connect(p.url)
	if err != nil {
		t.Fatal(err)
	}
	if next == nil {
		next = &confirming{}
	}
	next.seq = &p.seq
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alive := p.alive
	if p.passive[name] {
		alive = nil
	}
	l, err := NewLedger(ctx, LedgerOptions{Conn: nc, Bucket: p.bucket, Next: next, Instance: name,
		Alive: alive, TakeoverAfter: time.Millisecond, crashAt: crash})
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	if !l.confirms {
		t.Fatal("the ledger does not see its Next confirm events")
	}
	runCtx, stop := context.WithCancel(context.Background())
	go l.Run(runCtx)
	n := &node{l: l, next: next}
	var once sync.Once
	n.stop = func() { once.Do(func() { stop(); <-l.Done(); l.Close(); nc.Close() }) }
	t.Cleanup(n.stop)
	return n
}

func newPeers(t *testing.T, bucket string) *peers {
	return &peers{url: natstest.Single(t).URL(), bucket: bucket, down: map[string]bool{}}
}

// at dies at step for the events of the types given.
func at(step string, types ...string) func(string, events.Event) bool {
	return func(s string, e events.Event) bool {
		if s != step {
			return false
		}
		for _, typ := range types {
			if e.Type == typ {
				return true
			}
		}
		return false
	}
}

// waitLong is waitUntil for takeovers: a sweep a second, and an end
// held back a round while its start goes out.
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitWithin(t, 15*time.Second, what, cond)
}

// byID counts, over nodes, how many times each event id was handed on,
// and returns the events in the order they were handed on.
func byID(nodes ...*node) (map[string]int, []events.Event) {
	count := map[string]int{}
	var all []handed
	for _, n := range nodes {
		all = append(all, n.next.handed()...)
	}
	slices.SortFunc(all, func(a, b handed) int { return cmp.Compare(a.n, b.n) })
	var evs []events.Event
	for _, h := range all {
		count[h.ev.ID]++
		evs = append(evs, h.ev)
	}
	return count, evs
}

func markerOf(t *testing.T, l *Ledger, key string) marker {
	t.Helper()
	e, err := l.kv.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("marker %s: %v", key, err)
	}
	m, _ := parseMarker(e.Value())
	return m
}

// TestLedgerRepublishesForDeadInstance: an instance wins a call's marker
// and dies before its event is out; the survivor publishes that event,
// with its id, once, and call.started before call.ended.
func TestLedgerRepublishesForDeadInstance(t *testing.T) {
	for _, tc := range []struct {
		name  string
		crash func(string, events.Event) bool
		hold  bool // the dead instance's publisher never got through
		ends  bool // the call ended before the instance died
		want  []string
	}{
		{"died after claiming call.started", at("claimed", events.TypeCallStarted), false, false, []string{events.TypeCallStarted}},
		{"died after claiming call.ended", at("claimed", events.TypeCallEnded), false, true, []string{events.TypeCallEnded}},
		{"died with both events unsent", nil, true, true, []string{events.TypeCallStarted, events.TypeCallEnded}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeers(t, "calls_takeover")
			a := p.start(t, "sip:a", &confirming{hold: tc.hold}, tc.crash)
			b := p.start(t, "sip:b", nil, nil)
			now := time.Now()
			start, end := started("c1", now), ended("c1", now, now.Add(time.Second))
			h := callKey("c1")
			a.l.Publish(start)
			waitUntil(t, "the start marker", func() bool { _, err := a.l.kv.Get(context.Background(), "s."+h); return err == nil })
			keys := []string{"s." + h}
			if tc.ends {
				a.l.Publish(end)
				waitUntil(t, "the end marker", func() bool { _, err := a.l.kv.Get(context.Background(), "e."+h); return err == nil })
				keys = append(keys, "e."+h)
			}
			p.kill("sip:a")
			a.stop()

			ids := map[string]string{events.TypeCallStarted: start.ID, events.TypeCallEnded: end.ID}
			waitLong(t, "the survivor's events", func() bool { return len(b.next.handed()) >= len(tc.want) })
			time.Sleep(1500 * time.Millisecond) // a second republication would come now
			got := b.next.handed()
			if len(got) != len(tc.want) {
				t.Fatalf("survivor handed on %d events, want %v", len(got), tc.want)
			}
			for i, typ := range tc.want {
				if got[i].ev.Type != typ || got[i].ev.ID != ids[typ] || string(got[i].ev.Body) != string(map[string]events.Event{events.TypeCallStarted: start, events.TypeCallEnded: end}[typ].Body) {
					t.Errorf("survivor's event %d: %s %s, want %s %s with the same body", i, got[i].ev.Type, got[i].ev.ID, typ, ids[typ])
				}
			}
			for _, key := range keys {
				waitUntil(t, key+" published", func() bool { return markerOf(t, b.l, key).State == statePublished })
			}
		})
	}
}

// TestLedgerRestoresRecordOfDeadInstance: the routing instance died after
// claiming call.started, before writing the call's record; the survivor
// that publishes call.started writes it, so that the call's BYE reaching
// it ends the call.
func TestLedgerRestoresRecordOfDeadInstance(t *testing.T) {
	p := newPeers(t, "calls_record")
	a := p.start(t, "sip:a", nil, at("claimed", events.TypeCallStarted))
	b := p.start(t, "sip:b", nil, nil)
	now := time.Now()
	a.l.Publish(started("rec", now))
	waitUntil(t, "the start marker", func() bool {
		_, err := a.l.kv.Get(context.Background(), "s."+callKey("rec"))
		return err == nil
	})
	p.kill("sip:a")
	a.stop()
	waitLong(t, "call.started from the survivor", func() bool { return len(b.next.handed()) == 1 })
	waitUntil(t, "the record", func() bool { _, _, ok := b.l.getRecord(context.Background(), callKey("rec")); return ok })
	b.l.EndUnknown("rec", events.CauseNormalClearing, 200, nil, now.Add(time.Second))
	waitUntil(t, "call.ended", func() bool { return len(b.next.handed()) == 2 })
	if got := b.next.handed(); got[1].ev.Type != events.TypeCallEnded {
		t.Errorf("second event: %s", got[1].ev.Type)
	}
}

// TestLedgerSurvivorsRaceToRepublish: two survivors see the same dead
// instance's claimed markers; each event is handed on once, under its own
// id, and each call's call.started before its call.ended.
func TestLedgerSurvivorsRaceToRepublish(t *testing.T) {
	p := newPeers(t, "calls_race")
	a := p.start(t, "sip:a", &confirming{hold: true}, nil)
	b := p.start(t, "sip:b", nil, nil)
	c := p.start(t, "sip:c", nil, nil)
	const calls = 20
	now := time.Now()
	want := map[string]bool{}
	for i := range calls {
		id := fmt.Sprintf("race-%d", i)
		s, e := started(id, now), ended(id, now, now)
		want[s.ID], want[e.ID] = true, true
		a.l.Publish(s)
		a.l.Publish(e)
	}
	waitUntil(t, "the dead instance's markers", func() bool { return len(a.next.handed()) == 2*calls })
	// The survivors follow markers written from their start on: they saw
	// these. Now the owner dies.
	p.kill("sip:a")
	a.stop()
	waitLong(t, "every event from the survivors", func() bool {
		n, _ := byID(b, c)
		return len(n) == 2*calls
	})
	time.Sleep(1500 * time.Millisecond)
	count, order := byID(b, c)
	for id := range want {
		if count[id] != 1 {
			t.Errorf("event %s handed on %d times", id, count[id])
		}
	}
	if len(count) != len(want) {
		t.Errorf("%d distinct events handed on, want %d", len(count), len(want))
	}
	seen := map[string]bool{}
	for _, e := range order {
		cid := string(callIDOf(e.Body))
		if e.Type == events.TypeCallEnded && !seen[cid] {
			t.Errorf("call %s: call.ended before call.started", cid)
		}
		seen[cid] = true
	}
	bn, cn := len(b.next.handed()), len(c.next.handed())
	t.Logf("survivor b published %d events, c %d", bn, cn)
}

// TestLedgerRepublishedEventStoredOnce runs the instances with real
// JetStream pipelines: the first dies after the server confirmed its
// events but before its markers say so; the survivor publishes them again
// under the same ids, which the stream's duplicate window drops, and its
// markers end published through the pipeline's confirmations.
func TestLedgerRepublishedEventStoredOnce(t *testing.T) {
	p := newPeers(t, "calls_stored")
	pipe := func() *events.Pipeline {
		pl, err := events.NewPipeline(events.Config{NATSEnabled: true, NATSURL: p.url, Durable: true, Subject: "routr", Stream: "STORED"}, events.PipelineOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = pl.Run(ctx); close(done) }()
		t.Cleanup(func() {
			cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer ccancel()
			_ = pl.Close(cctx)
			cancel()
			<-done
		})
		return pl
	}
	a := p.start(t, "sip:a", &confirming{pipe: pipe()}, at("sent", events.TypeCallStarted, events.TypeCallEnded))
	b := p.start(t, "sip:b", &confirming{pipe: pipe()}, nil)
	now := time.Now()
	a.l.Publish(started("stored", now))
	a.l.Publish(ended("stored", now, now))
	waitUntil(t, "both events handed on", func() bool { return len(a.next.handed()) == 2 })
	nc, err := nats.Connect(p.url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	msgs := func() uint64 {
		s, err := js.Stream(context.Background(), "STORED")
		if err != nil {
			return 0
		}
		info, err := s.Info(context.Background())
		if err != nil {
			return 0
		}
		return info.State.Msgs
	}
	waitUntil(t, "both events in the stream", func() bool { return msgs() == 2 })
	p.kill("sip:a")
	a.stop()
	waitLong(t, "the survivor's republication", func() bool { return len(b.next.handed()) == 2 })
	h := callKey("stored")
	for _, key := range []string{"s." + h, "e." + h} {
		waitUntil(t, key+" published", func() bool { return markerOf(t, b.l, key).State == statePublished })
	}
	if n := msgs(); n != 2 {
		t.Errorf("stream holds %d messages, want 2 (republished with the same ids)", n)
	}
}

// TestLedgerHoldsEndBehindLiveStart: the call's call.started is claimed
// by an instance that is up but whose publisher has not got it out yet;
// the instance that claimed call.ended dies. The survivor holds that
// call.ended back until the call.started is confirmed, then publishes it.
func TestLedgerHoldsEndBehindLiveStart(t *testing.T) {
	p := newPeers(t, "calls_held")
	p.passive = map[string]bool{"sip:slow": true} // else it takes call.ended over itself, behind its call.started
	slow := p.start(t, "sip:slow", &confirming{hold: true}, nil)
	dying := p.start(t, "sip:dying", nil, at("claimed", events.TypeCallEnded))
	survivor := p.start(t, "sip:survivor", nil, nil)
	now := time.Now()
	start, end := started("held", now), ended("held", now, now)
	h := callKey("held")
	slow.l.Publish(start)
	waitUntil(t, "call.started handed on", func() bool { return len(slow.next.handed()) == 1 })
	dying.l.Publish(end)
	waitUntil(t, "the end marker", func() bool { _, err := dying.l.kv.Get(context.Background(), "e."+h); return err == nil })
	p.kill("sip:dying")
	dying.stop()

	time.Sleep(2500 * time.Millisecond) // two takeover rounds
	if got := survivor.next.handed(); len(got) != 0 {
		t.Fatalf("survivor published %s while call.started was not out", got[0].ev.Type)
	}
	slow.next.f([]events.Event{start}) // the server confirms call.started
	waitLong(t, "call.ended from the survivor", func() bool { return len(survivor.next.handed()) == 1 })
	if got := survivor.next.handed()[0].ev; got.ID != end.ID {
		t.Errorf("survivor published %s %s, want call.ended %s", got.Type, got.ID, end.ID)
	}
	if m := markerOf(t, survivor.l, "s."+h); m.State != statePublished || m.Owner != "" {
		t.Errorf("start marker %+v, want published", m)
	}
}
