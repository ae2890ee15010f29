package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of QueueOptions.
const (
	// DefaultQueueBound is the default number of events a Queue keeps
	// while its publisher is slow or away: at ~400 bytes an event, about
	// 40 MB at most.
	DefaultQueueBound = 100_000
	// DefaultMaxBatch is the default number of events sent per round trip:
	// what a backlog drains by. With 256, an edge whose CPUs the SIP load
	// kept busy (round trips of several ms) fell behind at 18,000
	// events/s and refused new calls; with 2,048 it kept up.
	DefaultMaxBatch = 2048
	// DefaultLinger is how long, by default, an event waits for others to
	// share its batch (and its round trip): at 6,000 events/s (2,000
	// calls/s), batches of ~120, against ~4 without it, which cut the CPU
	// an event costs the edge by 2-3x (BenchmarkPipelinePaced). Consumers
	// get events up to this much later.
	DefaultLinger = 20 * time.Millisecond
)

// QueueOptions configures a Queue.
type QueueOptions struct {
	// Name identifies the publisher in metrics (label publisher) and logs,
	// e.g. "nats" or "console".
	Name string
	// Bound is the most events kept that the publisher has not confirmed
	// yet, including those being sent; when reached, new events are
	// dropped (see Queue). 0 means DefaultQueueBound.
	Bound int
	// MaxBatch is the most events handed to a BatchPublisher at once; 0
	// means DefaultMaxBatch.
	MaxBatch int
	// Linger is how long the queue lets the oldest unsent event wait for
	// others before sending, unless MaxBatch events are waiting or the
	// queue is closing. Each batch costs a confirmation round trip (for
	// NATS a PING/PONG: wake-ups and system calls on both sides, the
	// server's included), which sending every event on its own would pay
	// per event. 0 means DefaultLinger; negative sends at once.
	Linger time.Duration
	// AttemptTimeout bounds one Send or SendBatch call (waiting for a
	// reconnect included), so that the queue reports on itself regularly
	// during an outage; 0 means 10s.
	AttemptTimeout time.Duration
	// RetryMin and RetryMax bound the exponential pause after a failed
	// attempt (not after ErrDisconnected, which already waited); 0 means
	// 100ms and 5s.
	RetryMin, RetryMax time.Duration
	// Registerer receives the queue's metrics (namespace routr, subsystem
	// events, constant label publisher=Name); nil registers nothing.
	Registerer prometheus.Registerer
	// Logger receives outage and overflow reports; nil means slog.Default().
	Logger *slog.Logger
}

// Queue is a Sink in front of one Publisher: a bounded, in-order buffer
// drained by one goroutine (Run) that sends events in batches and removes
// them only once the publisher confirmed them, retrying until it does.
//
// Overflow: when Bound events are waiting, Publish drops the event being
// published (the newest) and counts it in
// routr_events_dropped_total{reason="overflow"}. Queued events are never
// thrown away to make room: an event the queue accepted is published
// unless the process shuts down before it can be (reason="shutdown"). So
// during an outage the first Bound events are kept and published in order
// when the connection is back, and what is lost is a contiguous run of the
// latest events, reported in the metrics and the log.
//
// Batches: the first event published into an empty queue waits up to
// Linger for others, so that many events share one confirmation round
// trip.
//
// Metrics: routr_events_published_total, routr_events_batches_total,
// routr_events_dropped_total{reason}, routr_events_queued,
// routr_events_publish_failures_total, each with the constant label
// publisher.
type Queue struct {
	pub            Publisher
	batcher        BatchPublisher
	name           string
	bound          int
	maxBatch       int
	fullBatch      int // min(maxBatch, bound): events that end a linger
	linger         time.Duration
	attemptTimeout time.Duration
	retryMin       time.Duration
	retryMax       time.Duration
	log            *slog.Logger
	lingering      func() // tests: called when the drainer starts to wait for a batch to fill

	mu       sync.Mutex
	r        ring
	closed   bool
	overflow uint64 // events dropped because the queue was full, ever

	wake     chan struct{} // a Publish or Close happened
	sem      chan struct{} // held by the goroutine draining: Run or Close
	abortCtx context.Context
	abort    context.CancelFunc

	onSent atomic.Pointer[func([]Event)] // see OnSent

	// failing is set by the drainer while its publisher fails, shedding
	// while Backlogged says yes (hysteresis).
	failing  atomic.Bool
	shedding atomic.Bool

	published    prometheus.Counter
	batches      prometheus.Counter
	failures     prometheus.Counter
	dropOverflow prometheus.Counter
	dropRejected prometheus.Counter
	dropShutdown prometheus.Counter
	dropClosed   prometheus.Counter
	queued       prometheus.GaugeFunc
}

