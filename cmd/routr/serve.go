package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	neturl "net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/routr-go/routr/internal/auth"
	"github.com/routr-go/routr/internal/calls"
	"github.com/routr-go/routr/internal/config"
	"github.com/routr-go/routr/internal/connect"
	"github.com/routr-go/routr/internal/edge"
	"github.com/routr-go/routr/internal/events"
	"github.com/routr-go/routr/internal/health"
	"github.com/routr-go/routr/internal/location"
)

// serve runs the edge until ctx ends, then drains (drain.go): new
// transactions are refused while those in hand finish, for at most
// DRAIN_TIMEOUT; then SIP stops, calls still up are ended, and the event
// queues are flushed (bounded by shutdownGrace).
func serve(ctx context.Context, env func(string) string, logw io.Writer) error {
	cfg, err := config.Load(env)
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogLevel, logw)
	for _, w := range cfg.Warnings {
		log.Warn("configuration", "warning", w)
	}
	if soft := setDefaultMemoryLimit(env); soft > 0 { // memlimit.go
		log.Info("soft memory limit: 90% of the cgroup's (GOMEMLIMIT unset)", "bytes", soft)
	}
	if env("GOGC") == "" && cfg.GCMinHeapMiB > 0 {
		defer startGCMinHeap(uint64(cfg.GCMinHeapMiB)<<20, 100)() // gcminheap.go
	}
	res, err := openResources(ctx, cfg, log) // store.go: files or a database
	if err != nil {
		return err
	}
	defer res.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	res.Register(reg) // store.go: routr_store_* in database modes

	ev := cfg.Events
	var embedded *events.EmbeddedServer
	if ev.Embedded {
		srv, err := events.StartEmbedded(events.EmbeddedOptions{Addr: embeddedAddr(ev.NATSURL), Logger: log.With("component", "nats")})
		if err != nil {
			return fmt.Errorf("embedded NATS: %w", err)
		}
		defer srv.Close()
		ev.NATSEnabled = true
		ev.NATSURL = srv.ClientURL()
		embedded = srv // published to in memory, not over TCP
		log.Info("embedded NATS server started", "url", ev.NATSURL)
	}
	pipe, err := events.NewPipeline(events.Config{
		NATSEnabled:    ev.NATSEnabled,
		NATSURL:        ev.NATSURL,
		Subject:        ev.Subject,
		ConsoleEnabled: ev.Console,
		Durable:        ev.Durable,
		Replicas:       ev.StreamReplicas,
		QueueBound:     ev.QueueSize,
	}, events.PipelineOptions{Registerer: reg, Logger: log.With("component", "events"), Embedded: embedded})
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}

	// The replay cache refuses an exact copy of an accepted digest answer
	// (a late retransmission, or an attacker's replay) with stale=true:
	// 65,536 entries, a few MB.
	digest, err := auth.New(auth.Config{Secret: cfg.Auth.Secret, NonceTTL: cfg.Auth.NonceTTL, Algorithms: cfg.Auth.Algorithms, ReplayCacheSize: 1 << 16})
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	loc, cl, err := newLocation(ctx, cfg, log, reg, func(b location.Binding) {
		pipe.Publish(events.EndpointUnregistered(b.AOR, "expired", time.Now()))
	})
	if err != nil {
		return err
	}
	defer cl.Close()
	callSink, err := cl.callSink(ctx, cfg, log, reg, pipe)
	if err != nil {
		return err
	}
	tracker := calls.NewTracker(calls.Options{Sink: callSink, MaxDuration: cfg.MaxCallDuration, Registerer: reg, OnUnknownEnd: cl.onUnknownEnd()})

	edge.SetTransactionLinger(cfg.TransactionLinger)
	edge.SetStackLogger(log.With("component", "edge"))
	listeners, err := edgeListeners(cfg)
	if err != nil {
		return err
	}
	verifier, err := connectVerifier(cfg)
	if err != nil {
		return err
	}
	limits, connLimits := edgeLimits(cfg.Limits)
	sip, err := edge.New(edge.Options{
		Limits:        limits,
		Connections:   connLimits,
		Listeners:     listeners,
		ExternalAddrs: cfg.ExternalAddrs,
		Localnets:     cfg.Localnets,
		Registrar: edge.RegistrarOptions{
			MinExpires:     cfg.Registrar.MinExpires,
			MaxExpires:     cfg.Registrar.MaxExpires,
			DefaultExpires: cfg.Registrar.DefaultExpires,
		},
		Resources:               res.Holder,
		Auth:                    digest,
		Location:                loc,
		Calls:                   tracker,
		Events:                  pipe,
		Logger:                  log.With("component", "edge"),
		Registerer:              reg,
		RouteSecret:             cfg.Auth.Secret,
		EnforceE164:             cfg.EnforceE164,
		EnforceE164MobilePrefix: cfg.EnforceE164MobilePrefix,
		ConnectVerifier:         verifier,
		Cluster:                 cl.edgeOptions(cfg),
		UDPSockets:              cfg.UDPSockets,
		ResponseCache:           edge.ResponseCacheLimits{MaxBytes: cfg.ResponseCacheSize},
		Guard: edge.GuardOptions{
			ScannerAgents:   cfg.Guard.ScannerAgents,
			Rate:            cfg.Guard.Rate,
			Burst:           cfg.Guard.Burst,
			BanFor:          cfg.Guard.BanTime,
			MaxAuthFailures: cfg.Guard.MaxAuthFailures,
			MaxSources:      cfg.Guard.MaxSources,
			Exempt:          cfg.Guard.Exempt,
			LimitLoopback:   cfg.Guard.LimitLoopback,
		},
	})
	if err != nil {
		return err
	}
	hs := health.New(cfg.HTTPAddr, reg, cfg.HealthChecks, events.ParseEnabled(env("ENABLE_PPROF")))
	if err := hs.Listen(); err != nil {
		return err
	}
	runAPI, err := listenAPI(env, res.DB, reg, log) // api.go: database modes only
	if err != nil {
		return err
	}

	// SIGTERM (ctx) starts a drain; runCtx ends SIP once it is over.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	dr := drainer{sip: sip, tracker: tracker, notReady: func() { hs.SetReady(false) }, withdraw: cl.withdraw(), timeout: cfg.DrainTimeout, log: log}
	go dr.run(ctx, runCtx, cancel)
	var wg sync.WaitGroup
	pipeCtx, stopPipe := context.WithCancel(context.Background())
	defer stopPipe()
	wg.Go(func() {
		if err := pipe.Run(pipeCtx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("events pipeline", "error", err)
		}
	})
	wg.Go(func() { runIdleTrim(runCtx, log, trimEvery) }) // idletrim.go
	wg.Go(func() { loc.Run(runCtx) })
	wg.Go(func() { _ = tracker.Run(runCtx) })
	wg.Go(func() { cl.Run(runCtx) })
	wg.Go(func() { sip.RunRegistry(runCtx) }) // trunks with outbound.sendRegister
	wg.Go(func() { res.Run(runCtx) })         // database modes: reload on change
	wg.Go(func() { runAPI(runCtx) })
	wg.Go(func() {
		if err := hs.Run(runCtx); err != nil {
			log.Error("http", "error", err)
		}
	})
	go func() {
		select {
		case <-sip.Ready():
			hs.SetReady(true)
			log.Info("routr ready", "http", hs.Addr(), "resources", res.Desc)
		case <-runCtx.Done():
		}
	}()

	sipErr := sip.Run(runCtx)
	hs.SetReady(false)
	cancel()
	if !cfg.Cluster.Enabled {
		// A lone edge ends its calls still up; in a cluster they stay in
		// the shared call ledger, and another edge ends them (on the BYE
		// or at the maximum duration), once.
		dr.endCalls()
	}
	cl.Wait() // the call ledger hands its last events to the pipeline
	log.Info("stopping: flushing events")
	flushCtx, done := context.WithTimeout(context.Background(), shutdownGrace)
	if err := pipe.Close(flushCtx); err != nil {
		log.Warn("events not all flushed", "error", err)
	}
	done()
	stopPipe()
	wg.Wait()
	return sipErr
}

