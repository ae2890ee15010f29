package api

import (
	"context"
	"log/slog"
)

// auditHandler passes info records to its inner handler whatever level
// that one was set to, so that LOG_LEVEL=warn (or error) still keeps the
// audit trail of changes.
type auditHandler struct{ inner slog.Handler }

func (h auditHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h auditHandler) Handle(ctx context.Context, r slog.Record) error { return h.inner.Handle(ctx, r) }

func (h auditHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return auditHandler{h.inner.WithAttrs(as)}
}

func (h auditHandler) WithGroup(name string) slog.Handler {
	return auditHandler{h.inner.WithGroup(name)}
}
