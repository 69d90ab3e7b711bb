package adversary_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
)

// An operator (or a stolen operator identity) denies policy management to
// everyone: the org's MSP admin can still remove that policy, and no other
// org's admin can.
func TestDenyAllPolicyCannotLockOutTheOrgAdmin(t *testing.T) {
	e := env(t)
	ctx := e.ctx(t)
	id := "lock-" + unique()
	lock := api.Policy{ID: id, Description: "nobody manages lock-* policies",
		Statements: []api.Statement{{Sid: "lock", Effect: api.Deny, Principals: []string{"*"},
			Actions: []string{api.ActionPolicyManage}, Resources: []string{"lock-*"}}}}
	_, err := e.org1Operator.PutPolicy(ctx, lock)
	require.NoError(t, err)
	e.settle(t)

	err = e.org1Operator.DeletePolicy(ctx, id)
	requireRefused(t, err, api.CodeAccessDenied, api.ActionPolicyManage)
	replaced := lock
	replaced.Description = "replaced"
	_, err = e.org1Operator.PutPolicy(ctx, replaced)
	requireRefused(t, err, api.CodeAccessDenied, api.ActionPolicyManage)

	err = e.connect(t, "Org2", "admin").DeletePolicy(ctx, "Org1MSP/"+id)
	requireRefused(t, err, api.CodeAccessDenied)
	got, err := e.org1Operator.Policy(ctx, id)
	require.NoError(t, err)
	require.Equal(t, lock.Description, got.Description, "still in force")

	require.NoError(t, e.connect(t, "Org1", "admin").DeletePolicy(ctx, id), "Org1's MSP admin removes the lock")
	_, err = e.org1Operator.Policy(ctx, id)
	requireRefused(t, err, api.CodeNotFound, id)
}
