package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routr-go/routr/internal/kvwatch"
)

// DefaultPresenceInterval is how often an instance says it is alive.
const DefaultPresenceInterval = time.Second

// maxInstances bounds the instances a Presence follows.
const maxInstances = 4096

// PresenceOptions configures a Presence.
type PresenceOptions struct {
	// Conn is the NATS connection; required, never closed by Presence.
	Conn *nats.Conn
	// Bucket holds one key per instance; created when missing.
	Bucket string
	// Replicas of the bucket when created; 0 means 3, or 1 on a smaller
	// cluster.
	Replicas int
	// Self names this instance (its SIP URI for the others).
	Self string
	// Interval between heartbeats; DefaultPresenceInterval when 0. An
	// instance not heard from for three intervals is taken for gone.
	Interval time.Duration
	// Registerer receives routr_cluster_instances_up; nil registers
	// nothing.
	Registerer prometheus.Registerer
}

// Presence tells which edge instances are up: each writes its key every
// Interval, and every instance watches the bucket. The edge hands a
// request to the instance a callee registered through only while that
// instance is up; otherwise it reaches the callee itself where it can.
type Presence struct {
	nc       *nats.Conn
	kv       jetstream.KeyValue
	self     string
	boot     string // this process's incarnation, see Incarnation
	interval time.Duration

	mu     sync.Mutex
	seen   map[string]time.Time // key -> last heard
	boots  map[string]string    // key -> the incarnation last heard ("" from older versions)
	loaded uint64               // the last revision of the initial load

	// beat is held while this instance's key is written or withdrawn, so
	// that a heartbeat in flight cannot announce it again after Withdraw.
	beat      sync.Mutex
	withdrawn bool
}

// NewPresence opens the bucket, announces this instance and loads the
// others.
func NewPresence(ctx context.Context, o PresenceOptions) (*Presence, error) {
	if o.Conn == nil || o.Self == "" {
		return nil, errors.New("cluster: presence needs a NATS connection and a name")
	}
	if o.Interval <= 0 {
		o.Interval = DefaultPresenceInterval
	}
	js, err := jetstream.New(o.Conn)
	if err != nil {
		return nil, fmt.Errorf("cluster: jetstream: %w", err)
	}
	kv, err := kvwatch.OpenBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket: o.Bucket, Description: "routr edge instances", History: 1, TTL: time.Hour,
		MaxValueSize: 1024, Storage: jetstream.FileStorage, Replicas: o.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: presence: %w", err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	p := &Presence{nc: o.Conn, kv: kv, self: o.Self, boot: hex.EncodeToString(b[:]), interval: o.Interval,
		seen: make(map[string]time.Time), boots: make(map[string]string)}
	if o.Registerer != nil {
		if err := o.Registerer.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "routr", Subsystem: "cluster", Name: "instances_up",
			Help: "Edge instances heard from within three heartbeats, this one included.",
		}, func() float64 { return float64(p.up()) })); err != nil {
			return nil, fmt.Errorf("cluster: register metrics: %w", err)
		}
	}
	if _, err := kv.Put(ctx, instanceKey(o.Self), p.value()); err != nil {
		return nil, fmt.Errorf("cluster: announce %s: %w", o.Self, err)
	}
	w, err := kvwatch.Open(ctx, func(ctx context.Context) (jetstream.KeyWatcher, error) { return kv.WatchAll(ctx) })
	if err != nil {
		return nil, fmt.Errorf("cluster: watch instances: %w", err)
	}
	defer w.Stop()
	for e := range w.Updates() {
		if e == nil {
			break
		}
		p.note(e, e.Created())
		p.loaded = max(p.loaded, e.Revision())
	}
	return p, nil
}

// incarnationSep separates an instance's SIP URI from its incarnation in
// Incarnation (a SIP URI has no fragment, so no '#').
const incarnationSep = "#"

// Incarnation names this process: its instance (the SIP URI) and a
// random id drawn at start. Call markers and records carry it, so that
// an instance restarted at once, under the same address and before the
// others missed a heartbeat, is not taken for the process that claimed
// them: that one is gone, and what it held is taken over (Alive).
func (p *Presence) Incarnation() string { return p.self + incarnationSep + p.boot }

// value is what this instance writes in its key: its URI and incarnation.
func (p *Presence) value() []byte { return []byte(p.self + "\n" + p.boot) }

// Alive reports whether instance, a SIP URI or an Incarnation, was heard
// from lately; for an Incarnation, the same process must be the one
// heard from (an instance of an older version announces no incarnation:
// its URI answers for it).
func (p *Presence) Alive(instance string) bool {
	uri, boot, withBoot := strings.Cut(instance, incarnationSep)
	if uri == p.self {
		return !withBoot || boot == p.boot
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	key := instanceKey(uri)
	last, ok := p.seen[key]
	if !ok || time.Since(last) >= 3*p.interval {
		return false
	}
	heard := p.boots[key]
	return !withBoot || heard == "" || heard == boot
}

// up counts the instances alive now.
func (p *Presence) up() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for k, last := range p.seen {
		if k == instanceKey(p.self) || time.Since(last) < 3*p.interval {
			n++
		}
	}
	return n
}

func (p *Presence) note(e jetstream.KeyValueEntry, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(p.seen, e.Key())
		delete(p.boots, e.Key())
		return
	}
	if _, ok := p.seen[e.Key()]; ok || len(p.seen) < maxInstances {
		p.seen[e.Key()] = at
		_, boot, _ := strings.Cut(string(e.Value()), "\n")
		p.boots[e.Key()] = boot
	}
}

// Run announces this instance every Interval and follows the others
// until ctx ends; then it withdraws this instance at once, so that the
// others stop handing it requests.
func (p *Presence) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { p.watch(ctx) })
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	key := instanceKey(p.self)
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			p.Withdraw()
			return
		case <-tick.C:
			p.beat.Lock()
			if !p.withdrawn {
				pctx, cancel := context.WithTimeout(ctx, p.interval)
				_, _ = p.kv.Put(pctx, key, p.value())
				cancel()
			}
			p.beat.Unlock()
		}
	}
}

// Withdraw stops announcing this instance and deletes its key, so that the
// others take it for gone at once (not three heartbeats later): they stop
// handing it requests, and end the calls it routed that reach them. A
// draining instance calls it when the drain starts. It cannot be undone;
// Run goes on following the others.
func (p *Presence) Withdraw() {
	p.beat.Lock()
	defer p.beat.Unlock()
	if p.withdrawn {
		return
	}
	p.withdrawn = true
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = p.kv.Delete(ctx, instanceKey(p.self))
}

func (p *Presence) watch(ctx context.Context) {
	// Resume after the initial load: an instance that withdrew in between
	// (a delete) must not be missed, or it would pass for up until its
	// heartbeats are missed.
	kvwatch.Follow(ctx, p.nc, p.loaded,
		func(ctx context.Context, last uint64) (jetstream.KeyWatcher, error) {
			if last == 0 {
				return p.kv.WatchAll(ctx, jetstream.UpdatesOnly())
			}
			return p.kv.WatchAll(ctx, kvwatch.Resume(last)...)
		},
		func(e jetstream.KeyValueEntry) { p.note(e, time.Now()) }, nil)
}

func instanceKey(instance string) string {
	sum := sha256.Sum256([]byte(instance))
	return "i." + base64.RawURLEncoding.EncodeToString(sum[:18])
}
