package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routr-go/routr/internal/events"
	"github.com/routr-go/routr/internal/kvwatch"
)

// Defaults of LedgerOptions.
const (
	DefaultLedgerBucket = "routr_location_calls"
	DefaultLedgerQueue  = 1 << 16
	// maxActive bounds the active calls a ledger follows for
	// MaxDuration.
	maxActive = 1 << 18
	// orphanGrace leaves the instance that routed a call this long to end
	// it at MaxDuration itself before another one does.
	orphanGrace = 2 * time.Second
	opTimeout   = 2 * time.Second
	// ledgerWorkers work through the events of different calls at once:
	// each event costs one or two key-value round trips, which a NATS
	// cluster under load or electing a leader can stretch to a second,
	// and one worker for every call let the events of a few calls wait
	// in an instance for a minute (lost if it died then). The events of
	// one call go to one worker, in order.
	ledgerWorkers = 8
)

// LedgerOptions configures a Ledger.
type LedgerOptions struct {
	// Conn is the NATS connection; required, never closed by the ledger.
	Conn *nats.Conn
	// Bucket is the ledger's key-value bucket; DefaultLedgerBucket when
	// empty. Created when missing.
	Bucket string
	// Replicas of the bucket when created; 0 means 3, or 1 on a smaller
	// cluster.
	Replicas int
	// MaxDuration is MAX_CALL_DURATION: a call still active that long
	// after its start (its routing instance died, say) is ended by
	// whichever instance gets there first. 0 means no limit.
	MaxDuration time.Duration
	// Next receives the events the ledger lets through; required.
	Next events.Sink
	// Instance names this process in call records and markers: its
	// Presence.Incarnation, so that a restarted instance is not taken
	// for the process that claimed them.
	Instance string
	// Alive, if set, tells whether the instance that routed a call is up
	// (Presence.Alive): EndUnknown leaves the calls of a live instance to
	// it, since their requests cross it, and it reports them in order.
	Alive func(instance string) bool
	// QueueSize bounds the events waiting for the ledger;
	// DefaultLedgerQueue when 0. When full, events go to Next unchecked
	// (at least once rather than lost) and are counted.
	QueueSize int // shared out between the workers
	// Registerer receives the metrics (routr_cluster_ledger_*); nil
	// registers nothing.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	Now        func() time.Time
	// TakeoverAfter is how long a marker claimed by an instance that is
	// gone stays so before this instance publishes its event;
	// DefaultTakeoverAfter when 0. It leaves time to an instance that
	// drains (withdrawn, but still publishing) to confirm its events.
	// Takeover needs Alive.
	TakeoverAfter time.Duration

	// crashAt, in tests, makes this instance behave as if it died at a
	// step of an event's way: "claimed" (marker written, the event not
	// handed on) or "sent" (the server confirmed it, the marker not yet
	// set to published).
	crashAt func(step string, e events.Event) bool
}

// Ledger is an events.Sink in front of the events pipeline that lets
// through one call.started and one call.ended per Call-ID across every
// instance sharing its bucket. For each call it creates, if absent, a
// start marker and then an end marker (JetStream's create is atomic: one
// instance wins), and keeps a record of the call while it is active, from
// which any instance can end it: when a BYE for it reaches an instance
// that did not route it (EndUnknown), or at MaxDuration when the
// instance that routed it is gone.
//
// When Next is an events.Confirmer with a NATS publisher, a marker is
// created "claimed", holding the whole event, and set to "published" once
// the server confirmed the event. Another instance publishes the event of
// a marker left claimed by an instance that is gone (marker.go), under the
// same event id, so that the stream's duplicate window drops it if it had
// gone out after all.
//
// Publish never blocks: the work happens in Run, behind a bounded queue.
type Ledger struct {
	o    LedgerOptions
	kv   jetstream.KeyValue
	qs   []chan job // one per worker; a call's jobs go to one of them
	seed maphash.Seed
	log  *slog.Logger
	done chan struct{}

	confirms bool   // Next confirms events: markers are claimed, then published
	maxValue int    // the bucket's largest value; 0 when unknown
	startRev uint64 // the bucket's last revision when the ledger opened it
	maxAge   time.Duration

	marks     chan markJob // markers to set to published
	stopMarks chan struct{}
	marksDone chan struct{}
	closeOnce sync.Once

	mu          sync.Mutex
	active      map[string]record        // key hash -> record, from watching "a.*"
	unconfirmed map[string]claimRef      // event id -> its marker, claimed by this instance
	foreign     map[string]*foreignClaim // marker key -> claimed by another instance

	m ledgerMetrics
}

