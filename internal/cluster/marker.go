package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/routr-go/routr/internal/events"
	"github.com/routr-go/routr/internal/kvwatch"
)

// Marker states.
const (
	// stateClaimed: the instance named owner won the marker and holds the
	// event; nobody knows yet that it reached NATS.
	stateClaimed = "claimed"
	// statePublished: the NATS server confirmed the event.
	statePublished = "published"
)

// DefaultTakeoverAfter is how long a marker stays claimed by an instance
// that is gone before another instance publishes its event.
const DefaultTakeoverAfter = 5 * time.Second

// holdLimit bounds how long a survivor holds back the call.ended of a
// gone instance while another instance, up, holds the call's call.started
// claimed: long past its publisher's confirmation, its marker was not set
// to published (lost confirmation), and the end must not wait forever.
const holdLimit = 30 * time.Second

// markerSlack is left under the bucket's largest value for the headers
// JetStream adds to a key-value write.
const markerSlack = 256

// marker is the value of a start ("s.") or end ("e.") key. While claimed
// it holds the whole event, so that another instance can publish it, with
// the same id, if its owner dies before the NATS server confirmed it;
// once published only its id is kept. A value that is not JSON is a
// marker written by an older version: its id, published.
type marker struct {
	ID    string          `json:"id"`
	State string          `json:"state"`
	Owner string          `json:"owner,omitempty"`
	Type  string          `json:"type,omitempty"`
	Time  time.Time       `json:"time,omitzero"`
	Body  json.RawMessage `json:"body,omitempty"`
}

func parseMarker(v []byte) (marker, bool) {
	if len(v) == 0 {
		return marker{}, false
	}
	if v[0] != '{' {
		return marker{ID: string(v), State: statePublished}, true
	}
	var m marker
	if json.Unmarshal(v, &m) != nil || m.ID == "" {
		return marker{}, false
	}
	return m, true
}

func (m marker) event() events.Event {
	return events.Event{ID: m.ID, Type: m.Type, Time: m.Time, Body: m.Body}
}

func published(id string) []byte {
	v, _ := json.Marshal(marker{ID: id, State: statePublished})
	return v
}

// markerValue is the marker this instance creates for e, and whether it
// is claimed (to be marked published once the server confirms e). It is
// published at once when no confirmation will come (no NATS publisher),
// or when the event does not fit in the bucket's values: then nobody can
// publish e in this instance's place.
func (l *Ledger) markerValue(e events.Event) ([]byte, bool) {
	if l.confirms {
		v, err := json.Marshal(marker{ID: e.ID, State: stateClaimed, Owner: l.o.Instance, Type: e.Type, Time: e.Time, Body: e.Body})
		if err == nil && (l.maxValue <= 0 || len(v) <= l.maxValue-markerSlack) {
			return v, true
		}
		l.m.outcome("too_big")
	}
	return published(e.ID), false
}

// claimRef is a marker this instance claimed, until the server confirms
// its event.
type claimRef struct {
	key string
	rev uint64
}

// handOn passes e to Next; when its marker (key at rev) is claimed, the
// marker is set to published once the publisher confirms e.
func (l *Ledger) handOn(e events.Event, key string, rev uint64) {
	if rev != 0 {
		l.mu.Lock()
		if len(l.unconfirmed) < maxActive {
			l.unconfirmed[e.ID] = claimRef{key, rev}
		} else {
			l.m.outcome("unmarked")
		}
		l.mu.Unlock()
	}
	l.o.Next.Publish(e)
}

// confirmed is the publisher's report of the events the server confirmed
// (events.Confirmer): their markers are set to published, in the
// background. It never blocks.
func (l *Ledger) confirmed(evs []events.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.unconfirmed) == 0 {
		return
	}
	for _, e := range evs {
		c, ok := l.unconfirmed[e.ID]
		if !ok {
			continue
		}
		delete(l.unconfirmed, e.ID)
		if l.o.crashAt != nil && l.o.crashAt("sent", e) {
			continue
		}
		select {
		case l.marks <- markJob{key: c.key, rev: c.rev, id: e.ID}:
		default:
			l.m.outcome("unmarked")
		}
	}
}

type markJob struct {
	key, id string
	rev     uint64
}

// markWorkers set markers to published side by side: one key-value round
// trip each, which one worker would do one after the other at fewer
// events per second than a busy edge confirms.
const markWorkers = 4

// markLoops runs markWorkers markLoops and closes marksDone when all have
// returned.
func (l *Ledger) markLoops() {
	var wg sync.WaitGroup
	for range markWorkers {
		wg.Go(l.markLoop)
	}
	wg.Wait()
	close(l.marksDone)
}

