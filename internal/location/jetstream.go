package location

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routr-go/routr/internal/kvwatch"
)

// Defaults of JetStreamOptions.
const (
	DefaultBucket    = "routr_location"
	DefaultMaxAge    = 2 * time.Hour
	DefaultOpTimeout = 2 * time.Second
	// expiryQueue bounds the expiries waiting for their shared delete.
	expiryQueue = 4096
	// maxKeyLen bounds a bucket key (encoded AOR and Contact): NATS
	// subjects this long are still far below its control line limit.
	maxKeyLen = 1024
	// casAttempts bounds the retries of a write that lost a race.
	casAttempts = 16
)

// JetStreamOptions configures a [JetStream] store.
type JetStreamOptions struct {
	// Conn is the NATS connection; required. The store never closes it.
	Conn *nats.Conn
	// Bucket is the key-value bucket; DefaultBucket when empty. It is
	// created when missing.
	Bucket string
	// Replicas is the bucket's replica count when the store creates it;
	// zero means 3, or fewer when the cluster has fewer servers.
	Replicas int
	// MaxAge is how long the bucket keeps a key after its last write: a
	// backstop that reclaims bindings nobody deleted (every edge down when
	// they expired). It must exceed the longest registration
	// (REGISTRAR_MAX_EXPIRES); DefaultMaxAge when zero.
	MaxAge time.Duration
	// MaxBindings bounds the bindings in the bucket, as MemoryOptions
	// does for one process; zero means no bound.
	MaxBindings int
	// OnExpire is called once per binding that expires without being
	// removed, across every instance sharing the bucket: the instance
	// whose delete wins reports it. Same contract as in MemoryOptions.
	OnExpire func(Binding)
	// OpTimeout bounds each bucket operation; DefaultOpTimeout when zero.
	OpTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Registerer receives the metrics (routr_location_*); nil registers
	// nothing.
	Registerer prometheus.Registerer
	// Logger; nil means slog.Default.
	Logger *slog.Logger
}

// JetStream is a [Store] shared by every edge instance: bindings live in a
// JetStream key-value bucket, one key per (AOR, Contact), and each instance
// keeps a copy of the whole bucket in a [Memory] kept fresh by watching
// it, so that Lookup and Count never leave the process. Writes go to the
// bucket first, with compare-and-set on the key's revision so that the
// CSeq order check holds across instances, then to the copy.
//
// Expiry is kept twice: every read checks Expires, and an expired binding
// is deleted from the bucket by whichever instance's delete wins (that
// one calls OnExpire); the bucket's MaxAge reclaims what no instance
// deleted.
//
// Create it with NewJetStream and start Run.
type JetStream struct {
	o       JetStreamOptions
	kv      jetstream.KeyValue
	cache   *Memory
	expired chan Binding
	lastRev uint64 // last revision applied by the initial load
	log     *slog.Logger
	m       jsMetrics
}

var _ Store = (*JetStream)(nil)

// NewJetStream opens (or creates) the bucket and loads every binding in
// it before returning, so that an instance that starts knows the bindings
// the others hold. ctx bounds the whole start.
func NewJetStream(ctx context.Context, o JetStreamOptions) (*JetStream, error) {
	if o.Conn == nil {
		return nil, errors.New("location: JetStream store needs a NATS connection")
	}
	if o.Bucket == "" {
		o.Bucket = DefaultBucket
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = DefaultOpTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	j := &JetStream{o: o, expired: make(chan Binding, expiryQueue), log: o.Logger}
	j.cache = NewMemory(MemoryOptions{Now: o.Now, OnExpire: j.queueExpiry})
	m, err := newJSMetrics(o.Registerer, j)
	if err != nil {
		return nil, err
	}
	j.m = m
	js, err := jetstream.New(o.Conn)
	if err != nil {
		return nil, fmt.Errorf("location: jetstream: %w", err)
	}
	if j.kv, err = kvwatch.OpenBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:       o.Bucket,
		Description:  "routr location bindings",
		History:      1,
		TTL:          o.MaxAge,
		MaxValueSize: 8192,
		Storage:      jetstream.FileStorage,
		Replicas:     o.Replicas,
	}); err != nil {
		return nil, fmt.Errorf("location: %w", err)
	}
	if err := j.load(ctx); err != nil {
		return nil, err
	}
	return j, nil
}

