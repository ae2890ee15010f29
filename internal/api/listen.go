package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Listener is the API's HTTP server, bound and ready to Run.
type Listener struct {
	srv *http.Server
	ln  net.Listener
	log *slog.Logger
}

// Listen binds cfg.Addr and prepares to serve h: gRPC over HTTP/2 (h2c
// when plaintext), gRPC-Web and Connect over HTTP/1.1 or HTTP/2.
func Listen(cfg Config, h http.Handler, log *slog.Logger) (*Listener, error) {
	tc, err := cfg.TLS()
	if err != nil {
		return nil, err
	}
	var p http.Protocols
	p.SetHTTP1(true)
	if tc != nil {
		p.SetHTTP2(true)
	} else {
		p.SetUnencryptedHTTP2(true)
	}
	srv := &http.Server{
		Handler:   h,
		Protocols: &p,
		TLSConfig: tc,
		// Calls are unary and small (MaxRequestBytes): a client that takes
		// longer than this to send one or read the answer is cut off.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: 100},
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("API_ADDR %s: %w", cfg.Addr, err)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	return &Listener{srv: srv, ln: ln, log: log}, nil
}

// Addr is the bound address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Run serves until ctx ends, then lets calls in progress finish for up to
// five seconds.
func (l *Listener) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- l.srv.Serve(l.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.srv.Shutdown(sctx); err != nil {
		l.log.Warn("api: shutdown", "error", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("api: %w", err)
	}
	return nil
}
