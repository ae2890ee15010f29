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
	"github.com/routr-go/routr/internal/resources"
)

// serve runs the edge until ctx ends, then drains: SIP stops first, then
// the event queues are flushed (bounded by shutdownGrace).
func serve(ctx context.Context, env func(string) string, logw io.Writer) error {
	cfg, err := config.Load(env)
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogLevel, logw)
	for _, w := range cfg.Warnings {
		log.Warn("configuration", "warning", w)
	}
	set, err := resources.LoadDir(cfg.ResourcesPath)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	ev := cfg.Events
	if ev.Embedded {
		srv, err := events.StartEmbedded(events.EmbeddedOptions{Addr: embeddedAddr(ev.NATSURL), Logger: log.With("component", "nats")})
		if err != nil {
			return fmt.Errorf("embedded NATS: %w", err)
		}
		defer srv.Close()
		ev.NATSEnabled = true
		ev.NATSURL = srv.ClientURL()
		log.Info("embedded NATS server started", "url", ev.NATSURL)
	}
	pipe, err := events.NewPipeline(events.Config{
		NATSEnabled:    ev.NATSEnabled,
		NATSURL:        ev.NATSURL,
		Subject:        ev.Subject,
		ConsoleEnabled: ev.Console,
		Durable:        ev.Durable,
		QueueBound:     ev.QueueSize,
	}, events.PipelineOptions{Registerer: reg, Logger: log.With("component", "events")})
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
	loc := location.NewMemory(location.MemoryOptions{
		MaxBindings: cfg.MaxBindings,
		OnExpire: func(b location.Binding) {
			pipe.Publish(events.EndpointUnregistered(b.AOR, "expired", time.Now()))
		},
	})
	tracker := calls.NewTracker(calls.Options{Sink: pipe, MaxDuration: cfg.MaxCallDuration, Registerer: reg})

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
	sip, err := edge.New(edge.Options{
		Listeners:     listeners,
		ExternalAddrs: cfg.ExternalAddrs,
		Localnets:     cfg.Localnets,
		Registrar: edge.RegistrarOptions{
			MinExpires:     cfg.Registrar.MinExpires,
			MaxExpires:     cfg.Registrar.MaxExpires,
			DefaultExpires: cfg.Registrar.DefaultExpires,
		},
		Resources:               resources.NewHolder(set),
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

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	pipeCtx, stopPipe := context.WithCancel(context.Background())
	defer stopPipe()
	wg.Go(func() {
		if err := pipe.Run(pipeCtx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("events pipeline", "error", err)
		}
	})
	wg.Go(func() { loc.Run(runCtx) })
	wg.Go(func() { _ = tracker.Run(runCtx) })
	wg.Go(func() { sip.RunRegistry(runCtx) }) // trunks with outbound.sendRegister
	wg.Go(func() {
		if err := hs.Run(runCtx); err != nil {
			log.Error("http", "error", err)
		}
	})
	go func() {
		select {
		case <-sip.Ready():
			hs.SetReady(true)
			log.Info("routr ready", "http", hs.Addr(), "resources", cfg.ResourcesPath)
		case <-runCtx.Done():
		}
	}()

	sipErr := sip.Run(runCtx)
	hs.SetReady(false)
	cancel()
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
