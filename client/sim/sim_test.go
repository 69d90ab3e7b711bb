package sim

import (
	"context"
	"testing"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client/device/devicetest"
	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/client/hub/hubtest"
	"github.com/stretchr/testify/require"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"2/s", 2, true}, {"30/m", 0.5, true}, {"3600/h", 1, true}, {"5", 5, true}, {"0.5/s", 0.5, true},
		{"0/s", 0, false}, {"-1/s", 0, false}, {"2/d", 0, false}, {"fast", 0, false}, {"", 0, false}, {"NaN/s", 0, false},
	}
	for _, tc := range tests {
		got, err := ParseRate(tc.in)
		if !tc.ok {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.InDelta(t, tc.want, got, 1e-9, tc.in)
	}
}

func TestScenariosAreDeterministicAndHaveExcursions(t *testing.T) {
	checks := map[string]func(v map[string]float64) bool{
		"cold-chain":        func(v map[string]float64) bool { return v["temperature"] > 8 },
		"patient-vitals":    func(v map[string]float64) bool { return v["heart_rate"] > 120 },
		"soil-moisture":     func(v map[string]float64) bool { return v["soil_moisture"] < 12 },
		"machine-vibration": func(v map[string]float64) bool { return v["vibration_rms"] > 7 },
		"air-quality":       func(v map[string]float64) bool { return v["pm25"] > 55 },
	}
	require.Len(t, Scenarios(), len(checks))
	for _, sc := range Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			a, b := sc.NewGenerator(42, 3), sc.NewGenerator(42, 3)
			excursions := 0
			for range 2000 {
				va, vb := a.Next(), b.Next()
				require.Equal(t, va, vb, "same seed, same values")
				nums := map[string]float64{}
				for _, v := range va {
					if v.Number != nil {
						nums[v.Name] = *v.Number
					}
				}
				if checks[sc.Name](nums) {
					excursions++
				}
			}
			require.Positive(t, excursions, "no excursion in 2000 readings")
			require.Less(t, excursions, 400, "excursions should be occasional")
		})
	}
	_, err := LookupScenario("weather")
	require.Error(t, err)
}

func TestConfigRefusesBadSettings(t *testing.T) {
	base := Config{Hub: "127.0.0.1:1", HubID: "h", Devices: 1, Rate: 1, Scenario: "cold-chain", KeysDir: t.TempDir(), InsecurePlaintext: true}
	for name, change := range map[string]func(c *Config){
		"neither TLS nor plaintext": func(c *Config) { c.InsecurePlaintext = false },
		"TLS and plaintext":         func(c *Config) { c.RootCAs = devicetest.NewCA(t, "ca").Pool() },
		"no hub":                    func(c *Config) { c.Hub = "" },
		"no hub id":                 func(c *Config) { c.HubID = "" },
		"zero devices":              func(c *Config) { c.Devices = 0 },
		"zero rate":                 func(c *Config) { c.Rate = 0 },
		"bad scenario":              func(c *Config) { c.Scenario = "x" },
		"no keys dir":               func(c *Config) { c.KeysDir = "" },
		"invalid prefix":            func(c *Config) { c.Prefix = "a b" },
	} {
		c := base
		change(&c)
		_, err := Run(t.Context(), c)
		require.Error(t, err, name)
	}
}

func TestSimulatedDevicesEnrollPublishAndAckCommands(t *testing.T) {
	ledger := hubtest.NewLedger()
	h, ca := devicetest.StartHub(t, hub.Config{HubID: "sim-hub", BatchSize: 20, BatchWait: 20 * time.Millisecond, Ledger: ledger, Events: ledger})

	keys := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type result struct {
		rep Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := Run(ctx, Config{Hub: h.MQTTAddr(), HubID: "sim-hub", RootCAs: ca.Pool(), Devices: 3, Rate: 50, Scenario: "cold-chain",
			Seed: 7, KeysDir: keys, Enroller: ledger, RecordAccepted: true})
		done <- result{rep, err}
	}()
	// The bounds are for liveness on a loaded machine, not timing.
	require.Eventually(t, func() bool { return h.Health(t.Context()).Devices == 3 }, 30*time.Second, 10*time.Millisecond)
	cmd := api.Command{ID: "cmd-1", Device: "cold-chain-0002", Name: "set-setpoint", Status: api.CommandPending, ExpiresAt: time.Now().Add(time.Hour)}
	ledger.AddCommand(cmd)
	ledger.Events <- api.Event{Type: api.EventCommandIssued, Commands: []api.Command{cmd}}
	require.Eventually(t, func() bool {
		return ledger.Command("cmd-1").Status == api.CommandAcked && len(ledger.Committed()) >= 30
	}, 30*time.Second, 10*time.Millisecond)
	cancel()
	res := <-done
	require.NoError(t, res.err)
	rep := res.rep

	require.Equal(t, 3, rep.Devices)
	require.Empty(t, rep.Refused)
	require.Equal(t, rep.Sent, rep.Accepted, "every reading sent was acknowledged")
	require.Equal(t, int64(1), rep.CommandsReceived)
	require.Equal(t, int64(1), rep.CommandsAcked)
	// Every acknowledged reading reaches the ledger exactly once.
	require.Eventually(t, func() bool { return h.Outbox().Depth() == 0 }, 30*time.Second, 10*time.Millisecond)
	committed := ledger.Committed()
	var accepted int
	for dev, seqs := range rep.AcceptedSeqs {
		for _, s := range seqs {
			require.Equal(t, 1, committed[hubtest.Key(dev, s)])
			accepted++
		}
	}
	require.Equal(t, accepted, len(committed))

	// Keys were saved: a second run reuses the enrolled identities.
	before := len(ledger.Committed())
	rep2 := runUntil(t, Config{Hub: h.MQTTAddr(), HubID: "sim-hub", RootCAs: ca.Pool(), Devices: 3, Rate: 50, Scenario: "cold-chain",
		KeysDir: keys, Enroller: ledger}, func() bool { return len(ledger.Committed()) >= before+10 })
	require.Empty(t, rep2.Refused)
	require.Positive(t, rep2.Accepted)
}

// runUntil runs a simulation until cond holds, then stops it and returns its report.
func runUntil(t *testing.T, cfg Config, cond func() bool) Report {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type result struct {
		rep Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := Run(ctx, cfg)
		done <- result{rep, err}
	}()
	require.Eventually(t, cond, 10*time.Second, 10*time.Millisecond)
	cancel()
	res := <-done
	require.NoError(t, res.err)
	return res.rep
}

func TestDevicesOfAnotherHubIDCannotConnectAndTheReportSaysSo(t *testing.T) {
	ledger := hubtest.NewLedger()
	h, ca := devicetest.StartHub(t, hub.Config{HubID: "hub-a", Ledger: ledger})
	rep, err := Run(t.Context(), Config{Hub: h.MQTTAddr(), HubID: "hub-b", RootCAs: ca.Pool(), Devices: 1, Rate: 10, Scenario: "soil-moisture",
		KeysDir: t.TempDir(), Enroller: ledger, Duration: 1500 * time.Millisecond})
	require.NoError(t, err)
	require.Zero(t, rep.Accepted)
	require.Positive(t, rep.ConnectFailures)
	require.Contains(t, rep.LastConnectError, "bad username or password")
}
