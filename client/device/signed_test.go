package device_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client/device"
	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/client/hub/hubtest"
	"github.com/iotledger/iotledger/client/hub/wire/wiretest"
)

func TestDeviceActsOnlyOnCommandsItsOrgsHubSigned(t *testing.T) {
	org := wiretest.NewCA(t, "ca.org1")
	other := wiretest.NewCA(t, "ca.org2")
	cases := []struct {
		name     string
		signer   *wiretest.CA // the CA of the hub's signing identity; nil: the hub does not sign
		explicit bool         // RequireHubSignatures rather than the default (the pinned TLS CA)
		acted    bool
	}{
		{"signed by its org's hub, checked against the pinned CA", org, false, true},
		{"signed by its org's hub, checked against explicit roots", org, true, true},
		{"signed by another org's hub", other, false, false},
		{"unsigned", nil, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fixture{ledger: hubtest.NewLedger(), data: t.TempDir()}
			cfg := f.hubConfig("127.0.0.1:0")
			cfg.TLS = org.ServerTLS(t)
			if tc.signer != nil {
				cfg.Signer = tc.signer.HubSigner(t, hubID)
			}
			h, err := hub.New(cfg)
			require.NoError(t, err)
			require.NoError(t, h.Start(t.Context()))
			t.Cleanup(func() { _ = h.Close() })
			f.hub, f.ca = h, org
			got := make(chan api.Command, 1)
			d := f.device(t, "valve-1", func(c *device.Config) {
				c.RootCAs = org.Pool()
				if tc.explicit {
					require.NoError(t, c.RequireHubSignatures(org.PEM, nil))
				}
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

func TestAPlaintextDeviceWithoutHubCAsRefusesCommands(t *testing.T) {
	ca := wiretest.NewCA(t, "ca.org1")
	f := &fixture{ledger: hubtest.NewLedger(), data: t.TempDir()}
	cfg := f.hubConfig("127.0.0.1:0")
	cfg.Signer = ca.HubSigner(t, hubID) // signed, but the device has no root to check it with
	h, err := hub.New(cfg)
	require.NoError(t, err)
	require.NoError(t, h.Start(t.Context()))
	t.Cleanup(func() { _ = h.Close() })
	f.hub, f.ca = h, ca // the fixture pins f.ca, which the test then drops
	d := f.device(t, "valve-2", func(c *device.Config) { c.RootCAs, c.InsecurePlaintext = nil, true })
	var acted atomic.Bool
	d.OnCommand(func(context.Context, api.Command) (api.CommandStatus, string) {
		acted.Store(true)
		return api.CommandAcked, ""
	})
	connect(t, d)
	issue(f, pending("cmd-2", "valve-2"))
	require.Eventually(t, func() bool { return d.Stats().CommandsRefused == 1 }, 10*time.Second, 20*time.Millisecond)
	require.False(t, acted.Load())
}
