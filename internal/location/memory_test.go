package location

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// clock is a settable clock, safe to read from the sweeper goroutine.
type clock struct{ ns atomic.Int64 }

func newClock() *clock                   { c := &clock{}; c.ns.Store(t0.UnixNano()); return c }
func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// expiries records OnExpire calls.
type expiries struct {
	mu  sync.Mutex
	got []string // "aor contact"
}

func (x *expiries) add(b Binding) {
	x.mu.Lock()
	x.got = append(x.got, b.AOR+" "+b.Contact)
	x.mu.Unlock()
}

func (x *expiries) list() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.got)
}

func bind(aor, contact, callID string, cseq uint32, expires time.Duration) Binding {
	return Binding{AOR: aor, Contact: contact, Transport: "udp", Source: "10.0.0.5:5060",
		LocalAddr: "10.0.0.1:5060", CallID: callID, CSeq: cseq, Expires: t0.Add(expires),
		UserAgent: "test", Instance: "edge-0"}
}

const (
	alice = "sip:1001@sip.local"
	bob   = "sip:1002@sip.local"
	c1    = "sip:1001@10.0.0.5:5060;transport=udp"
	c2    = "sip:1001@10.0.0.6:5060;transport=udp"
	c3    = "sip:1001@10.0.0.7:5060;transport=tcp"
)

// step is one operation on the store and what it must return.
type step struct {
	op       string // put, remove, removeall, advance
	b        Binding
	aor, con string
	by       time.Duration
	want     any // PutResult, bool or int
	err      error
}

func put(b Binding, want PutResult, err error) step {
	return step{op: "put", b: b, want: want, err: err}
}
func putAt(b Binding, reg time.Duration, want PutResult) step {
	b.RegisteredAt = t0.Add(reg)
	return step{op: "put", b: b, want: want}
}
func remove(aor, con string, want bool) step {
	return step{op: "remove", aor: aor, con: con, want: want}
}
func removeAll(aor string, want int) step { return step{op: "removeall", aor: aor, want: want} }
func advance(d time.Duration) step        { return step{op: "advance", by: d} }

// contractCase is a sequence of operations every Store must answer the
// same way, and what it must then hold.
type contractCase struct {
	name    string
	max     int
	steps   []step
	lookup  map[string][]string // aor -> contacts in Lookup order
	expired []string
	len     int
}

