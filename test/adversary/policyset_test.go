package adversary_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
)

// An org's policies are one key, pol-set~<org>, and they decide who may act
// on the org's devices. Org2's modified chaincode writes a grant for Org2
// into Org1's set, endorsed by Org2 alone. Whether Org1's set is still as
// its enrolments made it (under the channel's MAJORITY) or restricted to
// Org1 by a policy change, the write commits invalid and grants nothing.
func TestAnotherOrgCannotWriteAnOrgsPolicySet(t *testing.T) {
	e := env(t)
	ctx := e.ctx(t)
	d := newDevice(t, "polset")
	e.enroll(ctx, t, e.org1Operator, d, api.EnrollRequest{Type: "pump"})
	e.settle(t)
	key := compositeKey(t, "pol-set", "Org1MSP")

	attack := func(t *testing.T) {
		t.Helper()
		before := e.hostileGet(t, key)
		require.NotEmpty(t, before, "Org1 has a policy set once it enrolls")
		forged := withGrant(t, before, api.Policy{ID: "stolen-" + d.id, Owner: "Org1MSP",
			Statements: []api.Statement{{Sid: "org2-reads", Effect: api.Allow, Principals: []string{"msp:Org2MSP"},
				Actions: []string{api.ActionDeviceRead, api.ActionTelemetryRead}, Resources: []string{d.id}}}})
		require.Equal(t, peer.TxValidationCode_ENDORSEMENT_POLICY_FAILURE, e.hostileWrite(t, "Put", key, string(forged)),
			"Org2's endorsement alone wrote Org1's policy set (its endorsers: %q)", e.hostileEndorsers(t, key))
		e.settle(t)
		require.Equal(t, before, e.hostileGet(t, key), "Org1's policy set unchanged")
		_, err := e.org2Operator.Device(ctx, d.id)
		requireRefused(t, err, api.CodeAccessDenied, api.ActionDeviceRead)
	}
	t.Run("as enrolments left it", attack)

	// The control: the same write to Org2's own set, under Org2's
	// endorsement, is valid, so the refusals above are the key's policy.
	_, err := e.org2Operator.PutPolicy(ctx, api.Policy{ID: "polset-own-" + d.id,
		Statements: []api.Statement{{Sid: "none", Effect: api.Deny, Principals: []string{"role:auditor@Org2MSP"},
			Actions: []string{api.ActionDeviceManage}, Resources: []string{"none-" + d.id}}}})
	require.NoError(t, err)
	e.settle(t)
	own := compositeKey(t, "pol-set", "Org2MSP")
	require.Equal(t, "Org2MSP", e.hostileEndorsers(t, own))
	ownSet := withGrant(t, e.hostileGet(t, own), api.Policy{ID: "polset-own2-" + d.id, Owner: "Org2MSP",
		Statements: []api.Statement{{Sid: "none", Effect: api.Deny, Principals: []string{"role:auditor@Org2MSP"},
			Actions: []string{api.ActionDeviceManage}, Resources: []string{"none-" + d.id}}}})
	require.Equal(t, peer.TxValidationCode_VALID, e.hostileWrite(t, "Put", own, string(ownSet)))
	e.settle(t)

	// A policy change of Org1's puts the set under Org1's endorsement alone.
	_, err = e.org1Operator.PutPolicy(ctx, api.Policy{ID: "polset-" + d.id,
		Statements: []api.Statement{{Sid: "none", Effect: api.Deny, Principals: []string{"role:auditor@Org1MSP"},
			Actions: []string{api.ActionDeviceManage}, Resources: []string{d.id}}}})
	require.NoError(t, err)
	e.settle(t)
	require.Equal(t, "Org1MSP", e.hostileEndorsers(t, key))
	t.Run("restricted to Org1", attack)
}

// withGrant returns a stored policy set with one more policy, in ID order
// and with the next version: what Org1's own chaincode would have written.
func withGrant(t *testing.T, set []byte, p api.Policy) []byte {
	t.Helper()
	var s struct {
		Owner    string       `json:"owner"`
		Version  int          `json:"version"`
		Policies []api.Policy `json:"policies"`
	}
	require.NoError(t, json.Unmarshal(set, &s))
	s.Version++
	s.Policies = append(s.Policies, p)
	slices.SortFunc(s.Policies, func(a, b api.Policy) int { return strings.Compare(a.ID, b.ID) })
	b, err := json.Marshal(s)
	require.NoError(t, err)
	return b
}
