package network_test

import (
	"testing"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-protos-go-apiv2/gateway"
	mb "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/test/testnet"
)

// creatorDenied is the peer's answer to a proposal whose creator its
// channel MSPs refuse (the peer's log says "The certificate has been
// revoked"; the client learns only this).
const creatorDenied = "error validating proposal: access denied: channel [iotledger] creator org [Org1MSP]"

// requireCreatorDenied checks a gateway error: the gRPC code and, in the
// status message or the endorsers' details, the peer's refusal of the
// creator.
func requireCreatorDenied(t *testing.T, err error, code codes.Code) {
	t.Helper()
	require.Error(t, err)
	st := status.Convert(err)
	require.Equal(t, code, st.Code(), "%v", err)
	found := false
	for _, d := range st.Details() {
		if ed, ok := d.(*gateway.ErrorDetail); ok {
			require.Equal(t, "Org1MSP", ed.GetMspId())
			found = found || ed.GetMessage() == creatorDenied
		}
	}
	require.True(t, found, "no endorser detail says %q: %v", creatorDenied, err)
}

func TestRevokedIdentityIsRefusedWhileItsOrgsOthersWork(t *testing.T) {
	deployRef(t)
	ctx := ctxFor(t, 5*time.Minute)
	compromised, kept := testnet.UniqueID(t, "stolen-hub"), testnet.UniqueID(t, "kept-hub")
	for _, name := range []string{compromised, kept} {
		_, err := testNet.EnrollIdentity(ctx, "Org1", name, map[string]string{network.RoleAttribute: "hub"})
		require.NoError(t, err)
	}
	ch := testNet.Channel()
	bad := connect(t, testNet, "Org1", compromised).GetNetwork(ch).GetContract(refChaincode)
	good := connect(t, testNet, "Org1", kept).GetNetwork(ch).GetContract(refChaincode)
	otherOrg := connect(t, testNet, "Org2", "operator").GetNetwork(ch).GetContract(refChaincode)

	// Before: the identity submits and queries like any other.
	_, before := submit(t, bad, "Put", client.WithArguments("before-"+compromised, "ok"))
	require.True(t, before.Successful)
	got, err := bad.EvaluateTransaction("Get", "before-"+compromised)
	require.NoError(t, err)
	require.Equal(t, "ok", string(got))
	// A transaction endorsed now, to be sent to the orderer only after
	// the revocation.
	proposal, err := bad.NewProposal("Put", client.WithArguments("endorsed-before-"+compromised, "late"))
	require.NoError(t, err)
	endorsedEarly, err := proposal.Endorse()
	require.NoError(t, err)

	rev, err := testNet.RevokeIdentity(ctx, "Org1", compromised, "keyCompromise")
	require.NoError(t, err)
	require.Equal(t, "keycompromise", rev.Reason)
	require.NotEmpty(t, rev.Serial, "the identity's certificate is known")
	require.GreaterOrEqual(t, rev.Revoked, 1)
	require.NotNil(t, rev.Update)
	t.Logf("revocation: CA revoke + gencrl + config update took %s (config update alone %s), config block %d",
		rev.Took, rev.Update.Took, rev.Update.Block)
	require.Equal(t, []string{"Org1MSP"}, rev.Update.Signers, "the org's own admin suffices for its MSP")
	require.NotZero(t, rev.Update.Sequence)

	t.Run("its submit is refused at endorsement", func(t *testing.T) {
		_, err := bad.SubmitTransaction("Put", "after-"+compromised, "refused")
		var endorseErr *client.EndorseError
		require.ErrorAs(t, err, &endorseErr)
		requireCreatorDenied(t, err, codes.Aborted)
	})
	t.Run("its query is refused", func(t *testing.T) {
		_, err := bad.EvaluateTransaction("Get", "before-"+compromised)
		requireCreatorDenied(t, err, codes.FailedPrecondition)
	})
	t.Run("what it had endorsed before does not commit", func(t *testing.T) {
		_, err := endorsedEarly.Submit()
		var submitErr *client.SubmitError
		require.ErrorAs(t, err, &submitErr, "the orderer took it")
		require.Equal(t, codes.Aborted, status.Code(err))
		require.ErrorContains(t, err, "status=FORBIDDEN")
		require.ErrorContains(t, err, "'Writers' sub-policies")
		_, err = good.EvaluateTransaction("Get", "endorsed-before-"+compromised)
		require.ErrorContains(t, err, "NOT_FOUND")
	})
	t.Run("its org's other identities and the other org work", func(t *testing.T) {
		for _, c := range []*client.Contract{good, otherOrg} {
			key := testnet.UniqueID(t, "after-revocation")
			_, st := submit(t, c, "Put", client.WithArguments(key, "ok"))
			require.True(t, st.Successful)
			got, err := c.EvaluateTransaction("Get", "before-"+compromised)
			require.NoError(t, err, "what the revoked identity wrote before stays")
			require.Equal(t, "ok", string(got))
		}
	})
	t.Run("another org's admin cannot lift the revocation", func(t *testing.T) {
		_, err := testNet.UpdateChannel(ctx, network.ChannelUpdate{
			Description: "Org2 empties Org1's CRLs",
			Change: network.EditApplicationMSP("Org1MSP", func(m *mb.FabricMSPConfig) error {
				m.RevocationList = nil
				return nil
			}),
			Signers: []string{"Org2"},
		})
		var refused *network.ConfigUpdateRefusedError
		require.ErrorAs(t, err, &refused)
		require.Contains(t, refused.Reason, "/Channel/Application/Org1/MSP not satisfied")
		_, err = bad.EvaluateTransaction("Get", "before-"+compromised)
		requireCreatorDenied(t, err, codes.FailedPrecondition)
	})
	t.Run("revoking again changes nothing", func(t *testing.T) {
		again, err := testNet.RevokeIdentity(ctx, "Org1", compromised, "keycompromise")
		require.NoError(t, err)
		require.Nil(t, again.Update, "no config update for the CRL already in place")
		require.Equal(t, rev.Revoked, again.Revoked)
	})
	t.Run("an identity the CA never registered is refused", func(t *testing.T) {
		_, err := testNet.RevokeIdentity(ctx, "Org1", testnet.UniqueID(t, "never-registered"), "")
		require.ErrorIs(t, err, network.ErrUnknownIdentity)
	})
}