// NewQueue returns a Queue in front of p; call Run to drain it and Close
// to flush it. It fails only if its metrics cannot be registered.
func NewQueue(p Publisher, o QueueOptions) (*Queue, error) {
	if o.Bound <= 0 {
		o.Bound = DefaultQueueBound
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.Linger == 0 {
		o.Linger = DefaultLinger
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = 10 * time.Second
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 100 * time.Millisecond
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(5*time.Second, o.RetryMin)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	q := &Queue{
		pub:            p,
		name:           o.Name,
		bound:          o.Bound,
		maxBatch:       o.MaxBatch,
		fullBatch:      min(o.MaxBatch, o.Bound),
		linger:         max(o.Linger, 0),
		attemptTimeout: o.AttemptTimeout,
		retryMin:       o.RetryMin,
		retryMax:       o.RetryMax,
		log:            o.Logger.With("publisher", o.Name),
		r:              ring{buf: make([]Event, min(o.Bound, ringMinCap))},
		wake:           make(chan struct{}, 1),
		sem:            make(chan struct{}, 1),
	}
	q.batcher, _ = p.(BatchPublisher)
	q.abortCtx, q.abort = context.WithCancel(context.Background())

	labels := prometheus.Labels{"publisher": o.Name}
	counter := func(name, help string, extra prometheus.Labels) prometheus.Counter {
		l := prometheus.Labels{}
		for k, v := range labels {
			l[k] = v
		}
		for k, v := range extra {
			l[k] = v
		}
		return prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "routr", Subsystem: "events", Name: name, Help: help, ConstLabels: l,
		})
	}
	const dropHelp = "Events dropped, by reason: overflow (queue full, newest dropped), rejected (refused for good by the server), shutdown (left when Close timed out), closed (published after Close)."
	q.published = counter("published_total", "Events confirmed by the publisher.", nil)
	q.batches = counter("batches_total", "Batches the publisher confirmed (one round trip each): published_total over batches_total is the events per round trip.", nil)
	q.failures = counter("publish_failures_total", "Failed publish attempts (the events are kept and retried).", nil)
	q.dropOverflow = counter("dropped_total", dropHelp, prometheus.Labels{"reason": "overflow"})
	q.dropRejected = counter("dropped_total", dropHelp, prometheus.Labels{"reason": "rejected"})
	q.dropShutdown = counter("dropped_total", dropHelp, prometheus.Labels{"reason": "shutdown"})
	q.dropClosed = counter("dropped_total", dropHelp, prometheus.Labels{"reason": "closed"})
	q.queued = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "routr", Subsystem: "events", Name: "queued",
		Help: "Events waiting to be confirmed by the publisher.", ConstLabels: labels,
	}, func() float64 { return float64(q.Len()) })
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{q.published, q.batches, q.failures, q.dropOverflow, q.dropRejected, q.dropShutdown, q.dropClosed, q.queued} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("events queue %q: register metrics: %w", o.Name, err)
			}
		}
	}
	return q, nil
}

