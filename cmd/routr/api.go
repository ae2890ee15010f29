package main

import (
	"context"
	"log/slog"
	"sync"

	"github.com/routr-go/routr/internal/api"
	"github.com/routr-go/routr/internal/store"
)

// startAPI binds the management API (settings API_ADDR, API_TLS_*) on st
// and serves it on wg until ctx ends. It runs in database mode only: in
// files mode resources are read-only.
func startAPI(ctx context.Context, wg *sync.WaitGroup, env func(string) string, st store.Store, log *slog.Logger) error {
	cfg, err := api.LoadConfig(env)
	if err != nil {
		return err
	}
	log = log.With("component", "api")
	srv := api.New(api.Options{Store: st, Logger: log})
	l, err := api.Listen(cfg, srv.Handler(), log)
	if err != nil {
		return err
	}
	log.Info("management API listening", "addr", l.Addr().String(), "tls", cfg.CertFile != "", "client_certs", cfg.ClientCAFile != "")
	wg.Go(func() {
		if err := l.Run(ctx); err != nil {
			log.Error("management API stopped", "error", err)
		}
	})
	return nil
}
