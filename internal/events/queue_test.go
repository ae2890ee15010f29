package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakePublisher records what it confirms; fail decides, per attempt, how
// many events of the batch are confirmed and with which error.
type fakePublisher struct {
	mu       sync.Mutex
	got      []string
	attempts int
	fail     func(attempt int, batch []Event) (int, error)
	gate     chan struct{} // when set, every attempt waits for it (or ctx)
}

func (f *fakePublisher) Send(ctx context.Context, e Event) error {
	_, err := f.SendBatch(ctx, []Event{e})
	return err
}

func (f *fakePublisher) SendBatch(ctx context.Context, batch []Event) (int, error) {
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts++
	n, err := len(batch), error(nil)
	if f.fail != nil {
		n, err = f.fail(f.attempts, batch)
	}
	for _, e := range batch[:n] {
		f.got = append(f.got, e.ID)
	}
	return n, err
}

func (f *fakePublisher) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

var quiet = slog.New(slog.DiscardHandler)

func ev(i int) Event { return Event{ID: strconv.Itoa(i), Type: TypeCallStarted, Body: []byte(`{}`)} }

func ids(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

func counterValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

func newTestQueue(t *testing.T, p Publisher, o QueueOptions) *Queue {
	t.Helper()
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	o.RetryMin, o.RetryMax = time.Millisecond, 5*time.Millisecond
	if o.Logger == nil {
		o.Logger = quiet
	}
	q, err := NewQueue(p, o)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// run starts q.Run and returns a function that stops it and checks it
// returned nil.
func run(t *testing.T, r interface{ Run(context.Context) error }) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}
}

func closeQueue(t *testing.T, q *Queue) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		t.Errorf("Close = %v", err)
	}
}

func TestQueueInOrder(t *testing.T) {
	p := &fakePublisher{}
	q := newTestQueue(t, p, QueueOptions{Name: "test", MaxBatch: 7})
	stop := run(t, q)
	for i := range 5000 {
		q.Publish(ev(i))
	}
	closeQueue(t, q)
	stop()
	if got := p.ids(); !slices.Equal(got, ids(0, 5000)) {
		t.Errorf("published %d events, out of order or missing", len(got))
	}
	if n := counterValue(t, q.published); n != 5000 {
		t.Errorf("published_total = %v", n)
	}
}

// TestQueueOverflowDropsNewest: with the publisher stuck, a queue of bound
// 10 keeps events 0..9, drops 10..24 and counts exactly 15.
func TestQueueOverflowDropsNewest(t *testing.T) {
	p := &fakePublisher{gate: make(chan struct{})}
	q := newTestQueue(t, p, QueueOptions{Name: "test", Bound: 10})
	stop := run(t, q)
	for i := range 25 {
		q.Publish(ev(i))
	}
	if n := counterValue(t, q.dropOverflow); n != 15 {
		t.Errorf("dropped overflow = %v, want 15", n)
	}
	if n := counterValue(t, q.queued); n != 10 {
		t.Errorf("queued = %v, want 10", n)
	}
	close(p.gate)
	closeQueue(t, q)
	stop()
	if got := p.ids(); !slices.Equal(got, ids(0, 10)) {
		t.Errorf("published %v, want the 10 oldest", got)
	}
}

// TestQueueRetries: failed attempts (some confirming part of the batch)
// lose nothing and reorder nothing.
func TestQueueRetries(t *testing.T) {
	p := &fakePublisher{fail: func(attempt int, batch []Event) (int, error) {
		switch attempt % 3 {
		case 1:
			return 0, errors.New("boom")
		case 2:
			return len(batch) / 2, fmt.Errorf("%w: gone", ErrDisconnected)
		}
		return len(batch), nil
	}}
	q := newTestQueue(t, p, QueueOptions{Name: "test", MaxBatch: 10})
	for i := range 1000 {
		q.Publish(ev(i))
	}
	stop := run(t, q)
	closeQueue(t, q)
	stop()
	if got := p.ids(); !slices.Equal(got, ids(0, 1000)) {
		t.Errorf("published %d events, out of order, missing or repeated", len(got))
	}
	if n := counterValue(t, q.failures); n == 0 {
		t.Error("publish_failures_total = 0")
	}
}

func TestQueuePermanentRejection(t *testing.T) {
	p := &fakePublisher{fail: func(_ int, batch []Event) (int, error) {
		for i, e := range batch {
			if e.ID == "3" || e.ID == "7" {
				return i, Permanent(errors.New("too big"))
			}
		}
		return len(batch), nil
	}}
	q := newTestQueue(t, p, QueueOptions{Name: "test"})
	for i := range 10 {
		q.Publish(ev(i))
	}
	closeQueue(t, q) // drains without Run
	if got, want := p.ids(), []string{"0", "1", "2", "4", "5", "6", "8", "9"}; !slices.Equal(got, want) {
		t.Errorf("published %v, want %v", got, want)
	}
	if n := counterValue(t, q.dropRejected); n != 2 {
		t.Errorf("dropped rejected = %v, want 2", n)
	}
}