// markLoop sets markers to published until Close; then it works through
// what is left for a few seconds.
func (l *Ledger) markLoop() {
	for {
		select {
		case m := <-l.marks:
			l.mark(context.Background(), m)
		case <-l.stopMarks:
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			for {
				select {
				case m := <-l.marks:
					if ctx.Err() == nil {
						l.mark(ctx, m)
					}
				default:
					return
				}
			}
		}
	}
}

func (l *Ledger) mark(ctx context.Context, m markJob) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	_, err := l.kv.Update(ctx, m.key, published(m.id), m.rev)
	switch {
	case err == nil:
	case kvwatch.IsConflict(err):
		// Another instance took the marker over (this one looked gone):
		// it publishes the same event id, which the stream drops.
		l.m.outcome("taken_over")
	default:
		l.m.outcome("mark_failed")
		l.log.Warn("call ledger: marker not set to published", "key", m.key, "event_id", m.id, "error", err)
	}
}

// Close stops setting markers to published, after those the publisher
// confirmed so far (for up to a few seconds): call it once the events
// pipeline is flushed, before closing the NATS connection.
func (l *Ledger) Close() {
	l.closeOnce.Do(func() { close(l.stopMarks) })
	<-l.marksDone
}

// foreignClaim is a marker another instance claimed and has not set to
// published yet, as this instance follows them.
type foreignClaim struct {
	owner  string
	callID string // as written in the event's JSON, for the worker queue
	seen   time.Time
	gone   bool // its owner was seen gone since
	queued bool // a takeover job is queued
}

// watchMarkers follows the markers written since the ledger opened the
// bucket, for takeover. Markers claimed before are not seen: their
// owner's death was for the instances up then to notice.
func (l *Ledger) watchMarkers(ctx context.Context) {
	kvwatch.Follow(ctx, l.o.Conn, l.startRev,
		func(ctx context.Context, last uint64) (jetstream.KeyWatcher, error) {
			from := max(last, l.startRev) + 1
			return l.kv.WatchFiltered(ctx, []string{"s.*", "e.*"}, jetstream.ResumeFromRevision(from))
		},
		l.followMarker, nil)
}

func (l *Ledger) followMarker(e jetstream.KeyValueEntry) {
	key := e.Key()
	var m marker
	ok := e.Operation() == jetstream.KeyValuePut
	if ok {
		m, ok = parseMarker(e.Value())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !ok || m.State != stateClaimed || m.Owner == l.o.Instance {
		delete(l.foreign, key)
		return
	}
	if fc, ok := l.foreign[key]; ok && fc.owner == m.Owner {
		return
	}
	if _, ok := l.foreign[key]; !ok && len(l.foreign) >= maxActive {
		l.m.outcome("not_followed")
		return
	}
	l.foreign[key] = &foreignClaim{owner: m.Owner, callID: string(callIDOf(m.Body)), seen: l.o.Now()}
}

// sweepClaims queues a takeover of every marker whose owner is gone and
// that has stayed claimed for TakeoverAfter. It forgets markers older
// than the bucket keeps them (their owner is up, but never set them to
// published: a confirmation lost, say).
func (l *Ledger) sweepClaims(now time.Time) {
	type due struct {
		key, owner, callID string
		seen               time.Time
	}
	var ds []due
	l.mu.Lock()
	for key, fc := range l.foreign {
		if now.Sub(fc.seen) > l.maxAge {
			delete(l.foreign, key)
			continue
		}
		if fc.queued {
			continue
		}
		if !fc.gone && !l.o.Alive(fc.owner) {
			fc.gone = true
		}
		if fc.gone && now.Sub(fc.seen) >= l.o.TakeoverAfter {
			fc.queued = true
			ds = append(ds, due{key, fc.owner, fc.callID, fc.seen})
		}
	}
	l.mu.Unlock()
	for _, d := range ds {
		select {
		case l.queue([]byte(d.callID)) <- job{takeover: &takeoverJob{d.key, d.owner, now.Sub(d.seen) >= holdLimit}}:
		default:
			l.m.outcome("overflow")
			l.retryTakeover(d.key)
		}
	}
}

func (l *Ledger) retryTakeover(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if fc := l.foreign[key]; fc != nil {
		fc.queued = false
	}
}

func (l *Ledger) forgetClaim(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.foreign, key)
}

