package main

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routr-go/routr/internal/api"
	"github.com/routr-go/routr/internal/store"
)

// listenAPI binds the management API (API_ADDR, API_TLS_*) on db and
// returns the function that serves it until its context ends. In files
// mode (db nil) there is no API: resources are read-only, and the
// function returns at once.
func listenAPI(env func(string) string, db *store.DB, reg prometheus.Registerer, log *slog.Logger) (func(context.Context), error) {
	if db == nil {
		return func(context.Context) {}, nil
	}
	cfg, err := api.LoadConfig(env)
	if err != nil {
		return nil, err
	}
	log = log.With("component", "api")
	srv := api.New(api.Options{Store: db, Logger: log, Registerer: reg, CORSOrigins: cfg.CORSOrigins, TrustedNetworks: cfg.TrustedNetworks})
	l, err := api.Listen(cfg, srv.Handler(), log)
	if err != nil {
		return nil, err
	}
	log.Info("management API listening", "addr", l.Addr().String(), "tls", cfg.CertFile != "", "client_certs", cfg.ClientCAFile != "")
	return func(ctx context.Context) {
		if err := l.Run(ctx); err != nil {
			log.Error("management API stopped", "error", err)
		}
	}, nil
}