// embeddedAddr is where the embedded NATS server listens: the host:port of
// NATS_PUBLISHER_URL when it names one, else the default.
func embeddedAddr(url string) string {
	u, err := events.ParseNATSURLs(url)
	if err != nil || len(u) == 0 {
		return events.DefaultEmbeddedAddr
	}
	pu, err := neturl.Parse(u[0])
	if err != nil || pu.Host == "" {
		return events.DefaultEmbeddedAddr
	}
	return pu.Host
}

// edgeListeners maps spec.transport to the edge's listeners; tls and wss
// get the certificate of spec.securityContext, read now so that a missing
// or bad one stops start-up with the file named.
func edgeListeners(cfg *config.Config) ([]edge.Listener, error) {
	var tlsConf *tls.Config
	var out []edge.Listener
	for _, t := range cfg.Transports {
		l := edge.Listener{Protocol: t.Protocol, Addr: net.JoinHostPort(t.BindAddr, strconv.Itoa(t.Port))}
		if t.Secure() {
			if tlsConf == nil {
				sc := cfg.TLS
				c, err := edge.LoadTLS(edge.TLSFiles{
					CertFile:           sc.CertFile,
					KeyFile:            sc.KeyFile,
					KeyStore:           sc.KeyStore,
					KeyStorePassword:   sc.KeyStorePassword,
					TrustStore:         sc.TrustStore,
					TrustStorePassword: sc.TrustStorePassword,
					ClientAuth:         sc.ClientAuthType,
					Protocols:          sc.ClientProtocols,
				})
				if err != nil {
					return nil, fmt.Errorf("spec.securityContext: %w", err)
				}
				tlsConf = c
			}
			l.TLS = tlsConf
		}
		out = append(out, l)
	}
	return out, nil
}

// connectVerifier reads the key that verifies X-Connect-Token headers;
// nil when none is configured.
func connectVerifier(cfg *config.Config) (*connect.Verifier, error) {
	if cfg.ConnectVerifierPublicKeyPath == "" {
		return nil, nil
	}
	pemKey, err := os.ReadFile(cfg.ConnectVerifierPublicKeyPath)
	if err != nil {
		return nil, fmt.Errorf("CONNECT_VERIFIER_PUBLIC_KEY_PATH: %w", err)
	}
	o, err := connect.ParseOptions(cfg.ConnectVerifierOptions)
	if err != nil {
		return nil, err
	}
	v, err := connect.NewVerifier(pemKey, o)
	if err != nil {
		return nil, fmt.Errorf("CONNECT_VERIFIER_PUBLIC_KEY_PATH %s: %w", cfg.ConnectVerifierPublicKeyPath, err)
	}
	return v, nil
}
