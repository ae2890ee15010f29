package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	clusterpkg "github.com/routr-go/routr/internal/cluster"
	"github.com/routr-go/routr/internal/config"
	"github.com/routr-go/routr/internal/edge"
	"github.com/routr-go/routr/internal/events"
	"github.com/routr-go/routr/internal/location"
)

// clusterStart bounds how long an instance waits for NATS and the initial
// load of the bindings at start; past it, start-up fails (and systemd or
// Kubernetes starts it again).
const clusterStart = 60 * time.Second

// locationStore is a location.Store with its background work.
type locationStore interface {
	location.Store
	Run(ctx context.Context)
}

// cluster is what an instance shares with the others: nil parts when
// LOCATION_STORE is memory.
type cluster struct {
	nc     *nats.Conn
	self   string // this instance's SIP URI for the others
	bucket string // the bindings' bucket; the others are named after it
	ledger *clusterpkg.Ledger
	turns  *clusterpkg.Turns
	peers  *clusterpkg.Presence
}

// Close sets the markers of the events the pipeline confirmed to
// published, then closes the NATS connection of the shared stores.
func (c *cluster) Close() {
	if c.ledger != nil {
		c.ledger.Close()
	}
	if c.nc != nil {
		c.nc.Close()
	}
}

// newLocation returns the location store LOCATION_STORE asks for, and the
// cluster it belongs to.
func newLocation(ctx context.Context, cfg *config.Config, log *slog.Logger, reg prometheus.Registerer, onExpire func(location.Binding)) (locationStore, *cluster, error) {
	cl := &cluster{}
	if !cfg.Cluster.Enabled {
		return location.NewMemory(location.MemoryOptions{MaxBindings: cfg.MaxBindings, OnExpire: onExpire}), cl, nil
	}
	cc := cfg.Cluster
	url := cc.NATSURL
	if url == "" {
		url = cfg.Events.NATSURL
	}
	if url == "" {
		url = nats.DefaultURL
	}
	self, err := instanceURI(cfg)
	if err != nil {
		return nil, nil, err
	}
	cl.self = self
	cl.bucket = cc.Bucket
	if cl.bucket == "" {
		cl.bucket = location.DefaultBucket
	}
	nc, err := nats.Connect(url,
		nats.Name("routr-cluster "+self),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("cluster NATS disconnected", "error", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("cluster NATS reconnected", "url", c.ConnectedUrlRedacted())
		}),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("CLUSTER_NATS_URL %s: %w", url, err)
	}
	cl.nc = nc
	maxAge := cc.MaxAge
	if maxAge == 0 {
		maxAge = cfg.Registrar.MaxExpires + 10*time.Minute
	}
	startCtx, cancel := context.WithTimeout(ctx, clusterStart)
	defer cancel()
	store, err := location.NewJetStream(startCtx, location.JetStreamOptions{
		Conn:        nc,
		Bucket:      cc.Bucket,
		Replicas:    cc.Replicas,
		MaxAge:      maxAge,
		MaxBindings: cfg.MaxBindings,
		OnExpire:    onExpire,
		Registerer:  reg,
		Logger:      log.With("component", "location"),
	})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	turns, err := clusterpkg.NewTurns(startCtx, clusterpkg.TurnsOptions{Conn: nc, Bucket: cl.bucket + "_turns", Replicas: cc.Replicas, Registerer: reg})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	cl.turns = turns
	peers, err := clusterpkg.NewPresence(startCtx, clusterpkg.PresenceOptions{Conn: nc, Bucket: cl.bucket + "_instances", Replicas: cc.Replicas, Self: self, Registerer: reg})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	cl.peers = peers
	log.Info("shared location store ready", "nats", url, "cluster", cc.String(), "instance", self,
		"bindings", store.Len(), "forwarding", len(cc.Secret) > 0)
	return store, cl, nil
}

// instanceURI is where the other instances send requests for this one:
// CLUSTER_ADDRESS, or the bind address of the CLUSTER_TRANSPORT listener.
func instanceURI(cfg *config.Config) (string, error) {
	tp := cfg.Cluster.Transport
	if tp == "" {
		tp = "udp"
	}
	addr := cfg.Cluster.Address
	if addr == "" {
		for _, t := range cfg.Transports {
			if t.Protocol != tp {
				continue
			}
			ip, err := netip.ParseAddr(t.BindAddr)
			if err != nil || ip.IsUnspecified() {
				return "", fmt.Errorf("CLUSTER_ADDRESS: needed, since the %s listener binds %q", tp, t.BindAddr)
			}
			addr = net.JoinHostPort(ip.String(), strconv.Itoa(t.Port))
			break
		}
	}
	if addr == "" {
		return "", fmt.Errorf("CLUSTER_TRANSPORT: no %s listener in spec.transport", tp)
	}
	return "sip:" + addr + ";transport=" + tp, nil
}

// edgeOptions are the edge's settings for handing requests to the other
// instances.
func (c *cluster) edgeOptions(cfg *config.Config) edge.ClusterOptions {
	if c.self == "" {
		return edge.ClusterOptions{}
	}
	o := edge.ClusterOptions{Self: c.self, Secret: cfg.Cluster.Secret}
	if c.turns != nil {
		o.Turns = c.turns.Next
	}
	if c.peers != nil {
		o.Alive = c.peers.Alive
	}
	return o
}

// callSink returns the sink of the call tracker: the shared call ledger in
// front of next when instances share state, else next.
func (c *cluster) callSink(ctx context.Context, cfg *config.Config, log *slog.Logger, reg prometheus.Registerer, next events.Sink) (events.Sink, error) {
	if c.nc == nil {
		return next, nil
	}
	startCtx, cancel := context.WithTimeout(ctx, clusterStart)
	defer cancel()
	l, err := clusterpkg.NewLedger(startCtx, clusterpkg.LedgerOptions{
		Conn:        c.nc,
		Bucket:      c.bucket + "_calls",
		Replicas:    cfg.Cluster.Replicas,
		MaxDuration: cfg.MaxCallDuration,
		Next:        next,
		Instance:    c.peers.Incarnation(),
		Alive:       c.peers.Alive,
		Registerer:  reg,
		Logger:      log.With("component", "ledger"),
	})
	if err != nil {
		return nil, err
	}
	c.ledger = l
	return l, nil
}

// onUnknownEnd is the tracker's hook for the end of a call another
// instance routed.
func (c *cluster) onUnknownEnd() func(callID, cause string, code int, h []events.Header, at time.Time) {
	if c.ledger == nil {
		return nil
	}
	return c.ledger.EndUnknown
}

// withdraw returns what tells the other instances that this one drains;
// nil for a lone instance.
func (c *cluster) withdraw() func() {
	if c.peers == nil {
		return nil
	}
	return c.peers.Withdraw
}

// Run runs the shared parts until ctx ends.
func (c *cluster) Run(ctx context.Context) {
	var wg sync.WaitGroup
	if c.peers != nil {
		wg.Go(func() { c.peers.Run(ctx) })
	}
	if c.ledger != nil {
		c.ledger.Run(ctx)
	}
	wg.Wait()
}

// Wait returns once Run has handed its last events on (after ctx ended).
func (c *cluster) Wait() {
	if c.ledger != nil {
		<-c.ledger.Done()
	}
}