// contractCases are run against every Store implementation.
func contractCases() []contractCase {
	return []contractCase{
		{
			name:   "put",
			steps:  []step{put(bind(alice, c1, "a", 1, time.Hour), Created, nil)},
			lookup: map[string][]string{alice: {c1}, bob: nil},
			len:    1,
		},
		{
			name: "refresh with a higher CSeq",
			steps: []step{
				put(bind(alice, c1, "a", 1, time.Hour), Created, nil),
				put(bind(alice, c1, "a", 2, 2*time.Hour), Refreshed, nil),
				advance(90 * time.Minute),
			},
			lookup: map[string][]string{alice: {c1}},
			len:    1,
		},
		{
			name: "out of order CSeq for the same Call-ID",
			steps: []step{
				put(bind(alice, c1, "a", 5, time.Hour), Created, nil),
				put(bind(alice, c1, "a", 4, time.Hour), 0, ErrOutOfOrder),
				put(bind(alice, c1, "a", 5, time.Hour), 0, ErrOutOfOrder),
				put(bind(alice, c1, "a", 4, 0), 0, ErrOutOfOrder), // removal too
			},
			lookup: map[string][]string{alice: {c1}},
			len:    1,
		},
		{
			name: "another Call-ID may have any CSeq",
			steps: []step{
				put(bind(alice, c1, "a", 5, time.Hour), Created, nil),
				put(bind(alice, c1, "b", 1, time.Hour), Refreshed, nil),
				put(bind(alice, c1, "b", 1, time.Hour), 0, ErrOutOfOrder),
			},
			lookup: map[string][]string{alice: {c1}},
			len:    1,
		},
		{
			name: "several contacts, most recent first",
			steps: []step{
				putAt(bind(alice, c1, "a", 1, time.Hour), 0, Created),
				putAt(bind(alice, c2, "b", 1, time.Hour), 2*time.Second, Created),
				putAt(bind(alice, c3, "c", 1, time.Hour), time.Second, Created),
				putAt(bind(bob, c1, "d", 1, time.Hour), 0, Created),
			},
			lookup: map[string][]string{alice: {c2, c3, c1}, bob: {c1}},
			len:    4,
		},
		{
			name: "a refresh moves a contact first",
			steps: []step{
				putAt(bind(alice, c1, "a", 1, time.Hour), 0, Created),
				putAt(bind(alice, c2, "b", 1, time.Hour), time.Second, Created),
				putAt(bind(alice, c1, "a", 2, time.Hour), 2*time.Second, Refreshed),
			},
			lookup: map[string][]string{alice: {c1, c2}},
			len:    2,
		},
		{
			name: "remove",
			steps: []step{
				put(bind(alice, c1, "a", 1, time.Hour), Created, nil),
				put(bind(alice, c2, "b", 1, time.Hour), Created, nil),
				remove(alice, c1, true),
				remove(alice, c1, false),
				remove(bob, c1, false),
			},
			lookup: map[string][]string{alice: {c2}},
			len:    1,
		},
		{
			name: "remove all",
			steps: []step{
				put(bind(alice, c1, "a", 1, time.Hour), Created, nil),
				put(bind(alice, c2, "b", 1, time.Hour), Created, nil),
				put(bind(bob, c1, "c", 1, time.Hour), Created, nil),
				removeAll(alice, 2),
				removeAll(alice, 0),
			},
			lookup: map[string][]string{alice: nil, bob: {c1}},
			len:    1,
		},
		{
			name: "expires zero removes",
			steps: []step{
				put(bind(alice, c1, "a", 1, time.Hour), Created, nil),
				put(bind(alice, c1, "a", 2, 0), Removed, nil),
				put(bind(alice, c1, "a", 3, 0), Absent, nil),
				put(bind(alice, c2, "a", 3, -time.Second), Absent, nil),
			},
			lookup: map[string][]string{alice: nil},
		},
		{
			name: "invalid",
			steps: []step{
				put(bind("", c1, "a", 1, time.Hour), 0, ErrInvalid),
				put(bind(alice, "", "a", 1, time.Hour), 0, ErrInvalid),
			},
		},
		{
			name: "expired bindings vanish from Lookup before the sweep",
			steps: []step{
				put(bind(alice, c1, "a", 1, time.Minute), Created, nil),
				put(bind(alice, c2, "b", 1, time.Hour), Created, nil),
				advance(time.Minute),
			},
			lookup: map[string][]string{alice: {c2}},
			len:    2, // the sweeper has not run
		},
		{
			name: "a Put meeting an expired binding reports it and starts anew",
			steps: []step{
				put(bind(alice, c1, "a", 5, time.Minute), Created, nil),
				put(bind(alice, c2, "b", 1, time.Minute), Created, nil),
				advance(2 * time.Minute),
				put(bind(alice, c1, "a", 1, time.Hour), Created, nil), // lower CSeq is fine: the old one is gone
			},
			lookup:  map[string][]string{alice: {c1}},
			expired: []string{alice + " " + c2, alice + " " + c1}, // in list order
			len:     1,
		},
		{
			name: "Remove of an expired binding reports it, returns false",
			steps: []step{
				put(bind(alice, c1, "a", 1, time.Minute), Created, nil),
				put(bind(bob, c1, "a", 1, time.Minute), Created, nil),
				advance(time.Minute),
				remove(alice, c1, false),
				removeAll(bob, 0),
			},
			expired: []string{alice + " " + c1, bob + " " + c1},
		},
		{
			name: "MaxBindings refuses new bindings only",
			max:  2,
			steps: []step{
				put(bind(alice, c1, "a", 1, time.Minute), Created, nil),
				put(bind(alice, c2, "b", 1, time.Hour), Created, nil),
				put(bind(bob, c1, "c", 1, time.Hour), 0, ErrFull),
				put(bind(alice, c2, "b", 2, time.Hour), Refreshed, nil),
				put(bind(alice, c2, "b", 3, 0), Removed, nil),
				put(bind(bob, c1, "c", 1, time.Hour), Created, nil),
				put(bind(bob, c2, "c", 1, time.Hour), 0, ErrFull),
				advance(time.Minute),
				put(bind(bob, c2, "c", 1, time.Hour), 0, ErrFull), // alice's c1 expired but is in another AOR, not swept yet
				put(bind(alice, c3, "c", 1, time.Hour), Created, nil),
			},
			lookup:  map[string][]string{alice: {c3}, bob: {c1}},
			expired: []string{alice + " " + c1},
			len:     2,
		},
	}
}