// job is one event to check, one end of a call this instance does not
// know (end set), or a marker to take over from a gone owner (takeover
// set).
type job struct {
	ev       events.Event
	at       time.Time // when the event reached the ledger
	end      *unknownEnd
	takeover *takeoverJob
}

// takeoverJob names a marker claimed by owner, to take over; overdue
// once it has waited holdLimit.
type takeoverJob struct {
	key, owner string
	overdue    bool
}

type unknownEnd struct {
	callID, cause string
	code          int
	h             []events.Header
	at            time.Time
}

// record is an active call as the ledger keeps it.
type record struct {
	CallID string    `json:"callId"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Start  time.Time `json:"start"`
	Answer time.Time `json:"answer,omitzero"`
	Owner  string    `json:"owner,omitempty"`
}

// NewLedger opens (or creates) the ledger's bucket.
func NewLedger(ctx context.Context, o LedgerOptions) (*Ledger, error) {
	if o.Conn == nil || o.Next == nil {
		return nil, errors.New("cluster: ledger needs a NATS connection and a next sink")
	}
	if o.Bucket == "" {
		o.Bucket = DefaultLedgerBucket
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultLedgerQueue
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TakeoverAfter <= 0 {
		o.TakeoverAfter = DefaultTakeoverAfter
	}
	js, err := jetstream.New(o.Conn)
	if err != nil {
		return nil, fmt.Errorf("cluster: jetstream: %w", err)
	}
	maxAge := 24 * time.Hour
	if o.MaxDuration > 0 {
		maxAge = o.MaxDuration + time.Hour
	}
	kv, err := kvwatch.OpenBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket: o.Bucket, Description: "routr call ledger", History: 1, TTL: maxAge,
		MaxValueSize: 16 << 10, Storage: jetstream.FileStorage, Replicas: o.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: ledger: %w", err)
	}
	l := &Ledger{o: o, kv: kv, log: o.Logger, maxAge: maxAge, done: make(chan struct{}), seed: maphash.MakeSeed(),
		active: make(map[string]record), unconfirmed: make(map[string]claimRef), foreign: make(map[string]*foreignClaim),
		marks: make(chan markJob, max(o.QueueSize, 1)), stopMarks: make(chan struct{}), marksDone: make(chan struct{})}
	if st, err := kv.Status(ctx); err == nil {
		if b, ok := st.(*jetstream.KeyValueBucketStatus); ok && b.StreamInfo() != nil {
			l.maxValue = int(b.StreamInfo().Config.MaxMsgSize) // an older bucket may hold 4096
			l.startRev = b.StreamInfo().State.LastSeq
		}
	}
	for range ledgerWorkers {
		l.qs = append(l.qs, make(chan job, max(o.QueueSize/ledgerWorkers, 1)))
	}
	if l.m, err = newLedgerMetrics(o.Registerer, l); err != nil {
		return nil, err
	}
	if c, ok := o.Next.(events.Confirmer); ok {
		l.confirms = c.OnSent(l.confirmed)
	}
	go l.markLoops()
	return l, nil
}

// Publish implements events.Sink.
func (l *Ledger) Publish(e events.Event) {
	switch e.Type {
	case events.TypeCallStarted, events.TypeCallAnswered, events.TypeCallEnded:
	default:
		l.o.Next.Publish(e) // registrations need no ledger
		return
	}
	select {
	case l.queue(callIDOf(e.Body)) <- job{ev: e, at: time.Now()}:
	default:
		l.m.outcome("overflow")
		l.o.Next.Publish(e)
	}
}

// EndUnknown reports that a call this instance does not track ended (a
// BYE for a call another instance routed): if the ledger holds it as
// active, its call.ended is published from the record. It never blocks;
// it suits calls.Options.OnUnknownEnd.
func (l *Ledger) EndUnknown(callID, cause string, code int, h []events.Header, at time.Time) {
	select {
	case l.queue([]byte(callID)) <- job{end: &unknownEnd{callID: callID, cause: cause, code: code, h: h, at: at}}:
	default:
		l.m.outcome("overflow")
	}
}

// Run works through the queue, follows the active calls and ends those
// past MaxDuration, until ctx ends; then it works through what is left
// in the queue for up to a few seconds (events still there go to Next
// unchecked) and returns.
func (l *Ledger) Run(ctx context.Context) {
	defer close(l.done)
	var wg sync.WaitGroup
	watchCtx, stop := context.WithCancel(ctx)
	wg.Go(func() { l.watch(watchCtx) })
	if l.confirms && l.o.Alive != nil {
		wg.Go(func() { l.watchMarkers(watchCtx) })
	}
	for _, q := range l.qs {
		wg.Go(func() {
			for {
				select {
				case j := <-q:
					l.handle(ctx, j)
				case <-ctx.Done():
					return
				}
			}
		})
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			l.sweep()
			if l.confirms && l.o.Alive != nil {
				l.sweepClaims(l.o.Now())
			}
		case <-ctx.Done():
			stop()
			wg.Wait()
			l.drain()
			return
		}
	}
}

// queue is the worker queue of a call, by its Call-ID (as written in
// the events' JSON: only the same call needs the same queue).
func (l *Ledger) queue(callID []byte) chan job {
	return l.qs[maphash.Bytes(l.seed, callID)%uint64(len(l.qs))]
}

// callIDOf returns the callId of an event body as it is written there,
// without decoding the JSON (Publish runs on the SIP path).
func callIDOf(body []byte) []byte {
	const k = `"callId":"`
	i := bytes.Index(body, []byte(k))
	if i < 0 {
		return nil
	}
	rest := body[i+len(k):]
	escaped := false
	for j := 0; j < len(rest); j++ {
		switch rest[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			if !escaped {
				return rest[:j]
			}
			// Rare: decode, so that the queue is the one EndUnknown
			// and takeovers pick from the plain Call-ID.
			var id string
			start := i + len(k) - 1 // the opening quote
			if json.Unmarshal(body[start:start+j+2], &id) == nil {
				return []byte(id)
			}
			return rest[:j]
		}
	}
	return rest
}

