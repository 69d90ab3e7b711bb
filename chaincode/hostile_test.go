package chaincode

import (
	"encoding/json"
	"testing"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
)

// What one org's sole endorsement can write is an existing key whose
// key-level policy names that org alone: these tests write such keys
// directly into the world, as a member running a modified chaincode behind
// its own peer would, and check that nothing follows for another org.

// rewrite replaces a committed value as a hostile owner of the key would.
func (w *world) rewrite(key string, value []byte) {
	w.t.Helper()
	_, ok := w.state[key]
	require.True(w.t, ok, "only existing keys can be rewritten by one org")
	w.state[key] = value
}

func (w *world) rewriteDevice(id string, change func(d *api.Device)) {
	w.t.Helper()
	d := w.getDevice(id)
	change(&d)
	b, err := json.Marshal(d)
	require.NoError(w.t, err)
	w.rewrite(ckey(w.t, kindDevice, id), b)
}

func TestForgedOwnerOfADeviceRecordIsRefused(t *testing.T) {
	w := newWorld(t)
	y := w.enroll(org2Operator, "y", "sensor")
	w.enroll(org1Operator, "org1-target", "sensor", "line")
	_, err := w.putRule(org1Operator, api.Rule{ID: "all", Selector: api.DeviceSelector{Types: []string{"sensor"}}, Condition: "true",
		Actions: []api.RuleAction{{Type: api.ActionTypeAlert, Severity: api.SeverityWarning}, {Type: api.ActionTypeCommand, Command: "stop", Target: "group:line"}}})
	require.NoError(t, err)

	t.Run("owner field rewritten", func(t *testing.T) {
		w.rewriteDevice("y", func(d *api.Device) { d.Owner = "Org1MSP" })
		before := len(w.state)
		_, err := w.submitBatch(org1Hub, y.reading(t, 5))
		require.Equal(t, api.CodeInconsistentRecord, api.CodeOf(err), "%v", err)
		require.ErrorContains(t, err, "device record dev~y claims owner Org1MSP, but its key-level endorsement policy names Org2MSP")
		require.Len(t, w.state, before, "nothing written, no rule fired")
		refused(t, w, org1Operator, api.CodeInconsistentRecord, "dev~y", func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Device.Revoke(ctx, "y", "not ours")
		})
		refused(t, w, org1Operator, api.CodeInconsistentRecord, "dev~y", func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Device.Get(ctx, "y")
		})
	})
	t.Run("owner field and key-level policy handed to the victim", func(t *testing.T) {
		ep, err := endorsementPolicy("Org1MSP")
		require.NoError(t, err)
		w.sbe[ckey(t, kindDevice, "y")] = ep
		_, err = w.submitBatch(org1Hub, y.reading(t, 5))
		require.Equal(t, api.CodeInconsistentRecord, api.CodeOf(err), "%v", err)
		require.ErrorContains(t, err, "Org1MSP never enrolled it or accepted it in a transfer")
	})
	t.Run("record under another device's key", func(t *testing.T) {
		w.rewriteDevice("y", func(d *api.Device) { d.ID, d.Owner = "org1-target", "Org2MSP" })
		refused(t, w, org2Operator, api.CodeInconsistentRecord, `says it is device "org1-target"`, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Device.Get(ctx, "y")
		})
	})
}

func TestAnotherOrgsBrokenRecordNeverBreaksAnOrgsReads(t *testing.T) {
	w := newWorld(t)
	v := w.enroll(org1Operator, "v", "sensor", "shared")
	w.enroll(org2Operator, "w", "sensor", "shared")
	_, err := w.putRule(org1Operator, api.Rule{ID: "fanout", Selector: api.DeviceSelector{Types: []string{"sensor"}}, Condition: "true",
		Actions: []api.RuleAction{{Type: api.ActionTypeCommand, Command: "ping", Target: "group:shared"}}})
	require.NoError(t, err)
	w.rewrite(ckey(t, kindDevice, "w"), []byte("{"))

	page := must[api.DevicePage](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.List(ctx, `{"group":"shared"}`)
	})
	require.Len(t, page.Devices, 1)
	require.Equal(t, "v", page.Devices[0].ID)
	require.Empty(t, page.Skipped, "Org1's group holds Org1's devices only")

	cmds := must[[]api.Command](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Command.Send(ctx, `{"group":"shared","name":"ping"}`)
	})
	require.Len(t, cmds, 1)
	require.Equal(t, "v", cmds[0].Device)

	var receipt api.BatchReceipt
	out, err := w.submitBatch(org1Hub, v.reading(t, 3))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal([]byte(out), &receipt))
	require.Equal(t, 1, receipt.Commands)
	require.Equal(t, "v", w.lastEvent.Commands[0].Device)

	page = must[api.DevicePage](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.List(ctx, `{"owner":"Org2MSP"}`)
	})
	require.Empty(t, page.Devices, "Org1 may not read Org2's devices")
	require.Len(t, page.Skipped, 1)
	require.Equal(t, "w", page.Skipped[0].ID)
	require.Equal(t, "Org2MSP", page.Skipped[0].Owner)
	require.Contains(t, page.Skipped[0].Reason, "INCONSISTENT_RECORD: device record dev~w cannot be decoded")
}

