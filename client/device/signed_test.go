package device_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client/device"
	"github.com/iotledger/iotledger/client/device/devicetest"
	"github.com/iotledger/iotledger/client/hub/hubtest"
	"github.com/iotledger/iotledger/client/hub/wire/wiretest"
)

func TestDeviceActsOnlyOnCommandsItsOrgsHubSigned(t *testing.T) {
	org := wiretest.NewCA(t, "ca.org1")
	other := wiretest.NewCA(t, "ca.org2")
	cases := []struct {
		name    string
		signer  *wiretest.CA // the CA of the hub's signing identity; nil: the hub does not sign
		trusted *wiretest.CA // the CA the device is provisioned with
		acted   bool
	}{
		{"signed by its org's hub", org, org, true},
		{"signed by another org's hub", other, org, false},
		{"unsigned", nil, org, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fixture{ledger: hubtest.NewLedger(), data: t.TempDir()}
			cfg := f.hubConfig("")
			if tc.signer != nil {
				cfg.Signer = tc.signer.HubSigner(t, hubID)
			}
			f.hub, f.ca = devicetest.StartHub(t, cfg)
			got := make(chan api.Command, 1)
			d := f.device(t, "valve-1", func(c *device.Config) {
				require.NoError(t, c.RequireHubSignatures(tc.trusted.PEM, func() time.Time { return wiretest.Epoch.Add(time.Hour) }))
			})
			d.OnCommand(func(_ context.Context, c api.Command) (api.CommandStatus, string) {
				got <- c
				return api.CommandAcked, "closed"
			})
			connect(t, d)
			issue(f, pending("cmd-1", "valve-1"))
			if tc.acted {
				select {
				case c := <-got:
					require.Equal(t, "cmd-1", c.ID)
				case <-time.After(10 * time.Second):
					t.Fatal("the device never acted on its hub's signed command")
				}
				return
			}
			require.Eventually(t, func() bool { return d.Stats().CommandsRefused == 1 }, 10*time.Second, 20*time.Millisecond)
			select {
			case c := <-got:
				t.Fatalf("the device acted on %s", c.ID)
			default:
			}
		})
	}
}