// Publish queues e; it never blocks. When the queue is full e is dropped
// and counted; after Close every event is dropped and counted.
func (q *Queue) Publish(e Event) {
	q.mu.Lock()
	switch {
	case q.closed:
		q.mu.Unlock()
		q.dropClosed.Inc()
		return
	case q.r.n >= q.bound:
		q.overflow++
		q.mu.Unlock()
		q.dropOverflow.Inc()
		return
	}
	q.r.push(e, q.bound)
	// Wake the drainer only when it may be waiting for this event: the
	// queue was empty, or a batch is now full (it may be lingering).
	// Waking it for every event would cost a goroutine switch per event.
	wake := q.r.n == 1 || q.r.n == q.fullBatch
	q.mu.Unlock()
	if wake {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// OnSent registers f, called with every run of events the publisher has
// just confirmed, in order, from the goroutine that drains the queue: f
// must not block, and must not keep the slice. Set it before Run; a later
// call replaces it.
func (q *Queue) OnSent(f func([]Event)) { q.onSent.Store(&f) }

// Len returns the number of events waiting to be confirmed.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.r.n
}

// Backlogged reports that the publisher, while it works, is not keeping
// up: half the queue's bound is waiting. It stays so until a quarter is
// left. The edge then refuses new calls and registrations (503) rather
// than make events the queue would have to drop; while the publisher
// fails (NATS away) it reports false: SIP goes on, events are kept up to
// the bound.
func (q *Queue) Backlogged() bool {
	if q.failing.Load() {
		return false
	}
	n := q.Len()
	on := q.shedding.Load()
	switch {
	case !on && n >= q.bound/2:
		q.shedding.Store(true)
		return true
	case on && n <= q.bound/4:
		q.shedding.Store(false)
		return false
	}
	return on
}

// ErrQueueRunning is returned by Run when another Run is draining the queue.
var ErrQueueRunning = errors.New("events: queue is already running")

// Run sends queued events, in order, until ctx ends or Close has flushed
// the queue; it returns nil then. Only one Run drains a queue at a time: a
// second one returns ErrQueueRunning (nil once Close was called).
func (q *Queue) Run(ctx context.Context) error {
	select {
	case q.sem <- struct{}{}:
	default:
		q.mu.Lock()
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil // Close is flushing (it set closed before taking q.sem)
		}
		return ErrQueueRunning
	}
	defer func() { <-q.sem }()
	q.drain(ctx)
	return nil
}

// Close stops accepting events and publishes those still queued, waiting
// for Run to do so or doing it itself if Run is not running, until the
// queue is empty or ctx ends. Events still queued then are dropped,
// counted (reason="shutdown") and reported in the returned error. Close
// does not close the publisher.
func (q *Queue) Close(ctx context.Context) error {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}

	select {
	case q.sem <- struct{}{}:
		// Run is not running (or has just finished): flush here.
		q.drain(ctx)
	case <-ctx.Done():
		// Run is still sending: stop its attempt and wait for it to go.
		q.abort()
		q.sem <- struct{}{}
	}
	q.abort()
	<-q.sem

	q.mu.Lock()
	left := q.r.n
	q.r.pop(left)
	q.mu.Unlock()
	if left > 0 {
		q.dropShutdown.Add(float64(left))
		q.log.Error("events not published before shutdown", "dropped", left)
		return fmt.Errorf("events queue %q: %d events not published before shutdown: %w", q.name, left, context.Cause(ctx))
	}
	return nil
}

