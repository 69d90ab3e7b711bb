package hub

import (
	"context"
	"log/slog"
)

// brokerLogHandler filters the embedded broker's log. The hub already logs
// every refusal it makes (with the device, the reason and the detail), and
// the broker would log each again, at error level, with a dump of the whole
// packet; connection-level noise (a device that drops its TCP connection)
// is not an operator's concern either. At debug level everything passes.
type brokerLogHandler struct{ next slog.Handler }

func (b brokerLogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	if b.next.Enabled(ctx, slog.LevelDebug) {
		return true
	}
	return l >= slog.LevelError && b.next.Enabled(ctx, l)
}

func (b brokerLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if !b.next.Enabled(ctx, slog.LevelDebug) && r.Message == "publish packet error" {
		return nil // the hub's own "message refused" line says it better
	}
	return b.next.Handle(ctx, r)
}

func (b brokerLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return brokerLogHandler{b.next.WithAttrs(attrs)}
}

func (b brokerLogHandler) WithGroup(name string) slog.Handler {
	return brokerLogHandler{b.next.WithGroup(name)}
}