// load reads every key of the bucket into the copy.
func (j *JetStream) load(ctx context.Context) error {
	w, err := kvwatch.Open(ctx, func(ctx context.Context) (jetstream.KeyWatcher, error) { return j.kv.WatchAll(ctx) })
	if err != nil {
		return fmt.Errorf("location: watch %s: %w", j.o.Bucket, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("location: load %s: %w", j.o.Bucket, ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("location: load %s: watcher stopped", j.o.Bucket)
			}
			if e == nil {
				return nil // initial values done
			}
			j.apply(e)
			j.lastRev = max(j.lastRev, e.Revision())
		}
	}
}

// Run keeps the copy fresh from the bucket, expires bindings and deletes
// the expired ones from the bucket, until ctx ends.
func (j *JetStream) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { j.cache.Run(ctx) })
	wg.Go(func() { j.deleteExpired(ctx) })
	wg.Go(func() { j.watch(ctx) })
	wg.Wait()
}

// watch applies the bucket's changes after the initial load, starting the
// watcher again if it stops.
func (j *JetStream) watch(ctx context.Context) {
	kvwatch.Follow(ctx, j.o.Conn, j.lastRev,
		func(ctx context.Context, last uint64) (jetstream.KeyWatcher, error) {
			return j.kv.WatchAll(ctx, kvwatch.Resume(last)...)
		},
		j.apply,
		func(err error) { j.log.Warn("location watch", "bucket", j.o.Bucket, "error", err) })
}

// apply brings one bucket entry into the copy.
func (j *JetStream) apply(e jetstream.KeyValueEntry) {
	j.m.watched.Inc()
	switch e.Operation() {
	case jetstream.KeyValuePut:
		b, err := decodeBinding(e.Value())
		if err != nil {
			j.log.Warn("location: undecodable binding", "key", e.Key(), "error", err)
			return
		}
		j.cache.set(b, e.Revision())
	default: // delete or purge
		aor, contact, ok := parseKey(e.Key())
		if ok {
			j.cache.dropUpTo(aor, contact, e.Revision())
		}
	}
}

// Put implements [Store].
func (j *JetStream) Put(ctx context.Context, b Binding) (PutResult, error) {
	if b.AOR == "" || b.Contact == "" {
		return 0, ErrInvalid
	}
	key, err := bindingKey(b.AOR, b.Contact)
	if err != nil {
		return 0, err
	}
	now := j.o.Now()
	if b.RegisteredAt.IsZero() {
		b.RegisteredAt = now
	}
	for attempt := range casAttempts {
		// The copy knows the key's revision, usually the latest: the
		// first attempt writes at once, and a race it lost (or a copy
		// behind the bucket) sends the next ones to read the bucket.
		// Removals and refusals are decided on the bucket's own copy,
		// never on one that may lag.
		cached := attempt == 0 && b.Expires.After(now)
		res, err := j.putOnce(ctx, key, b, now, cached)
		if cached && errors.Is(err, ErrOutOfOrder) {
			continue
		}
		if kvwatch.IsConflict(err) {
			j.m.op("put", "conflict")
			if !cached {
				backoff(ctx, attempt)
			}
			continue
		}
		j.m.op("put", outcome(err))
		return res, err
	}
	return 0, fmt.Errorf("location: put %s: lost %d races in a row", b.AOR, casAttempts)
}

