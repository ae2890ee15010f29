package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routr-go/routr/internal/kvwatch"
)

// DefaultTurnsBucket is the bucket of round-robin counters.
const DefaultTurnsBucket = "routr_location_turns"

// turnTimeout bounds the wait for a shared counter on the SIP path; past
// it the turn is taken from the local counter.
const turnTimeout = 250 * time.Millisecond

// TurnsOptions configures Turns.
type TurnsOptions struct {
	// Conn is the NATS connection; required, never closed by Turns.
	Conn *nats.Conn
	// Bucket is the counters' bucket; DefaultTurnsBucket when empty.
	Bucket string
	// Replicas of the bucket when created; 0 means 3, or 1 on a smaller
	// cluster.
	Replicas int
	// Registerer receives routr_cluster_turns_total; nil registers
	// nothing.
	Registerer prometheus.Registerer
	// Timeout bounds the wait for the shared counter, after which the
	// turn is local; 0 means 250 ms (the SIP path waits on it).
	Timeout time.Duration
}

// Turns are round-robin counters shared by every instance: each call
// balanced over a peer or trunk takes the next turn of one counter in a
// key-value bucket (compare-and-set), so that N instances together go
// round the hops as one would. When NATS is away, or slower than a
// quarter second, the turn comes from a counter in the process instead:
// calls are still spread, only not in strict turn across instances.
type Turns struct {
	kv      jetstream.KeyValue
	nc      *nats.Conn
	timeout time.Duration
	local   sync.Map // key -> *atomic.Uint64; keys come from resources
	taken   *prometheus.CounterVec
}

// NewTurns opens (or creates) the counters' bucket.
func NewTurns(ctx context.Context, o TurnsOptions) (*Turns, error) {
	if o.Conn == nil {
		return nil, errors.New("cluster: turns need a NATS connection")
	}
	if o.Bucket == "" {
		o.Bucket = DefaultTurnsBucket
	}
	js, err := jetstream.New(o.Conn)
	if err != nil {
		return nil, fmt.Errorf("cluster: jetstream: %w", err)
	}
	kv, err := kvwatch.OpenBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket: o.Bucket, Description: "routr round-robin turns", History: 1,
		MaxValueSize: 64, Storage: jetstream.FileStorage, Replicas: o.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: turns: %w", err)
	}
	t := &Turns{kv: kv, nc: o.Conn, taken: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "routr", Subsystem: "cluster", Name: "turns_total",
		Help: "Round-robin turns taken from the shared counters (shared) or, with NATS away, from this instance's (local).",
	}, []string{"source"}), timeout: o.Timeout}
	if t.timeout <= 0 {
		t.timeout = turnTimeout
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(t.taken); err != nil {
			return nil, fmt.Errorf("cluster: register metrics: %w", err)
		}
	}
	return t, nil
}

// Next returns how many calls were balanced over key before this one,
// and counts this one. It suits edge.ClusterOptions.Turns.
func (t *Turns) Next(key string) uint64 {
	if t.nc.IsConnected() {
		if n, err := t.shared(key); err == nil {
			t.taken.WithLabelValues("shared").Inc()
			return n
		}
	}
	t.taken.WithLabelValues("local").Inc()
	c, ok := t.local.Load(key)
	if !ok {
		c, _ = t.local.LoadOrStore(key, new(atomic.Uint64))
	}
	return c.(*atomic.Uint64).Add(1) - 1
}

func (t *Turns) shared(key string) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()
	sum := sha256.Sum256([]byte(key))
	k := "t." + base64.RawURLEncoding.EncodeToString(sum[:18])
	for attempt := range 256 { // bounded by ctx first, in practice
		if attempt > 0 {
			// Lost a race: wait a random moment so the racers spread.
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(time.Duration(rand.IntN(2000)+200) * time.Microsecond):
			}
		}
		e, err := t.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if _, err = t.kv.Create(ctx, k, []byte("1")); err == nil {
				return 0, nil
			}
			if kvwatch.IsConflict(err) {
				continue
			}
			return 0, err
		}
		if err != nil {
			return 0, err
		}
		n, _ := strconv.ParseUint(string(e.Value()), 10, 64)
		if _, err = t.kv.Update(ctx, k, []byte(strconv.FormatUint(n+1, 10)), e.Revision()); err == nil {
			return n, nil
		}
		if !kvwatch.IsConflict(err) {
			return 0, err
		}
	}
	return 0, errors.New("cluster: turn: too many concurrent updates")
}