func TestMemory(t *testing.T) {
	tests := contractCases()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			var exp expiries
			m := NewMemory(MemoryOptions{MaxBindings: tt.max, OnExpire: exp.add, Now: clk.now})
			for i, s := range tt.steps {
				var got any
				var err error
				switch s.op {
				case "put":
					got, err = m.Put(ctx, s.b)
				case "remove":
					got, err = m.Remove(ctx, s.aor, s.con)
				case "removeall":
					got, err = m.RemoveAll(ctx, s.aor)
				case "advance":
					clk.advance(s.by)
					continue
				}
				if !errors.Is(err, s.err) || (s.err == nil && got != s.want) {
					t.Fatalf("step %d %s: got %v, %v; want %v, %v", i, s.op, got, err, s.want, s.err)
				}
				checkInvariants(t, m)
			}
			for aor, want := range tt.lookup {
				bs, err := m.Lookup(ctx, aor)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, b := range bs {
					got = append(got, b.Contact)
				}
				if !slices.Equal(got, want) {
					t.Errorf("Lookup(%s) = %v, want %v", aor, got, want)
				}
				if n, _ := m.Count(ctx, aor); n != len(want) {
					t.Errorf("Count(%s) = %d, want %d", aor, n, len(want))
				}
			}
			if got := exp.list(); !slices.Equal(got, tt.expired) {
				t.Errorf("OnExpire got %v, want %v", got, tt.expired)
			}
			if m.Len() != tt.len {
				t.Errorf("Len = %d, want %d", m.Len(), tt.len)
			}
		})
	}
}

