package events

import (
	"context"
	"log/slog"
)

// ConsolePublisher writes every event to a logger at Info level
// (CONSOLE_PUBLISHER_ENABLED): message "event", with the event's type, id
// and JSON payload. Writing a log line can block, so put it behind a Queue
// like any publisher.
type ConsolePublisher struct {
	// Logger receives the events; nil means slog.Default().
	Logger *slog.Logger
}

// Send logs e.
func (p ConsolePublisher) Send(ctx context.Context, e Event) error {
	l := p.Logger
	if l == nil {
		l = slog.Default()
	}
	l.LogAttrs(ctx, slog.LevelInfo, "event",
		slog.String("type", e.Type),
		slog.String("id", e.ID),
		slog.String("payload", string(e.Body)))
	return nil
}
