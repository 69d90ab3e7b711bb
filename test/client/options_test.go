package client_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/test/testnet"
)

func TestAWriteEndorsedOnlyByAnotherOrgIsInvalidatedAndNotRetried(t *testing.T) {
	op := connect(t, "Org1", "operator")
	d := enroll(t, op, testnet.UniqueID(t, "sbe"))

	// Org1's operator asks only Org2's peer to endorse a change of an Org1
	// device: the device key's endorsement policy needs Org1's peer.
	wrong := connect(t, "Org1", "operator", client.WithEndorsingOrganizations("Org2MSP"))
	fw := "9.9.9"
	_, err := wrong.UpdateDevice(t.Context(), api.DeviceUpdate{ID: d.ID, Firmware: &fw})
	var te *client.TransactionError
	require.ErrorAs(t, err, &te)
	require.Equal(t, client.StageCommit, te.Stage)
	require.Equal(t, "ENDORSEMENT_POLICY_FAILURE", te.ValidationCode)
	require.Equal(t, 1, te.Attempts, "only read conflicts are retried")
	require.False(t, client.IsConflict(err))

	after, err := op.Device(t.Context(), d.ID)
	require.NoError(t, err)
	require.Equal(t, d.Firmware, after.Firmware, "the invalid transaction changed nothing")
}

func TestIdentitiesShareOneConnection(t *testing.T) {
	p, err := fabric.Profile("Org1")
	require.NoError(t, err)
	conn, err := client.NewConnection(p)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })

	op, err := client.Dial(t.Context(), conn, p, "operator")
	require.NoError(t, err)
	hub, err := client.Dial(t.Context(), conn, p, "hub")
	require.NoError(t, err)
	t.Cleanup(func() { _ = hub.Close() })

	d := enroll(t, op, testnet.UniqueID(t, "shared"))
	require.NoError(t, op.Close(), "closing one identity")

	receipt, err := hub.SubmitReading(t.Context(), d.reading(t, 1, 2.5))
	require.NoError(t, err, "the other identity keeps the shared connection")
	require.Equal(t, 1, receipt.Size)

	_, err = client.Dial(t.Context(), conn, p, "nobody")
	require.ErrorIs(t, err, client.ErrUnknownIdentity)
}
