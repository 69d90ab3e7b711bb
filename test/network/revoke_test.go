package network_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/status"

	"github.com/iotledger/iotledger/network"
)

func TestRevokedIdentityIsRefusedWhileItsOrgsOthersWork(t *testing.T) {
	deployRef(t)
	ctx := ctxFor(t, 5*time.Minute)
	suffix := fmt.Sprint(time.Now().UnixNano())
	compromised, kept := "stolen-hub-"+suffix, "kept-hub-"+suffix
	for _, name := range []string{compromised, kept} {
		_, err := testNet.EnrollIdentity(ctx, "Org1", name, map[string]string{network.RoleAttribute: "hub"})
		require.NoError(t, err)
	}
	bad := connect(t, testNet, "Org1", compromised).GetNetwork(testNet.Channel()).GetContract(refChaincode)
	good := connect(t, testNet, "Org1", kept).GetNetwork(testNet.Channel()).GetContract(refChaincode)
	_, err := bad.SubmitTransaction("Put", "before-"+compromised, "ok")
	require.NoError(t, err)

	rev, err := testNet.RevokeIdentity(ctx, "Org1", compromised, "keyCompromise")
	require.NoError(t, err)
	t.Logf("revocation took %s (config update %s)", rev.Took, rev.Update.Took)

	_, err = bad.SubmitTransaction("Put", "after-"+compromised, "refused")
	t.Logf("submit: %v code=%v details=%v", err, status.Code(err), status.Convert(err).Details())
	_, err = bad.EvaluateTransaction("Get", "before-"+compromised)
	t.Logf("evaluate: %v code=%v details=%v", err, status.Code(err), status.Convert(err).Details())
	_, err = good.SubmitTransaction("Put", "after-"+kept, "ok")
	require.NoError(t, err)
	_ = client.WithArguments
}
