package adversary_test

import (
	"slices"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// A key of Org2's validates with Org2's endorsement alone, so Org2's
// modified chaincode can write anything into its own records. Honest
// endorsers must not believe what such a record claims about another org.

// Org2 rewrites its own device's record to say that Org1 owns it, so that
// Org1's hub, rules and grants would treat it as Org1's.
func TestForgedOwnerInADeviceRecordIsNotBelieved(t *testing.T) {
	e := env(t)
	ctx := e.ctx(t)
	sfx := unique()
	group := "g-own-" + sfx
	y := newDevice(t, "own-y")
	e.enroll(ctx, t, e.org2Operator, y, api.EnrollRequest{Type: "meter", Groups: []string{group}})
	x := newDevice(t, "own-x")
	e.enroll(ctx, t, e.org1Operator, x, api.EnrollRequest{Type: "siren"})
	// Were Y Org1's, this Org1 rule would fire on its readings and command X.
	_, err := e.org1Operator.PutRule(ctx, api.Rule{ID: "own-rule-" + sfx, Selector: api.DeviceSelector{Groups: []string{group}},
		Condition: "true", Actions: []api.RuleAction{
			{Type: api.ActionTypeAlert, Severity: api.SeverityCritical, Message: "reading of a group member"},
			{Type: api.ActionTypeCommand, Command: "sound", Target: "device:" + x.id, TTL: 600},
		}})
	require.NoError(t, err)
	e.settle(t)

	key := deviceKey(t, y.id)
	forged := withField(t, e.hostileGet(t, key), "owner", "Org1MSP")
	require.Equal(t, peer.TxValidationCode_VALID, e.hostileWrite(t, "Put", key, string(forged)),
		"Org2's endorsement alone may rewrite Org2's record")
	e.settle(t)
	require.JSONEq(t, string(forged), string(e.hostileGet(t, key)))

	requireForgeryRefused := func(t *testing.T) {
		t.Helper()
		_, err := e.org1Hub.SubmitBatch(ctx, api.BatchRequest{Readings: []reading.Envelope{y.reading(t, num("power", 1.5))}})
		requireRefused(t, err, api.CodeInconsistentRecord, y.id)
		e.settle(t)
		require.Empty(t, e.hostileGet(t, replayKey(t, y.id)), "no reading accepted")
		page, err := e.org1Operator.ListCommands(ctx, api.CommandQuery{Device: x.id})
		require.NoError(t, err)
		require.Empty(t, page.Commands, "Org1's rule did not fire")
		_, err = e.org1Operator.Device(ctx, y.id)
		requireRefused(t, err, api.CodeInconsistentRecord, y.id)
	}
	t.Run("owner field", requireForgeryRefused)

	// The record's endorsement policy is Org2's to change too: name Org1.
	require.Equal(t, peer.TxValidationCode_VALID, e.hostileWrite(t, "SetEndorsers", key, "Org1MSP"))
	e.settle(t)
	require.Equal(t, "Org1MSP", e.hostileEndorsers(t, key))
	t.Run("owner field and endorsers", requireForgeryRefused)
}

// Org2 breaks its own device's record in a group Org1 uses: Org1's
// listings, group commands and rules go on without it.
func TestBrokenRecordOfAnotherOrgDoesNotBreakGroupsListingsOrRules(t *testing.T) {
	e := env(t)
	ctx := e.ctx(t)
	sfx := unique()
	group := "g-" + sfx
	v := newDevice(t, "brk-v")
	e.enroll(ctx, t, e.org1Operator, v, api.EnrollRequest{Type: "lamp", Groups: []string{group}})
	w := newDevice(t, "brk-w")
	e.enroll(ctx, t, e.org2Operator, w, api.EnrollRequest{Type: "lamp", Groups: []string{group}})
	ruleID := "brk-rule-" + sfx
	_, err := e.org1Operator.PutRule(ctx, api.Rule{ID: ruleID, Selector: api.DeviceSelector{Devices: []string{v.id}},
		Condition: "true", Actions: []api.RuleAction{{Type: api.ActionTypeCommand, Command: "blink", Target: "group:" + group, TTL: 600}}})
	require.NoError(t, err)
	e.settle(t)

	require.Equal(t, peer.TxValidationCode_VALID, e.hostileWrite(t, "Put", deviceKey(t, w.id), "{"))
	e.settle(t)
	require.Equal(t, "{", string(e.hostileGet(t, deviceKey(t, w.id))))

	page, err := e.org1Operator.ListDevices(ctx, api.DeviceQuery{Group: group})
	require.NoError(t, err)
	require.Contains(t, deviceIDs(page.Devices), v.id)
	require.NotContains(t, deviceIDs(page.Devices), w.id)

	cmds, err := e.org1Operator.SendCommand(ctx, api.CommandRequest{Group: group, Name: "blink", TTLSeconds: 600})
	require.NoError(t, err)
	require.Len(t, cmds, 1)
	require.Equal(t, v.id, cmds[0].Device)

	receipt, err := e.org1Hub.SubmitBatch(ctx, api.BatchRequest{Readings: []reading.Envelope{v.reading(t, num("lux", 300))}})
	require.NoError(t, err)
	require.Equal(t, 1, receipt.Commands, "the rule's group command reaches V only")
	own, err := e.org1Operator.ListCommands(ctx, api.CommandQuery{Device: v.id})
	require.NoError(t, err)
	byRule := slices.DeleteFunc(slices.Clone(own.Commands), func(c api.Command) bool { return c.IssuedBy != "rule:"+ruleID })
	require.Len(t, byRule, 1)

	var skipped []api.SkippedRecord
	q := api.DeviceQuery{Owner: "Org2MSP", PageSize: 500}
	for {
		page, err := e.org1Operator.ListDevices(ctx, q)
		require.NoError(t, err)
		require.NotContains(t, deviceIDs(page.Devices), w.id)
		skipped = append(skipped, page.Skipped...)
		if page.Bookmark == "" {
			break
		}
		q.Bookmark = page.Bookmark
	}
	require.True(t, slices.ContainsFunc(skipped, func(s api.SkippedRecord) bool { return s.ID == w.id }),
		"the listing names the record it skipped: %+v", skipped)
}

func deviceIDs(ds []api.Device) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}
