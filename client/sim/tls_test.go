package sim

import (
	"testing"
	"time"

	"github.com/iotledger/iotledger/client/device/devicetest"
	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/client/hub/hubtest"
	"github.com/stretchr/testify/require"
)

func TestDevicesConnectOverTLS(t *testing.T) {
	ledger := hubtest.NewLedger()
	h, ca := devicetest.StartHub(t, hub.Config{HubID: "tls-hub", Ledger: ledger, BatchWait: 20 * time.Millisecond})

	rep := runUntil(t, Config{Hub: h.MQTTAddr(), HubID: "tls-hub", Devices: 2, Rate: 50, Scenario: "air-quality",
		KeysDir: t.TempDir(), Enroller: ledger, RootCAs: ca.Pool()},
		func() bool { return len(ledger.Committed()) >= 5 })
	require.Positive(t, rep.Accepted)
	require.Empty(t, rep.Refused)

	// Pinning another CA than the one that signed the hub's certificate,
	// nothing connects.
	rep, err := Run(t.Context(), Config{Hub: h.MQTTAddr(), HubID: "tls-hub", Devices: 1, Rate: 50, Scenario: "air-quality",
		KeysDir: t.TempDir(), Enroller: ledger, Duration: 300 * time.Millisecond, Prefix: "untrusting",
		RootCAs: devicetest.NewCA(t, "another CA").Pool()})
	require.NoError(t, err)
	require.Zero(t, rep.Accepted)
	require.Positive(t, rep.ConnectFailures)
	require.Contains(t, rep.LastConnectError, "certificate signed by unknown authority")
}
