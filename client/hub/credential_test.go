package hub

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client/hub/hubtest"
	"github.com/stretchr/testify/require"
)

// creatorDenied is an error like the SDK's for a call the peers refused
// because of the caller's certificate (client.TransactionError.IdentityRefused).
type creatorDenied struct{}

func (creatorDenied) Error() string {
	return "device:Get: evaluate failed: evaluate call to endorser returned error: error validating proposal: access denied: channel [iotledger] creator org [Org1MSP]"
}
func (creatorDenied) IdentityRefused() bool { return true }

// failingLedger makes Device, the hub's health probe, fail with err once
// failing is set (for a revoked hub certificate: as peers do once the org's
// CRL in the channel configuration lists it).
type failingLedger struct {
	*hubtest.Ledger
	failing *atomic.Bool
	err     error
}

func (f failingLedger) Device(ctx context.Context, id string) (*api.Device, error) {
	if f.failing.Load() {
		return nil, f.err
	}
	return f.Ledger.Device(ctx, id)
}

func TestHealthSaysTheLedgerRefusesTheHubsIdentity(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		want    string // prefix of Health.Ledger
		advises bool
	}{
		{"revoked certificate", creatorDenied{}, LedgerIdentityRefused + ": ", true},
		{"peer down", hubtest.ErrUnavailable, "unreachable: ", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var failing atomic.Bool
			fx := &fixture{ledger: hubtest.NewLedger(), dir: t.TempDir()}
			fx.start(t, func(c *Config) {
				c.HTTPAddr = "127.0.0.1:0"
				c.Ledger = failingLedger{Ledger: fx.ledger, failing: &failing, err: tc.err}
			})
			code, h := healthz(t, fx)
			require.Equal(t, http.StatusOK, code, "%+v", h)
			failing.Store(true)

			code, h = healthz(t, fx)
			require.Equal(t, http.StatusServiceUnavailable, code)
			require.False(t, h.OK)
			require.True(t, strings.HasPrefix(h.Ledger, tc.want), h.Ledger)
			require.Equal(t, tc.advises, strings.Contains(h.Ledger, "enroll a new identity for the hub"), h.Ledger)
		})
	}
}
