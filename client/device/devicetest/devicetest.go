// Package devicetest gives tests of device software a hub to talk to over
// verified TLS: a throwaway CA, server certificates it signs, and an
// in-process hub (client/hub) serving MQTT over TLS with one. Pair it with
// the fake ledger of client/hub/hubtest.
package devicetest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/client/hub/wire/wiretest"
)

// CA is a throwaway org CA: it issues the hub's TLS certificate and the
// identity the hub signs commands with, and devices pin it for both.
type CA = wiretest.CA

// NewCA makes a CA named name.
func NewCA(t testing.TB, name string) *CA { return wiretest.NewCA(t, name) }

// StartHub starts an in-process hub on 127.0.0.1 serving MQTT over TLS with
// a certificate of a new CA and signing what it delivers with a hub
// identity of that CA, and returns it with that CA. cfg needs HubID and
// Ledger; MQTTAddr, DataDir, TLS and Signer are filled in when empty. The
// hub is closed when the test ends.
func StartHub(t testing.TB, cfg hub.Config) (*hub.Hub, *CA) {
	t.Helper()
	ca := NewCA(t, "hub test CA")
	if cfg.TLS == nil {
		cfg.TLS = ca.ServerTLS(t)
	}
	if cfg.Signer == nil {
		cfg.Signer = ca.HubSigner(t, cfg.HubID)
	}
	if cfg.MQTTAddr == "" {
		cfg.MQTTAddr = "127.0.0.1:0"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	h, err := hub.New(cfg)
	require.NoError(t, err)
	require.NoError(t, h.Start(t.Context()))
	t.Cleanup(func() { _ = h.Close() })
	return h, ca
}