func TestGroupsTypesAndGroupCommandsAreScopedToTheirOwner(t *testing.T) {
	w := newWorld(t)
	w.enroll(org1Operator, "a", "pump", "site")
	w.enroll(org2Operator, "b", "pump", "site")
	page := must[api.DevicePage](w, org2Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.List(ctx, `{"type":"pump"}`)
	})
	require.Len(t, page.Devices, 1)
	require.Equal(t, "b", page.Devices[0].ID)
	refused(t, w, org2Operator, api.CodeAccessDenied, `group "site" of Org1MSP`, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Command.Send(ctx, `{"group":"site","owner":"Org1MSP","name":"stop"}`)
	})
	refused(t, w, org2Operator, api.CodeInvalidArgument, "at most one of type and group", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.List(ctx, `{"type":"pump","group":"site"}`)
	})
	refused(t, w, org2Operator, api.CodeInvalidArgument, "owner names the org of a group", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Command.Send(ctx, `{"device":"b","owner":"Org1MSP","name":"stop"}`)
	})
}

func TestAnOfferedTransferGivesTheRecipientNoVeto(t *testing.T) {
	w := newWorld(t)
	w.enroll(org1Operator, "t", "sensor")
	devKey := ckey(t, kindDevice, "t")
	tx := func(f func(ctx contractapi.TransactionContextInterface) (string, error)) {
		t.Helper()
		must[api.Device](w, org1Operator, f)
		require.Equal(t, []string{"Org1MSP"}, w.endorsers(devKey), "Org1's peer alone endorses every change of its device")
	}
	tx(func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.OfferTransfer(ctx, "t", "Org2MSP")
	})
	tx(func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Suspend(ctx, "t", "stolen?")
	})
	tx(func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.CancelTransfer(ctx, "t")
	})
	tx(func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.OfferTransfer(ctx, "t", "Org2MSP")
	})
	tx(func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Revoke(ctx, "t", "stolen")
	})
	require.Empty(t, w.getDevice("t").PendingTo, "a retired device cannot change hands")
}

func TestTheOrgsAdminRecoversFromAPolicyLockOut(t *testing.T) {
	w := newWorld(t)
	lock := api.Policy{ID: "lock-all", Statements: []api.Statement{{Sid: "freeze", Effect: api.Deny, Principals: []string{"*"},
		Actions: []string{api.ActionPolicyManage, api.ActionRuleManage}, Resources: []string{"*"}}}}
	_, err := w.putPolicy(org1Operator, lock)
	require.NoError(t, err)
	del := func(ref string) txFunc {
		return func(ctx contractapi.TransactionContextInterface) (string, error) {
			return "", w.c.Policy.Delete(ctx, ref)
		}
	}
	refused(t, w, org1Operator, api.CodeAccessDenied, "denied by policy lock-all statement freeze", del("lock-all"))
	_, err = w.putRule(org1Operator, hotRule("r1", api.RuleAction{Type: api.ActionTypeAlert, Severity: api.SeverityInfo}))
	require.Equal(t, api.CodeAccessDenied, api.CodeOf(err))
	refused(t, w, org2Admin, api.CodeAccessDenied, "may not policy:manage", del("Org1MSP/lock-all"))

	_, err = w.putRule(org1Admin, hotRule("r1", api.RuleAction{Type: api.ActionTypeAlert, Severity: api.SeverityInfo}))
	require.NoError(t, err, "the admin manages the org's rules despite the deny")
	_, err = w.invoke(org1Admin, del("lock-all"))
	require.NoError(t, err)
	require.NotContains(t, w.state, ckey(t, kindPolicy, "Org1MSP", "lock-all"))
	_, err = w.putPolicy(org1Operator, grant("p2", []string{"msp:Org2MSP"}, []string{api.ActionDeviceRead}, []string{"*"}))
	require.NoError(t, err, "after recovery the operators manage policies again")
}

func TestTheAdminGetsNothingBeyondItsOrgsDocuments(t *testing.T) {
	w := newWorld(t)
	w.enroll(org1Operator, "d", "sensor")
	refused(t, w, org1Admin, api.CodeAccessDenied, "device:manage", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Suspend(ctx, "d", "")
	})
}

func TestPolicyOrRuleWhoseFieldsDisagreeWithItsKeyIsRefused(t *testing.T) {
	w := newWorld(t)
	w.enroll(org2Operator, "b", "fridge")
	_, err := w.putRule(org2Operator, hotRule("r", api.RuleAction{Type: api.ActionTypeAlert, Severity: api.SeverityInfo}))
	require.NoError(t, err)
	k := ckey(t, kindRule, "Org2MSP", "r")
	var r api.Rule
	require.NoError(t, json.Unmarshal(w.state[k], &r))
	r.Owner = "Org1MSP" // a rule claiming another owner would command that owner's devices
	b, err := json.Marshal(r)
	require.NoError(t, err)
	w.rewrite(k, b)
	refused(t, w, org2Operator, api.CodeInconsistentRecord, `stored rule rule~Org2MSP~r says it is rule "r" of Org1MSP`, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Rule.Get(ctx, "r")
	})
}
