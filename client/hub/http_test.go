package hub

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client/hub/hubtest"
	"github.com/iotledger/iotledger/client/hub/wire"
	"github.com/stretchr/testify/require"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer func() { require.NoError(t, resp.Body.Close()) }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestHealthAndMetricsEndpointsReportTheHub(t *testing.T) {
	fx := newFixture(t, func(c *Config) { c.HTTPAddr = "127.0.0.1:0" })
	d := fx.enroll(t, "cold-1", api.StatusActive)
	m := fx.connect(t, d)
	_, err := m.publish(t, wire.Topic(d.id, wire.KindTelemetry), d.reading(t, 1, 3))
	require.NoError(t, err)
	eventually(t, func() bool { return fx.ledger.Committed()["cold-1/1"] == 1 }, "not committed")

	code, body := get(t, "http://"+fx.hub.HTTPAddr()+"/healthz")
	require.Equal(t, http.StatusOK, code)
	var h Health
	require.NoError(t, json.Unmarshal([]byte(body), &h))
	require.True(t, h.OK)
	require.Equal(t, testHubID, h.Hub)
	require.Equal(t, 1, h.Devices)

	// The ledger records the commit a moment before the hub resolves the
	// batch in its outbox and counts it: wait for the hub's own view.
	wants := []string{
		"iotledger_hub_readings_ingested_total 1",
		"iotledger_hub_batches_committed_total 1",
		"iotledger_hub_connected_devices 1",
		"iotledger_hub_outbox_depth 0",
		"iotledger_hub_submit_duration_seconds_count 1",
	}
	eventually(t, func() bool {
		code, body = get(t, "http://"+fx.hub.HTTPAddr()+"/metrics")
		if code != http.StatusOK {
			return false
		}
		for _, want := range wants {
			if !strings.Contains(body, want) {
				return false
			}
		}
		return true
	}, "metrics never showed all of %q", wants)
}

func TestHealthReportsAnUnreachableLedger(t *testing.T) {
	fx := newFixture(t, func(c *Config) { c.HTTPAddr = "127.0.0.1:0" })
	fx.ledger.Set(func(f *hubtest.Ledger) { f.Unreachable = true })
	code, body := get(t, "http://"+fx.hub.HTTPAddr()+"/healthz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.True(t, strings.Contains(body, `"ledger":"unreachable`), body)
}

func TestGracefulCloseDrainsTheOutboxToTheLedger(t *testing.T) {
	// A long batch wait: without the flush, readings would sit in the outbox.
	fx := newFixture(t, func(c *Config) { c.BatchWait = time.Hour; c.BatchSize = api.MaxBatchReadings; c.FlushTimeout = waitFor })
	d := fx.enroll(t, "cold-1", api.StatusActive)
	m := fx.connect(t, d)
	for seq := uint64(1); seq <= 5; seq++ {
		_, err := m.publish(t, wire.Topic(d.id, wire.KindTelemetry), d.reading(t, seq, 3))
		require.NoError(t, err)
	}
	require.Empty(t, fx.ledger.Committed())
	require.NoError(t, fx.hub.Close())
	require.Len(t, fx.ledger.Committed(), 5)
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	l := hubtest.NewLedger()
	for name, cfg := range map[string]Config{
		"no hub id":   {DataDir: t.TempDir(), Ledger: l},
		"no data dir": {HubID: "h", Ledger: l},
		"no ledger":   {HubID: "h", DataDir: t.TempDir()},
	} {
		_, err := New(cfg)
		var ce *ConfigError
		require.ErrorAs(t, err, &ce, name)
	}
}

func TestProfilingEndpointsAreServedOnlyWhenEnabled(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pprof bool
		want  int
	}{
		{"off by default", false, http.StatusNotFound},
		{"on when asked for", true, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, func(c *Config) { c.HTTPAddr = "127.0.0.1:0"; c.Pprof = tc.pprof })
			code, body := get(t, "http://"+fx.hub.HTTPAddr()+"/debug/pprof/goroutine?debug=1")
			require.Equal(t, tc.want, code)
			if tc.pprof {
				require.Contains(t, body, "goroutine profile:")
			}
		})
	}
}