func TestLookupReturnsWhatWasPut(t *testing.T) {
	clk := newClock()
	m := NewMemory(MemoryOptions{Now: clk.now})
	b := bind(alice, c1, "a", 7, time.Hour)
	b.SessionCount = 3
	if _, err := m.Put(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	got, _ := m.Lookup(context.Background(), alice)
	b.RegisteredAt = clk.now() // set by Put
	if len(got) != 1 || got[0] != b {
		t.Errorf("Lookup = %+v\nwant %+v", got, b)
	}
}

// TestPutCopiesStrings checks that a binding does not keep the caller's
// buffer (a whole SIP message) alive.
func TestPutCopiesStrings(t *testing.T) {
	msg := strings.Repeat("x", 1000) + alice + c1 + "call-id" // as if sliced from a message
	b := bind(msg[1000:1000+len(alice)], msg[1000+len(alice):1000+len(alice)+len(c1)], msg[len(msg)-7:], 1, time.Hour)
	clk := newClock()
	m := NewMemory(MemoryOptions{Now: clk.now})
	ctx := context.Background()
	m.Put(ctx, b)
	b.CSeq, b.Source = 2, msg[:5] // a refresh that changes one field
	m.Put(ctx, b)
	got, _ := m.Lookup(ctx, alice)
	lo, hi := uintptr(unsafe.Pointer(unsafe.StringData(msg))), uintptr(unsafe.Pointer(unsafe.StringData(msg)))+uintptr(len(msg))
	for _, s := range []string{got[0].AOR, got[0].Contact, got[0].CallID, got[0].Source} {
		if p := uintptr(unsafe.Pointer(unsafe.StringData(s))); lo <= p && p < hi {
			t.Errorf("%q shares the caller's buffer", s)
		}
	}
	if got[0].Source != "xxxxx" || got[0].CSeq != 2 {
		t.Errorf("refresh lost: %+v", got[0])
	}
}

func TestSweep(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	var exp expiries
	m := NewMemory(MemoryOptions{OnExpire: exp.add, Now: clk.now})
	const n = 2000 // more than sweepBatch in some shards
	for i := range n {
		b := bind(fmt.Sprintf("sip:%d@sip.local", i%700), fmt.Sprintf("sip:%d@10.0.0.1", i), "c", 1, time.Duration(1+i%3)*time.Minute)
		if _, err := m.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	for minute, left := range []int{n, n - 667, n - 1334, 0} {
		clk.t(t0.Add(time.Duration(minute) * time.Minute))
		m.sweep(nil)
		checkInvariants(t, m)
		if m.Len() != left {
			t.Errorf("minute %d: Len = %d, want %d", minute, m.Len(), left)
		}
	}
	got := exp.list()
	slices.Sort(got)
	if len(got) != n || len(slices.Compact(got)) != n {
		t.Errorf("OnExpire called %d times for %d distinct bindings, want %d", len(got), len(slices.Compact(got)), n)
	}
	m.sweep(nil)
	if len(exp.list()) != n {
		t.Errorf("a second sweep reported again")
	}
}

func (c *clock) t(at time.Time) { c.ns.Store(at.UnixNano()) }

// TestRun checks that the sweeper expires on time and stops with its
// context.
func TestRun(t *testing.T) {
	clk := newClock()
	fired := make(chan Binding, 1)
	m := NewMemory(MemoryOptions{SweepInterval: time.Millisecond, Now: clk.now, OnExpire: func(b Binding) { fired <- b }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()

	m.Put(ctx, bind(alice, c1, "a", 1, time.Minute))
	select {
	case b := <-fired:
		t.Fatalf("expired early: %+v", b)
	case <-time.After(5 * time.Millisecond):
	}
	clk.advance(time.Minute)
	select {
	case b := <-fired:
		if b.Contact != c1 {
			t.Errorf("expired %+v", b)
		}
	case <-time.After(time.Second):
		t.Fatal("not expired within a second of sweeps")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Run did not return")
	}
}

// TestConcurrent exercises every operation from many goroutines, with the
// sweeper running, for the race detector.
func TestConcurrent(t *testing.T) {
	clk := newClock()
	var expired atomic.Int64
	m := NewMemory(MemoryOptions{SweepInterval: time.Millisecond, Now: clk.now, MaxBindings: 500,
		OnExpire: func(Binding) { expired.Add(1) }})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { m.Run(ctx) })
	var workers sync.WaitGroup
	for g := range 8 {
		workers.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range 3000 {
				aor := fmt.Sprintf("sip:%d@sip.local", r.IntN(100))
				con := fmt.Sprintf("sip:%d@10.0.0.%d", r.IntN(100), r.IntN(8))
				switch r.IntN(10) {
				case 0:
					m.Remove(ctx, aor, con)
				case 1:
					m.RemoveAll(ctx, aor)
				case 2, 3, 4:
					m.Lookup(ctx, aor)
					m.Count(ctx, aor)
				case 5:
					clk.advance(time.Second)
				default:
					b := bind(aor, con, fmt.Sprint(g), uint32(i), time.Duration(r.IntN(60))*time.Second)
					b.Expires = clk.now().Add(time.Duration(r.IntN(60)) * time.Second)
					if _, err := m.Put(ctx, b); err != nil && !errors.Is(err, ErrFull) && !errors.Is(err, ErrOutOfOrder) {
						t.Error(err)
					}
				}
			}
		})
	}
	workers.Wait()
	cancel()
	wg.Wait()
	checkInvariants(t, m)
	if m.Len() > 500 {
		t.Errorf("Len %d above MaxBindings", m.Len())
	}
}

// TestModel compares the store with a plain map under random operations.
func TestModel(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	var exp expiries
	m := NewMemory(MemoryOptions{Now: clk.now, OnExpire: exp.add})
	type key struct{ aor, con string }
	model := map[key]Binding{}
	created, removedLive := 0, 0
	r := rand.New(rand.NewPCG(1, 2))
	aors := []string{"sip:a@x", "sip:b@x", "sip:c@x"}
	cons := []string{"sip:1@h", "sip:2@h", "sip:3@h", "sip:4@h"}
	live := func(b Binding) bool { return b.Expires.After(clk.now()) }
	for i := range 20000 {
		k := key{aors[r.IntN(len(aors))], cons[r.IntN(len(cons))]}
		switch r.IntN(8) {
		case 0:
			clk.advance(time.Duration(r.IntN(5)) * time.Second)
		case 1:
			m.sweep(nil)
		case 2:
			ok, _ := m.Remove(ctx, k.aor, k.con)
			b, had := model[k]
			if ok != (had && live(b)) {
				t.Fatalf("op %d: Remove = %v, model had %v", i, ok, had && live(b))
			}
			if ok {
				removedLive++
			}
			delete(model, k)
		default:
			b := bind(k.aor, k.con, "c", uint32(i), 0)
			b.Expires = clk.now().Add(time.Duration(r.IntN(10)-2) * time.Second)
			b.RegisteredAt = clk.now().Add(time.Duration(r.IntN(3)) * time.Millisecond)
			res, err := m.Put(ctx, b)
			old, had := model[k]
			had = had && live(old)
			switch {
			case err != nil:
				t.Fatalf("op %d: %v", i, err)
			case !live(b) && had:
				if res != Removed {
					t.Fatalf("op %d: %v, want removed", i, res)
				}
				removedLive++
				delete(model, k)
			case !live(b):
				if res != Absent {
					t.Fatalf("op %d: %v, want absent", i, res)
				}
			case had && res != Refreshed, !had && res != Created:
				t.Fatalf("op %d: %v, had %v", i, res, had)
			default:
				if res == Created {
					created++
				}
				model[k] = b
			}
		}
		for _, aor := range aors {
			got, _ := m.Lookup(ctx, aor)
			var want []Binding
			for k, b := range model {
				if k.aor == aor && live(b) {
					want = append(want, b)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("op %d: Lookup(%s) has %d, model %d", i, aor, len(got), len(want))
			}
			for j := range got {
				if j > 0 && got[j].RegisteredAt.After(got[j-1].RegisteredAt) {
					t.Fatalf("op %d: Lookup not most recent first", i)
				}
				if mb := model[key{aor, got[j].Contact}]; mb.CSeq != got[j].CSeq {
					t.Fatalf("op %d: %s CSeq %d, model %d", i, got[j].Contact, got[j].CSeq, mb.CSeq)
				}
			}
		}
		checkInvariants(t, m)
	}
	m.sweep(nil)
	clk.advance(time.Hour)
	m.sweep(nil)
	if m.Len() != 0 {
		t.Errorf("Len = %d after everything expired", m.Len())
	}
	// Every binding created and not removed while live expired exactly once.
	if got, want := len(exp.list()), created-removedLive; got != want || want < 1000 {
		t.Errorf("OnExpire called %d times, want %d", got, want)
	}
}

// checkInvariants verifies the heaps, lists and count.
func checkInvariants(t *testing.T, m *Memory) {
	t.Helper()
	total := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.RLock()
		inList := 0
		for aor, head := range s.aors {
			if head == nil {
				t.Fatalf("nil list for %s", aor)
			}
			for x := head; x != nil; x = x.next {
				if x.aor() != aor || s.heap[x.hi] != x {
					t.Fatalf("entry %+v misplaced", x.binding())
				}
				if x.next != nil && x.reg < x.next.reg {
					t.Fatalf("list of %s out of order", aor)
				}
				inList++
			}
		}
		for j, e := range s.heap {
			if int(e.hi) != j || (j > 0 && s.heap[(j-1)/2].exp > e.exp) {
				t.Fatalf("heap broken at %d", j)
			}
		}
		if inList != len(s.heap) {
			t.Fatalf("shard %d: %d in lists, %d in heap", i, inList, len(s.heap))
		}
		total += inList
		s.mu.RUnlock()
	}
	if total != m.Len() {
		t.Fatalf("Len %d, holding %d", m.Len(), total)
	}
}

// An edge holds one entry per registered contact: keep it in the 96-byte
// size class (a Binding alone is 192 bytes).
func TestEntrySize(t *testing.T) {
	if n := unsafe.Sizeof(entry{}); n > 96 {
		t.Errorf("entry is %d bytes, want at most 96", n)
	}
}
