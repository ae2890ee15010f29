package events

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// batchSizes returns a fakePublisher that records the size of every
// batch it is handed, and a function reading them.
func batchSizes() (*fakePublisher, func() []int) {
	var mu sync.Mutex
	var sizes []int
	p := &fakePublisher{fail: func(_ int, batch []Event) (int, error) {
		mu.Lock()
		sizes = append(sizes, len(batch))
		mu.Unlock()
		return len(batch), nil
	}}
	return p, func() []int {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(sizes)
	}
}

// lingerSignal makes q report on the returned channel each time it starts
// to wait for a batch to fill.
func lingerSignal(q *Queue) <-chan struct{} {
	ch := make(chan struct{}, 1)
	q.lingering = func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	return ch
}

// waitLingering waits (10 s at most) until q waits for its batch to fill.
func waitLingering(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("the queue did not wait for more events")
	}
}

// published waits (10 s at most, far more than it takes) until q has
// confirmed n events: a queue that lingers where it must not never gets
// there.
func published(t *testing.T, q *Queue, n float64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); counterValue(t, q.published) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("published %v events, want %v", counterValue(t, q.published), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestQueueLingerFillsBatches: events published within the linger share
// one round trip, and a full batch goes without waiting for the linger.
func TestQueueLingerFillsBatches(t *testing.T) {
	p, sizes := batchSizes()
	q := newTestQueue(t, p, QueueOptions{Name: "test", MaxBatch: 10, Linger: time.Hour})
	lingering := lingerSignal(q)
	stop := run(t, q)
	for i := range 25 {
		e := ev(i)
		e.Time = time.Now()
		q.Publish(e)
		if i == 0 || i == 20 {
			waitLingering(t, lingering) // nothing sent yet: it waits for more
		}
	}
	published(t, q, 20)
	closeQueue(t, q)
	stop()
	if got := sizes(); !slices.Equal(got, []int{10, 10, 5}) {
		t.Errorf("batches %v, want 10, 10 and 5 (at Close)", got)
	}
	if n := counterValue(t, q.batches); n != 3 {
		t.Errorf("batches_total = %v, want 3", n)
	}
	if got := p.ids(); !slices.Equal(got, ids(0, 25)) {
		t.Errorf("published %v, want 0..24 in order", got)
	}
}

// TestQueueLingerEndsAtClose: Close sends what lingers at once.
func TestQueueLingerEndsAtClose(t *testing.T) {
	p, sizes := batchSizes()
	q := newTestQueue(t, p, QueueOptions{Name: "test", Linger: time.Hour})
	lingering := lingerSignal(q)
	stop := run(t, q)
	for i := range 3 {
		e := ev(i)
		e.Time = time.Now()
		q.Publish(e)
		if i == 0 {
			waitLingering(t, lingering)
		}
	}
	closeQueue(t, q)
	stop()
	if got := sizes(); !slices.Equal(got, []int{3}) {
		t.Errorf("batches %v, want one of 3", got)
	}
}

// TestQueueLingerCountsFromTheEvent: an event that happened longer than
// the linger ago (it waited behind an outage, or in the call ledger) is
// sent at once.
func TestQueueLingerCountsFromTheEvent(t *testing.T) {
	p, sizes := batchSizes()
	q := newTestQueue(t, p, QueueOptions{Name: "test", Linger: time.Hour})
	stop := run(t, q)
	e := ev(0)
	e.Time = time.Now().Add(-2 * time.Hour)
	q.Publish(e)
	published(t, q, 1)
	closeQueue(t, q)
	stop()
	if got := sizes(); !slices.Equal(got, []int{1}) {
		t.Errorf("batches %v, want one of 1", got)
	}
}

// TestQueueLingerEndsWhenFull: a queue bounded below MaxBatch sends once
// it is full rather than dropping events while it lingers.
func TestQueueLingerEndsWhenFull(t *testing.T) {
	p, sizes := batchSizes()
	q := newTestQueue(t, p, QueueOptions{Name: "test", Bound: 5, Linger: time.Hour})
	lingering := lingerSignal(q)
	stop := run(t, q)
	for i := range 5 {
		e := ev(i)
		e.Time = time.Now()
		q.Publish(e)
		if i == 0 {
			waitLingering(t, lingering)
		}
	}
	published(t, q, 5)
	closeQueue(t, q)
	stop()
	if got := sizes(); !slices.Equal(got, []int{5}) {
		t.Errorf("batches %v, want one of 5", got)
	}
}