// queued counts the jobs waiting in every worker queue.
func (l *Ledger) queued() int {
	n := 0
	for _, q := range l.qs {
		n += len(q)
	}
	return n
}

// Done is closed when Run has returned and the queue is drained.
func (l *Ledger) Done() <-chan struct{} { return l.done }

func (l *Ledger) drain() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, q := range l.qs {
	queue:
		for {
			select {
			case j := <-q:
				if ctx.Err() != nil {
					if j.end == nil && j.takeover == nil {
						l.o.Next.Publish(j.ev)
					}
					continue
				}
				l.handle(ctx, j)
			default:
				break queue
			}
		}
	}
}

func (l *Ledger) handle(ctx context.Context, j job) {
	if j.end != nil {
		l.endUnknown(ctx, j.end)
		return
	}
	if j.takeover != nil {
		l.takeover(ctx, j.takeover)
		return
	}
	var body struct {
		CallID     string    `json:"callId"`
		From       string    `json:"from"`
		To         string    `json:"to"`
		StartTime  time.Time `json:"startTime"`
		AnswerTime time.Time `json:"answerTime"`
	}
	if err := json.Unmarshal(j.ev.Body, &body); err != nil || body.CallID == "" {
		l.o.Next.Publish(j.ev)
		return
	}
	h := callKey(body.CallID)
	switch j.ev.Type {
	case events.TypeCallStarted:
		rev, ok := l.claim(ctx, "s."+h, j.ev)
		l.m.claimed.Observe(time.Since(j.at).Seconds())
		if !ok || l.crashed("claimed", j.ev) {
			return
		}
		rec := record{CallID: body.CallID, From: body.From, To: body.To, Start: body.StartTime, Owner: l.o.Instance}
		l.putRecord(ctx, h, rec)
		l.handOn(j.ev, "s."+h, rev)
	case events.TypeCallAnswered:
		if rec, rev, ok := l.getRecord(ctx, h); ok {
			rec.Answer = body.AnswerTime
			if v, err := json.Marshal(rec); err == nil {
				opCtx, cancel := context.WithTimeout(ctx, opTimeout)
				_, _ = l.kv.Update(opCtx, "a."+h, v, rev)
				cancel()
			}
		}
		l.o.Next.Publish(j.ev)
	case events.TypeCallEnded:
		rev, ok := l.claim(ctx, "e."+h, j.ev)
		l.m.claimed.Observe(time.Since(j.at).Seconds())
		if !ok || l.crashed("claimed", j.ev) {
			return
		}
		l.deleteRecord(ctx, h)
		l.handOn(j.ev, "e."+h, rev)
	}
}