func (j *JetStream) putOnce(ctx context.Context, key string, b Binding, now time.Time, cached bool) (PutResult, error) {
	var (
		old Binding
		rev uint64
		err error
	)
	if cached {
		old, rev, _ = j.cache.get(b.AOR, b.Contact)
	} else if old, rev, err = j.get(ctx, key); err != nil {
		return 0, err
	}
	live := rev != 0 && old.Expires.After(now)
	if live && old.CallID == b.CallID && b.CSeq <= old.CSeq {
		return 0, ErrOutOfOrder
	}
	opCtx, cancel := context.WithTimeout(ctx, j.o.OpTimeout)
	defer cancel()
	if !b.Expires.After(now) {
		if rev == 0 {
			return Absent, nil
		}
		if err := j.kv.Delete(opCtx, key, jetstream.LastRevision(rev)); err != nil {
			return 0, fmt.Errorf("location: delete %s: %w", b.AOR, err)
		}
		j.cache.drop(b.AOR, b.Contact)
		if !live {
			j.report(old)
			return Absent, nil
		}
		return Removed, nil
	}
	if rev == 0 && j.full(b.AOR, now) {
		return 0, ErrFull
	}
	val, err := encodeBinding(b)
	if err != nil {
		return 0, err
	}
	var newRev uint64
	if rev == 0 {
		newRev, err = j.kv.Create(opCtx, key, val)
	} else {
		newRev, err = j.kv.Update(opCtx, key, val, rev)
	}
	if err != nil {
		return 0, fmt.Errorf("location: write %s: %w", b.AOR, err)
	}
	j.cache.set(b, newRev)
	if live {
		return Refreshed, nil
	}
	if rev != 0 {
		j.report(old) // replaced an expired binding nobody had deleted yet
	}
	return Created, nil
}

// full reports whether a new binding in aor would exceed MaxBindings. The
// copy's count includes expired bindings not deleted yet; those of aor
// make room, as a Put into a Memory purges them first.
func (j *JetStream) full(aor string, now time.Time) bool {
	if j.o.MaxBindings <= 0 || j.cache.Len() < j.o.MaxBindings {
		return false
	}
	bs, _ := j.cache.all(aor)
	stale := 0
	for _, b := range bs {
		if !b.Expires.After(now) {
			stale++
		}
	}
	return j.cache.Len()-stale >= j.o.MaxBindings
}

// get reads a key: the binding and its revision, revision 0 when absent.
func (j *JetStream) get(ctx context.Context, key string) (Binding, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, j.o.OpTimeout)
	defer cancel()
	e, err := j.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Binding{}, 0, nil
	}
	if err != nil {
		return Binding{}, 0, fmt.Errorf("location: get: %w", err)
	}
	b, err := decodeBinding(e.Value())
	if err != nil {
		// Unreadable: treat as expired, so that a write replaces it.
		aor, contact, _ := parseKey(key)
		return Binding{AOR: aor, Contact: contact}, e.Revision(), nil
	}
	return b, e.Revision(), nil
}

// Remove implements [Store].
func (j *JetStream) Remove(ctx context.Context, aor, contact string) (bool, error) {
	key, err := bindingKey(aor, contact)
	if err != nil {
		return false, nil // no such key can exist
	}
	for attempt := range casAttempts {
		ok, err := j.removeOnce(ctx, key, aor, contact)
		if kvwatch.IsConflict(err) {
			j.m.op("remove", "conflict")
			backoff(ctx, attempt)
			continue
		}
		j.m.op("remove", outcome(err))
		return ok, err
	}
	return false, fmt.Errorf("location: remove %s: lost %d races in a row", aor, casAttempts)
}

func (j *JetStream) removeOnce(ctx context.Context, key, aor, contact string) (bool, error) {
	old, rev, err := j.get(ctx, key)
	if err != nil || rev == 0 {
		j.cache.drop(aor, contact)
		return false, err
	}
	opCtx, cancel := context.WithTimeout(ctx, j.o.OpTimeout)
	defer cancel()
	if err := j.kv.Delete(opCtx, key, jetstream.LastRevision(rev)); err != nil {
		return false, fmt.Errorf("location: delete %s: %w", aor, err)
	}
	j.cache.drop(aor, contact)
	if !old.Expires.After(j.o.Now()) {
		j.report(old)
		return false, nil
	}
	return true, nil
}