func TestQueueCloseTimesOut(t *testing.T) {
	p := &fakePublisher{gate: make(chan struct{})} // never opens
	q := newTestQueue(t, p, QueueOptions{Name: "test"})
	stop := run(t, q)
	for i := range 20 {
		q.Publish(ev(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := q.Close(ctx); err == nil {
		t.Error("Close with a stuck publisher = nil")
	}
	stop()
	if n := counterValue(t, q.dropShutdown); n != 20 {
		t.Errorf("dropped shutdown = %v, want 20", n)
	}
	q.Publish(ev(21))
	if n := counterValue(t, q.dropClosed); n != 1 {
		t.Errorf("dropped closed = %v, want 1", n)
	}
	if err := q.Run(context.Background()); err != nil {
		t.Errorf("Run after Close = %v", err)
	}
}

func TestQueueRunsOnce(t *testing.T) {
	q := newTestQueue(t, &fakePublisher{}, QueueOptions{Name: "test"})
	stop := run(t, q)
	for q.Len() != 0 || len(q.sem) == 0 { // wait for Run to hold the queue
		time.Sleep(time.Millisecond)
	}
	if err := q.Run(context.Background()); !errors.Is(err, ErrQueueRunning) {
		t.Errorf("second Run = %v", err)
	}
	closeQueue(t, q)
	stop()
}

func TestQueueMetricsRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewQueue(&fakePublisher{}, QueueOptions{Name: "nats", Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewQueue(&fakePublisher{}, QueueOptions{Name: "console", Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewQueue(&fakePublisher{}, QueueOptions{Name: "nats", Registerer: reg}); err == nil {
		t.Error("a second queue named nats registered")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	want := []string{"routr_events_batches_total", "routr_events_dropped_total", "routr_events_publish_failures_total", "routr_events_published_total", "routr_events_queued"}
	if !slices.Equal(names, want) {
		t.Errorf("metrics %v, want %v", names, want)
	}
}

func TestQueuePublishDoesNotAllocate(t *testing.T) {
	q := newTestQueue(t, &fakePublisher{}, QueueOptions{Name: "test", Bound: 1 << 20})
	e := ev(1)
	// Warm the ring up to its size for this run, then measure.
	for range 2000 {
		q.Publish(e)
	}
	q.mu.Lock()
	q.r.pop(q.r.n)
	q.mu.Unlock()
	if n := testing.AllocsPerRun(500, func() { q.Publish(e) }); n != 0 {
		t.Errorf("Publish allocates %v times", n)
	}
}

func TestFanout(t *testing.T) {
	var a, b []string
	f := Fanout{SinkFunc(func(e Event) { a = append(a, e.ID) }), SinkFunc(func(e Event) { b = append(b, e.ID) }), Discard{}}
	f.Publish(ev(1))
	f.Publish(ev(2))
	if !slices.Equal(a, []string{"1", "2"}) || !slices.Equal(b, a) {
		t.Errorf("fan-out delivered %v and %v", a, b)
	}
}

// Backlogged turns on at half the bound and off at a quarter, and never
// while the publisher fails.
func TestQueueBacklogged(t *testing.T) {
	p := &fakePublisher{gate: make(chan struct{})}
	q := newTestQueue(t, p, QueueOptions{Name: "test", Bound: 8, MaxBatch: 1})
	stop := run(t, q)
	for i := range 3 {
		q.Publish(ev(i))
	}
	if q.Backlogged() {
		t.Fatal("3 of 8 queued: backlogged")
	}
	q.Publish(ev(3))
	if !q.Backlogged() {
		t.Fatal("4 of 8 queued: not backlogged")
	}
	release := func(left int) {
		t.Helper()
		p.gate <- struct{}{}
		deadline := time.Now().Add(2 * time.Second)
		for q.Len() != left {
			if time.Now().After(deadline) {
				t.Fatalf("%d queued, want %d", q.Len(), left)
			}
			time.Sleep(time.Millisecond)
		}
	}
	release(3)
	if !q.Backlogged() {
		t.Fatal("3 of 8 queued after 4: no longer backlogged")
	}
	release(2)
	if q.Backlogged() {
		t.Fatal("2 of 8 queued: still backlogged")
	}
	close(p.gate)
	closeQueue(t, q)
	stop()

	failing := &fakePublisher{fail: func(int, []Event) (int, error) { return 0, errors.New("NATS away") }}
	fq := newTestQueue(t, failing, QueueOptions{Name: "failing", Bound: 8, MaxBatch: 1})
	stopF := run(t, fq)
	for i := range 8 {
		fq.Publish(ev(i))
	}
	deadline := time.Now().Add(2 * time.Second)
	for counterValue(t, fq.failures) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no failed attempt")
		}
		time.Sleep(time.Millisecond)
	}
	if fq.Backlogged() {
		t.Fatal("backlogged while the publisher fails")
	}
	stopF()
}