// crashed reports whether a test makes this instance die at step.
func (l *Ledger) crashed(step string, e events.Event) bool {
	return l.o.crashAt != nil && l.o.crashAt(step, e)
}

// claim creates key if absent, with the event's marker as value, and
// reports whether this instance may publish the event: it created the
// key (maybe in an earlier attempt whose answer was lost: the value says
// so), or NATS could not tell after a few attempts (then the event goes
// out unchecked rather than not at all). rev is the marker's revision
// when it is claimed, to be set to published once the event is
// confirmed; 0 otherwise.
func (l *Ledger) claim(ctx context.Context, key string, ev events.Event) (rev uint64, ok bool) {
	val, claimed := l.markerValue(ev)
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		opCtx, cancel := context.WithTimeout(context.Background(), opTimeout)
		rev, err = l.kv.Create(opCtx, key, val)
		if kvwatch.IsConflict(err) {
			e, gerr := l.kv.Get(opCtx, key)
			cancel()
			if gerr != nil {
				err = gerr
				continue
			}
			if m, _ := parseMarker(e.Value()); m.ID == ev.ID {
				l.m.outcome("published")
				if claimed && m.State == stateClaimed && m.Owner == l.o.Instance {
					return e.Revision(), true
				}
				return 0, true
			}
			l.m.outcome("duplicate")
			return 0, false
		}
		cancel()
		if err == nil {
			l.m.outcome("published")
			if !claimed {
				rev = 0
			}
			return rev, true
		}
	}
	l.m.outcome("unchecked")
	l.log.Warn("call ledger unavailable: event published unchecked", "key", key, "error", err)
	return 0, true
}

func (l *Ledger) putRecord(ctx context.Context, h string, rec record) {
	v, err := json.Marshal(rec)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if _, err := l.kv.Put(ctx, "a."+h, v); err != nil {
		l.log.Warn("call ledger: record not kept", "call_id", rec.CallID, "error", err)
	}
}

func (l *Ledger) getRecord(ctx context.Context, h string) (record, uint64, bool) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	e, err := l.kv.Get(ctx, "a."+h)
	if err != nil {
		return record{}, 0, false
	}
	var rec record
	if json.Unmarshal(e.Value(), &rec) != nil || rec.CallID == "" {
		return record{}, 0, false
	}
	return rec, e.Revision(), true
}

func (l *Ledger) deleteRecord(ctx context.Context, h string) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	_ = l.kv.Purge(ctx, "a."+h)
}

// endUnknown ends, from its record, an active call another instance
// routed.
func (l *Ledger) endUnknown(ctx context.Context, u *unknownEnd) {
	h := callKey(u.callID)
	rec, _, ok := l.getRecord(ctx, h)
	if !ok {
		return
	}
	if rec.Owner != l.o.Instance && rec.Owner != "" && l.o.Alive != nil && l.o.Alive(rec.Owner) {
		l.m.outcome("left_to_owner")
		return
	}
	ev := events.CallEnded(events.CallEnd{
		CallID: rec.CallID, From: rec.From, To: rec.To,
		StartTime: rec.Start, AnswerTime: rec.Answer, EndTime: u.at,
		HangupCause: u.cause, SIPCode: u.code, ExtraHeaders: u.h,
	})
	if l.confirms && l.o.Alive != nil && rec.Owner != l.o.Instance {
		// Its call.started may still be claimed by the gone owner: out
		// with it first. (Should another instance hold it, the end goes
		// anyway: there is no later chance for it.)
		l.startPublished(ctx, h, rec.Owner)
	}
	rev, ok := l.claim(ctx, "e."+h, ev)
	if !ok {
		return
	}
	l.deleteRecord(ctx, h)
	l.m.outcome("ended_elsewhere")
	l.handOn(ev, "e."+h, rev)
}