// drain sends events until ctx ends, the queue is aborted, or it is closed
// and empty. The caller holds q.sem.
func (q *Queue) drain(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(q.abortCtx, cancel)
	defer stop()

	var (
		batch        = make([]Event, 0, q.maxBatch)
		pause        time.Duration
		failingSince time.Time
		lastReport   time.Time
		reported     uint64 // overflow count already logged
		lingerTimer  *time.Timer
		lingerUntil  time.Time // when the batch being filled goes; zero: none
	)
	defer func() {
		if lingerTimer != nil {
			lingerTimer.Stop()
		}
	}()
	for {
		q.mu.Lock()
		n, closed, overflow := q.r.n, q.closed, q.overflow
		batch = q.r.peek(batch[:0], q.maxBatch)
		q.mu.Unlock()

		if overflow != reported && time.Since(lastReport) >= 10*time.Second {
			q.log.Warn("events queue full: newest events dropped", "dropped", overflow-reported, "bound", q.bound)
			reported, lastReport = overflow, time.Now()
		}
		if n == 0 {
			if closed {
				return
			}
			select {
			case <-q.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		// Let the batch fill up, counting from when its oldest event
		// happened (an event that already waited, e.g. during a round
		// trip or an outage, goes at once).
		if wait := q.lingerFor(&lingerUntil, batch, n, closed, failingSince); wait > 0 {
			if lingerTimer == nil {
				lingerTimer = time.NewTimer(wait)
			} else {
				lingerTimer.Reset(wait)
			}
			if q.lingering != nil {
				q.lingering()
			}
			select {
			case <-lingerTimer.C:
			case <-q.wake: // maybe a full batch, or Close: look again
				lingerTimer.Stop()
			case <-ctx.Done():
				return
			}
			clear(batch)
			continue
		}
		lingerUntil = time.Time{}

		sent, err := q.send(ctx, batch)
		if sent > 0 {
			q.mu.Lock()
			q.r.pop(sent)
			q.mu.Unlock()
			q.published.Add(float64(sent))
			q.batches.Inc()
			if f := q.onSent.Load(); f != nil {
				(*f)(batch[:sent])
			}
		}
		clear(batch)
		if err == nil {
			if !failingSince.IsZero() {
				q.log.Info("events publishing again", "after", time.Since(failingSince).Round(time.Millisecond))
				failingSince = time.Time{}
				q.failing.Store(false)
			}
			pause = 0
			continue
		}
		if IsPermanent(err) {
			q.mu.Lock()
			q.r.pop(1)
			q.mu.Unlock()
			q.dropRejected.Inc()
			q.log.Error("event rejected, dropped", "error", err)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		q.failures.Inc()
		if failingSince.IsZero() {
			failingSince = time.Now()
			q.failing.Store(true)
			q.log.Warn("events publishing failed, keeping events and retrying", "error", err, "queued", n)
		}
		if errors.Is(err, ErrDisconnected) {
			pause = 0 // the publisher already waited for the connection
			continue
		}
		pause = min(max(2*pause, q.retryMin), q.retryMax)
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// lingerFor returns how long to wait before sending batch, n events
// being queued: until *until, which it sets when zero to the linger after
// the oldest event happened (Event.Time) or after now, whichever is
// first. It returns 0 when n events make a full batch (or fill the
// queue), the queue is closing or the publisher is failing (retries follow their own pace).
func (q *Queue) lingerFor(until *time.Time, batch []Event, n int, closed bool, failingSince time.Time) time.Duration {
	if q.linger <= 0 || n >= q.fullBatch || closed || !failingSince.IsZero() || len(batch) == 0 {
		return 0
	}
	now := time.Now()
	if until.IsZero() {
		*until = now.Add(q.linger)
		if at := batch[0].Time; !at.IsZero() && at.Add(q.linger).Before(*until) {
			*until = at.Add(q.linger)
		}
	}
	return until.Sub(now)
}

// send hands batch to the publisher within one attempt timeout and returns
// how many events at its head were confirmed.
func (q *Queue) send(ctx context.Context, batch []Event) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, q.attemptTimeout)
	defer cancel()
	if q.batcher != nil {
		n, err := q.batcher.SendBatch(ctx, batch)
		return min(max(n, 0), len(batch)), err
	}
	for i := range batch {
		if err := q.pub.Send(ctx, batch[i]); err != nil {
			return i, err
		}
	}
	return len(batch), nil
}

// ringMinCap is the initial (and shrunk-to) capacity of a queue's ring.
const ringMinCap = 1024

// ring is a FIFO of events that grows up to the queue's bound and shrinks
// back once empty, so an outage does not pin its memory forever.
type ring struct {
	buf  []Event
	head int
	n    int
}

func (r *ring) push(e Event, bound int) {
	if r.n == len(r.buf) {
		grown := make([]Event, min(max(2*len(r.buf), ringMinCap), bound))
		k := copy(grown, r.buf[r.head:])
		copy(grown[k:], r.buf[:r.head])
		r.buf, r.head = grown, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = e
	r.n++
}

// peek appends up to max events from the head to dst.
func (r *ring) peek(dst []Event, max int) []Event {
	k := min(r.n, max)
	end := r.head + k
	if end <= len(r.buf) {
		return append(dst, r.buf[r.head:end]...)
	}
	dst = append(dst, r.buf[r.head:]...)
	return append(dst, r.buf[:end-len(r.buf)]...)
}

// pop removes k events from the head, releasing their bodies.
func (r *ring) pop(k int) {
	k = min(k, r.n)
	for i := 0; i < k; i++ {
		r.buf[(r.head+i)%len(r.buf)] = Event{}
	}
	r.head = (r.head + k) % max(len(r.buf), 1)
	r.n -= k
	if r.n == 0 {
		r.head = 0
		if len(r.buf) > 4*ringMinCap {
			r.buf = make([]Event, ringMinCap)
		}
	}
}
