package edge

import (
	"context"
	"log/slog"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// connNoise are what sipgo logs at Warn or Error about connections that
// come and go, which on an edge serving thousands of WebSocket phones is
// routine: a peer that drops its connection, idles out, fails its
// handshake or leaves a transaction behind. Left at Error, anyone could
// flood the log by opening and dropping connections.
var connNoise = []string{
	"ref went negative", "not clean cleanup", "Read error", "Got TCP error",
	"Fail to upgrade", "Failed to pong keep alive", "Fail to accept",
}

// demoteConnNoise logs connNoise records at Debug.
func demoteConnNoise(l *slog.Logger) *slog.Logger {
	return slog.New(connNoiseHandler{l.Handler()})
}

type connNoiseHandler struct{ next slog.Handler }

func (h connNoiseHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h connNoiseHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn && isConnNoise(r.Message) {
		if !h.next.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		nr := slog.NewRecord(r.Time, slog.LevelDebug, r.Message, r.PC)
		r.Attrs(func(a slog.Attr) bool { nr.AddAttrs(a); return true })
		return h.next.Handle(ctx, nr)
	}
	return h.next.Handle(ctx, r)
}

func isConnNoise(msg string) bool {
	for _, n := range connNoise {
		if strings.Contains(msg, n) {
			return true
		}
	}
	return false
}

func (h connNoiseHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return connNoiseHandler{h.next.WithAttrs(as)}
}

func (h connNoiseHandler) WithGroup(name string) slog.Handler {
	return connNoiseHandler{h.next.WithGroup(name)}
}

// SetStackLogger sends what sipgo logs to its process-wide logger to l,
// filtered as the edge's own sipgo records are: the tcp, tls, ws and wss
// transports (built with the edge's timeouts, which leaves them sipgo's
// process-wide logger) and connection reference counting log there. Like SetTransactionLinger it changes
// process-wide state: call it once, before any Server runs.
func SetStackLogger(l *slog.Logger) {
	sip.SetDefaultLogger(demoteConnNoise(quietSIPLogger(l)))
}