// watch follows the active records, for sweep.
func (l *Ledger) watch(ctx context.Context) {
	kvwatch.Follow(ctx, l.o.Conn, 0,
		func(ctx context.Context, last uint64) (jetstream.KeyWatcher, error) {
			return l.kv.Watch(ctx, "a.*", kvwatch.Resume(last)...)
		},
		l.follow, nil)
}

func (l *Ledger) follow(e jetstream.KeyValueEntry) {
	h := e.Key()[len("a."):]
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(l.active, h)
		return
	}
	var rec record
	if json.Unmarshal(e.Value(), &rec) != nil || rec.CallID == "" {
		return
	}
	if _, ok := l.active[h]; !ok && len(l.active) >= maxActive {
		l.m.outcome("not_followed")
		return
	}
	l.active[h] = rec
}

// sweep ends the active calls past MaxDuration (plus a grace for the
// instance that routed them): whichever instance's end marker wins
// publishes call.ended.
func (l *Ledger) sweep() {
	if l.o.MaxDuration <= 0 {
		return
	}
	now := l.o.Now()
	var due []record
	l.mu.Lock()
	for h, rec := range l.active {
		if now.Sub(rec.Start) >= l.o.MaxDuration+orphanGrace {
			due = append(due, rec)
			delete(l.active, h)
		}
	}
	l.mu.Unlock()
	for _, rec := range due {
		l.EndUnknown(rec.CallID, events.CauseAllottedTimeout, 0, nil, now)
	}
}

// callKey is the key token of a Call-ID: Call-IDs may hold characters a
// key may not.
func callKey(callID string) string {
	sum := sha256.Sum256([]byte(callID))
	return base64.RawURLEncoding.EncodeToString(sum[:18])
}

type ledgerMetrics struct {
	outcomes *prometheus.CounterVec
	claimed  prometheus.Histogram
}

func (m ledgerMetrics) outcome(o string) { m.outcomes.WithLabelValues(o).Inc() }

func newLedgerMetrics(reg prometheus.Registerer, l *Ledger) (ledgerMetrics, error) {
	m := ledgerMetrics{outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "routr", Subsystem: "cluster", Name: "ledger_events_total",
		Help: "Call events through the shared call ledger: published, duplicate (another instance published it), unchecked (ledger unavailable), overflow (queue full), ended_elsewhere, left_to_owner (the routing instance is up), not_followed; republished (the event of a gone instance), takeover_lost (another instance republished it), taken_over (another instance took this one's marker), end_held (call.ended waits for call.started), unmarked, mark_failed, too_big (event too big for its marker: no takeover).",
	}, []string{"outcome"}),
		claimed: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "routr", Subsystem: "cluster", Name: "ledger_claim_seconds",
			Help:    "From a call event reaching the ledger to its marker written: the window in which an instance killed loses the event.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.outcomes, m.claimed,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "routr", Subsystem: "cluster", Name: "ledger_queue_length",
			Help: "Call events waiting for the ledger (bounded by its queue size).",
		}, func() float64 { return float64(l.queued()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "routr", Subsystem: "cluster", Name: "active_calls",
			Help: "Active calls of every instance, as this instance follows them in the ledger.",
		}, func() float64 { l.mu.Lock(); defer l.mu.Unlock(); return float64(len(l.active)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "routr", Subsystem: "cluster", Name: "ledger_marks_queued",
			Help: "Confirmed events whose markers wait to be set to published (bounded by the ledger's queue size; past it they stay claimed, counted as outcome unmarked).",
		}, func() float64 { return float64(len(l.marks)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "routr", Subsystem: "cluster", Name: "ledger_unconfirmed",
			Help: "Markers this instance claimed whose event the NATS server has not confirmed yet.",
		}, func() float64 { l.mu.Lock(); defer l.mu.Unlock(); return float64(len(l.unconfirmed)) }),
	} {
		if err := reg.Register(c); err != nil {
			return m, fmt.Errorf("cluster: register metrics: %w", err)
		}
	}
	return m, nil
}
