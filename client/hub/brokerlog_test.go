package hub

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBrokerLogDropsDuplicatedRefusalsAndNoise(t *testing.T) {
	tests := []struct {
		name  string
		level slog.Level // of the hub's logger
		log   func(*slog.Logger)
		want  string // substring expected, "" for nothing
	}{
		{"refusal already logged by the hub", slog.LevelInfo, func(l *slog.Logger) { l.Error("publish packet error", "packet", "…") }, ""},
		{"connection noise", slog.LevelInfo, func(l *slog.Logger) { l.Warn("", "error", "use of closed network connection") }, ""},
		{"real broker error", slog.LevelInfo, func(l *slog.Logger) { l.Error("listener failed", "err", "boom") }, "listener failed"},
		{"debug shows everything", slog.LevelDebug, func(l *slog.Logger) { l.Error("publish packet error") }, "publish packet error"},
		{"debug shows noise", slog.LevelDebug, func(l *slog.Logger) { l.Warn("client closed") }, "client closed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			base := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level})
			tc.log(slog.New(brokerLogHandler{base}).With("component", "broker").WithGroup("g"))
			if tc.want == "" {
				require.Empty(t, buf.String())
				return
			}
			require.Contains(t, buf.String(), tc.want)
			require.Contains(t, buf.String(), "component=broker")
		})
	}
}