// RemoveAll implements [Store]. It removes the bindings the copy knows,
// which are all of them but those written in the last moment by another
// instance.
func (j *JetStream) RemoveAll(ctx context.Context, aor string) (int, error) {
	bs, _ := j.cache.all(aor)
	n := 0
	for _, b := range bs {
		ok, err := j.Remove(ctx, aor, b.Contact)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// Lookup implements [Store] from the local copy.
func (j *JetStream) Lookup(ctx context.Context, aor string) ([]Binding, error) {
	return j.cache.Lookup(ctx, aor)
}

// Count implements [Store] from the local copy.
func (j *JetStream) Count(ctx context.Context, aor string) (int, error) {
	return j.cache.Count(ctx, aor)
}

// Len returns the number of bindings in the local copy, expired ones not
// yet deleted included.
func (j *JetStream) Len() int { return j.cache.Len() }

// queueExpiry hands an expiry seen in the copy to deleteExpired. When the
// queue is full the binding stays in the bucket until another instance or
// MaxAge removes it, and no event is lost: the copy reports it again if
// it comes back from the bucket.
func (j *JetStream) queueExpiry(b Binding) {
	select {
	case j.expired <- b:
	default:
		j.m.expiryDropped.Inc()
	}
}

// deleteExpired deletes expired bindings from the bucket; the instance
// whose delete wins reports the expiry, so that it is reported once.
func (j *JetStream) deleteExpired(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-j.expired:
			key, err := bindingKey(b.AOR, b.Contact)
			if err != nil {
				continue
			}
			old, rev, err := j.get(ctx, key)
			if err != nil || rev == 0 || old.Expires.After(j.o.Now()) {
				continue // gone, refreshed, or NATS away (MaxAge will do)
			}
			opCtx, cancel := context.WithTimeout(ctx, j.o.OpTimeout)
			err = j.kv.Delete(opCtx, key, jetstream.LastRevision(rev))
			cancel()
			switch {
			case err == nil:
				j.m.op("expire", "ok")
				j.report(old)
			case kvwatch.IsConflict(err):
				j.m.op("expire", "conflict")
			default:
				j.m.op("expire", "error")
			}
		}
	}
}

func (j *JetStream) report(b Binding) {
	if j.o.OnExpire != nil && b.AOR != "" {
		j.o.OnExpire(b)
	}
}

// backoff waits a moment before attempt, random so that writers that
// collided do not collide again, and longer as attempts fail (up to 20 ms).
func backoff(ctx context.Context, attempt int) {
	ceiling := min(1<<attempt, 20)
	select {
	case <-ctx.Done():
	case <-time.After(time.Duration(1+rand.IntN(ceiling)) * time.Millisecond):
	}
}

func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrOutOfOrder), errors.Is(err, ErrFull), errors.Is(err, ErrInvalid):
		return "refused"
	default:
		return "error"
	}
}

// keyEnc encodes AORs and Contacts into key tokens: base64url has no dot,
// and every character it uses is allowed in a key.
var keyEnc = base64.RawURLEncoding

// bindingKey is the bucket key of (aor, contact): both encoded, so that a
// delete seen by the watcher names the binding it removes.
func bindingKey(aor, contact string) (string, error) {
	k := keyEnc.EncodeToString([]byte(aor)) + "." + keyEnc.EncodeToString([]byte(contact))
	if len(k) > maxKeyLen {
		return "", fmt.Errorf("location: AOR and Contact too long for a key (%d bytes): %w", len(k), ErrInvalid)
	}
	return k, nil
}