// takeover publishes the event of a marker whose owner (as this instance
// saw it) is gone: it makes the marker its own with a compare-and-set on
// its revision, so that of several instances doing so one publishes it,
// under the event's own id. An end marker waits for the call's start
// marker to be published first: call.started goes out before call.ended.
func (l *Ledger) takeover(ctx context.Context, t *takeoverJob) {
	key, owner := t.key, t.owner
	opCtx, cancel := context.WithTimeout(ctx, opTimeout)
	e, err := l.kv.Get(opCtx, key)
	cancel()
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		l.forgetClaim(key)
		return
	}
	if err != nil {
		l.retryTakeover(key)
		return
	}
	m, ok := parseMarker(e.Value())
	switch {
	case !ok || m.State != stateClaimed || m.Owner == l.o.Instance:
		l.forgetClaim(key)
		return
	case m.Owner != owner:
		l.retryTakeover(key) // another instance took it over meanwhile: follow that one
		return
	}
	h := key[len("e."):]
	if key[0] == 'e' && !l.startPublished(ctx, h, owner) && !t.overdue {
		l.retryTakeover(key)
		return
	}
	switch l.takeOver(ctx, e, m) {
	case takenOver, lost:
		l.forgetClaim(key)
	case failed:
		l.retryTakeover(key)
	}
}

type takeoverResult int

const (
	takenOver takeoverResult = iota
	lost                     // another instance took it first
	failed                   // NATS did not answer: try again later
)

// takeOver makes the claimed marker e (holding m) this instance's and
// publishes its event.
func (l *Ledger) takeOver(ctx context.Context, e jetstream.KeyValueEntry, m marker) takeoverResult {
	dead := m.Owner
	m.Owner = l.o.Instance
	v, err := json.Marshal(m)
	if err != nil {
		return lost
	}
	opCtx, cancel := context.WithTimeout(ctx, opTimeout)
	rev, err := l.kv.Update(opCtx, e.Key(), v, e.Revision())
	cancel()
	if kvwatch.IsConflict(err) {
		l.m.outcome("takeover_lost")
		return lost
	}
	if err != nil {
		return failed
	}
	h := e.Key()[len("s."):]
	ev := m.event()
	if e.Key()[0] == 's' {
		l.restoreRecord(ctx, h, ev, dead)
	} else {
		l.deleteRecord(ctx, h)
	}
	l.m.outcome("republished")
	l.log.Info("call ledger: published the event of a gone instance", "key", e.Key(), "event_id", ev.ID, "type", ev.Type, "owner", dead)
	l.handOn(ev, e.Key(), rev)
	return takenOver
}

// startPublished reports whether call.ended of the call h may go out:
// its start marker is published, or absent, or this instance's own (its
// call.started is ahead in the same queue), or it belonged to a gone
// instance and this one just took it over. A start marker claimed by an
// instance that is up (its publisher lags) holds the end back.
func (l *Ledger) startPublished(ctx context.Context, h, goneOwner string) bool {
	opCtx, cancel := context.WithTimeout(ctx, opTimeout)
	e, err := l.kv.Get(opCtx, "s."+h)
	cancel()
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return true
	}
	if err != nil {
		return false
	}
	m, ok := parseMarker(e.Value())
	if !ok || m.State != stateClaimed || m.Owner == l.o.Instance {
		return true
	}
	if m.Owner != goneOwner && l.alive(m.Owner) {
		l.m.outcome("end_held")
		return false
	}
	return l.takeOver(ctx, e, m) == takenOver
}

// restoreRecord keeps the record of a call whose call.started this
// instance published for a gone one (which may have died before writing
// it), so that its BYE or MaxDuration ends it; not once it has ended.
func (l *Ledger) restoreRecord(ctx context.Context, h string, e events.Event, owner string) {
	var body struct {
		CallID    string    `json:"callId"`
		From      string    `json:"from"`
		To        string    `json:"to"`
		StartTime time.Time `json:"startTime"`
	}
	if json.Unmarshal(e.Body, &body) != nil || body.CallID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if _, err := l.kv.Get(ctx, "e."+h); !errors.Is(err, jetstream.ErrKeyNotFound) {
		return
	}
	v, err := json.Marshal(record{CallID: body.CallID, From: body.From, To: body.To, Start: body.StartTime, Owner: owner})
	if err != nil {
		return
	}
	_, _ = l.kv.Create(ctx, "a."+h, v) // an existing record stays
}

// alive tells whether instance is up, as Presence sees it.
func (l *Ledger) alive(instance string) bool {
	return l.o.Alive == nil || instance == l.o.Instance || l.o.Alive(instance)
}
