package adversary_test

import (
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/test/adversary/rawgw"
)

// Offering a device to another org gives that org no say over the device
// until it accepts: the owner still manages, withdraws, re-offers and
// revokes it alone; accepting needs the owner's endorsement.
func TestTransferRecipientCannotVetoTheOwner(t *testing.T) {
	e := env(t)
	ctx := e.ctx(t)
	offered := func(t *testing.T, prefix string) *device {
		t.Helper()
		d := newDevice(t, prefix)
		e.enroll(ctx, t, e.org1Operator, d, api.EnrollRequest{Type: "tracker"})
		got, err := e.org1Operator.OfferTransfer(ctx, d.id, "Org2MSP")
		require.NoError(t, err)
		require.Equal(t, "Org2MSP", got.PendingTo)
		e.settle(t)
		return d
	}

	t.Run("the owner acts alone while the offered org withholds its endorsement", func(t *testing.T) {
		d := offered(t, "xfer-t")
		e.hostile.withhold(t)
		_, err := e.raw(t, "Org2", "operator").Evaluate(ctx, rawgw.Proposal{Function: "hostile:Get", Args: []string{deviceKey(t, d.id)}}, "Org2MSP")
		require.ErrorContains(t, err, "withholds its endorsement", "Org2's chaincode refuses everything now")

		owner := e.connect(t, "Org1", "operator", client.WithEndorsingOrganizations("Org1MSP"))
		got, err := owner.SetDeviceStatus(ctx, d.id, api.StatusSuspended, "the owner quarantines it")
		require.NoError(t, err)
		require.Equal(t, api.StatusSuspended, got.Status)
		got, err = owner.CancelTransfer(ctx, d.id)
		require.NoError(t, err)
		require.Empty(t, got.PendingTo)
		got, err = owner.OfferTransfer(ctx, d.id, "Org2MSP")
		require.NoError(t, err)
		require.Equal(t, "Org2MSP", got.PendingTo)
		got, err = owner.SetDeviceStatus(ctx, d.id, api.StatusRevoked, "the owner retires it")
		require.NoError(t, err)
		require.Equal(t, api.StatusRevoked, got.Status)
		got, err = e.org1Operator.Device(ctx, d.id)
		require.NoError(t, err)
		require.Equal(t, api.StatusRevoked, got.Status)
		require.Equal(t, "Org1MSP", got.Owner)
	})

	t.Run("the offered org accepts with the owner's endorsement", func(t *testing.T) {
		d := offered(t, "xfer-t2")
		got, err := e.org2Operator.AcceptTransfer(ctx, d.id)
		require.NoError(t, err)
		require.Equal(t, "Org2MSP", got.Owner)
		require.Empty(t, got.PendingTo)
	})

	t.Run("the offered org cannot accept on its own", func(t *testing.T) {
		d := offered(t, "xfer-t3")
		_, code, _, err := e.raw(t, "Org2", "operator").Invoke(ctx, rawgw.Proposal{Function: "device:AcceptTransfer", Args: []string{d.id}}, "Org2MSP")
		require.NoError(t, err)
		require.Equal(t, peer.TxValidationCode_ENDORSEMENT_POLICY_FAILURE, code, "accepting needs the owner's endorsement")
		got, err := e.org1Operator.Device(ctx, d.id)
		require.NoError(t, err)
		require.Equal(t, "Org1MSP", got.Owner)
		require.Equal(t, "Org2MSP", got.PendingTo)
	})
}