func parseKey(k string) (aor, contact string, ok bool) {
	a, c, found := strings.Cut(k, ".")
	if !found {
		return "", "", false
	}
	ab, err1 := keyEnc.DecodeString(a)
	cb, err2 := keyEnc.DecodeString(c)
	if err1 != nil || err2 != nil {
		return "", "", false
	}
	return string(ab), string(cb), true
}

// wireBinding is a Binding as stored in the bucket: times as Unix
// nanoseconds so that they read back exactly.
type wireBinding struct {
	AOR          string `json:"aor"`
	Contact      string `json:"contact"`
	Transport    string `json:"transport,omitempty"`
	Source       string `json:"source,omitempty"`
	LocalAddr    string `json:"local,omitempty"`
	CallID       string `json:"callId,omitempty"`
	CSeq         uint32 `json:"cseq,omitempty"`
	Expires      int64  `json:"expires"`
	RegisteredAt int64  `json:"registered"`
	UserAgent    string `json:"ua,omitempty"`
	SessionCount int    `json:"sessions,omitempty"`
	Instance     string `json:"instance,omitempty"`
}

func encodeBinding(b Binding) ([]byte, error) {
	return json.Marshal(wireBinding{
		AOR: b.AOR, Contact: b.Contact, Transport: b.Transport, Source: b.Source, LocalAddr: b.LocalAddr,
		CallID: b.CallID, CSeq: b.CSeq, Expires: b.Expires.UnixNano(), RegisteredAt: b.RegisteredAt.UnixNano(),
		UserAgent: b.UserAgent, SessionCount: b.SessionCount, Instance: b.Instance,
	})
}

func decodeBinding(data []byte) (Binding, error) {
	var w wireBinding
	if err := json.Unmarshal(data, &w); err != nil {
		return Binding{}, fmt.Errorf("location: decode binding: %w", err)
	}
	if w.AOR == "" || w.Contact == "" {
		return Binding{}, fmt.Errorf("location: decode binding: %w", ErrInvalid)
	}
	return Binding{
		AOR: w.AOR, Contact: w.Contact, Transport: w.Transport, Source: w.Source, LocalAddr: w.LocalAddr,
		CallID: w.CallID, CSeq: w.CSeq, Expires: time.Unix(0, w.Expires).UTC(), RegisteredAt: time.Unix(0, w.RegisteredAt).UTC(),
		UserAgent: w.UserAgent, SessionCount: w.SessionCount, Instance: w.Instance,
	}, nil
}

// jsMetrics are the JetStream store's metrics.
type jsMetrics struct {
	ops           *prometheus.CounterVec
	watched       prometheus.Counter
	expiryDropped prometheus.Counter
}

func (m jsMetrics) op(op, outcome string) { m.ops.WithLabelValues(op, outcome).Inc() }

func newJSMetrics(reg prometheus.Registerer, j *JetStream) (jsMetrics, error) {
	m := jsMetrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "routr", Subsystem: "location", Name: "bucket_ops_total",
			Help: "Writes to the shared location bucket by operation (put, remove, expire) and outcome (ok, conflict, refused, error).",
		}, []string{"op", "outcome"}),
		watched: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "routr", Subsystem: "location", Name: "bucket_updates_total",
			Help: "Changes of the shared location bucket applied to this instance's copy.",
		}),
		expiryDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "routr", Subsystem: "location", Name: "expiry_queue_dropped_total",
			Help: "Expired bindings not deleted from the bucket because the expiry queue was full (the bucket's max age reclaims them).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	cs := []prometheus.Collector{m.ops, m.watched, m.expiryDropped,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "routr", Subsystem: "location", Name: "cached_bindings",
			Help: "Bindings in this instance's copy of the shared bucket.",
		}, func() float64 { return float64(j.cache.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "routr", Subsystem: "location", Name: "expiry_queue_length",
			Help: "Expired bindings waiting to be deleted from the bucket (bound 4096).",
		}, func() float64 { return float64(len(j.expired)) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return m, fmt.Errorf("location: register metrics: %w", err)
		}
	}
	return m, nil
}
