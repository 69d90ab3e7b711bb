package client_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/index"
	"github.com/iotledger/iotledger/test/testnet"
)

func TestDeviceCallsRoundTripThroughTheLedger(t *testing.T) {
	ctx := t.Context()
	op := connect(t, "Org1", "operator")
	require.Equal(t, "Org1MSP", op.MSPID())
	id := testnet.UniqueID(t, "rt")
	d := enroll(t, op, id, "cold-chain")
	require.Equal(t, "Org1MSP", d.Owner)
	require.Equal(t, api.StatusActive, d.Status)
	require.Equal(t, 1, d.KeyVersion)

	got, err := op.Device(ctx, id)
	require.NoError(t, err)
	require.Equal(t, d.Device, *got)

	fw := "2.0.0"
	updated, err := op.UpdateDevice(ctx, api.DeviceUpdate{ID: id, Firmware: &fw})
	require.NoError(t, err)
	require.Equal(t, "2.0.0", updated.Firmware)
	require.Equal(t, []string{"cold-chain"}, updated.Groups, "fields not in the update stay")

	page, err := op.ListDevices(ctx, api.DeviceQuery{Group: "cold-chain", PageSize: 500})
	require.NoError(t, err)
	require.Contains(t, deviceIDs(page.Devices), id)

	suspended, err := op.SetDeviceStatus(ctx, id, api.StatusSuspended, "maintenance")
	require.NoError(t, err)
	require.Equal(t, api.StatusSuspended, suspended.Status)

	history, err := op.DeviceHistory(ctx, id)
	require.NoError(t, err)
	require.Len(t, history, 3, "enroll, update, suspend")
	require.Equal(t, api.StatusSuspended, history[len(history)-1].Device.Status)
}

func deviceIDs(ds []api.Device) []string {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	return ids
}

func TestTelemetryAndCommandsRoundTripWithAProofThatVerifiesOffline(t *testing.T) {
	ctx := t.Context()
	op := connect(t, "Org1", "operator")
	hub := connect(t, "Org1", "hub")
	d := enroll(t, op, testnet.UniqueID(t, "tele"))

	receipt, err := hub.SubmitReading(ctx, d.reading(t, 1, 4.5))
	require.NoError(t, err)
	require.Equal(t, 1, receipt.Size)
	require.NotEmpty(t, receipt.BatchID)

	// The hub that submitted it asks the replay state, as after a crash.
	seen, err := hub.Seen(ctx, d.ID, []uint64{1, 2})
	require.NoError(t, err)
	require.Equal(t, []api.SeqSeen{{Seq: 1, State: api.SeqAccepted}, {Seq: 2, State: api.SeqNotSeen}}, seen.Seqs)

	// The ledger keeps no readings: Org1's index serves the stored reading,
	// the device's readings and the reading's proof, which verifies offline
	// with the key the ledger enrolled.
	ix := testnet.StartIndex(t, fabric, "Org1")
	ix.Sync(t)
	stored, err := ix.Reading(ctx, d.ID, 1)
	require.NoError(t, err)
	require.Equal(t, receipt.BatchID, stored.BatchTx)
	var values []reading.Value
	require.NoError(t, json.Unmarshal(stored.Values, &values))
	require.Len(t, values, 1)
	require.Equal(t, 4.5, *values[0].Number)

	readings, err := ix.Readings(ctx, index.ReadingQuery{Device: d.ID})
	require.NoError(t, err)
	require.Len(t, readings, 1)

	proof, err := index.ReadingProof(ctx, ix, d.ID, 1)
	require.NoError(t, err)
	proof.PublicKey = d.PublicKey
	payload, err := proof.Verify()
	require.NoError(t, err)
	require.Equal(t, d.ID, payload.Device)
	require.Equal(t, receipt.Root, proof.Root)

	batch, err := op.Batch(ctx, receipt.BatchID)
	require.NoError(t, err)
	require.Equal(t, receipt.Root, batch.Root)

	cmds, err := op.SendCommand(ctx, api.CommandRequest{Device: d.ID, Name: "set-setpoint", Params: json.RawMessage(`{"celsius":3}`)})
	require.NoError(t, err)
	require.Len(t, cmds, 1)
	require.Equal(t, api.CommandPending, cmds[0].Status)

	delivered, err := hub.MarkCommandDelivered(ctx, cmds[0].ID)
	require.NoError(t, err)
	require.Equal(t, api.CommandDelivered, delivered.Status)

	acked, err := hub.AckCommand(ctx, d.ack(t, cmds[0].ID, api.CommandAcked, "setpoint 3"))
	require.NoError(t, err)
	require.Equal(t, api.CommandAcked, acked.Status)

	listed, err := op.ListCommands(ctx, api.CommandQuery{Device: d.ID})
	require.NoError(t, err)
	require.Len(t, listed.Commands, 1)
	got, err := op.Command(ctx, cmds[0].ID)
	require.NoError(t, err)
	require.Equal(t, "setpoint 3", got.Result)
}

func TestPolicyAndRuleCallsRoundTrip(t *testing.T) {
	ctx := t.Context()
	op := connect(t, "Org1", "operator")
	d := enroll(t, op, testnet.UniqueID(t, "pol"))

	pid := testnet.UniqueID(t, "share")
	p, err := op.PutPolicy(ctx, api.Policy{ID: pid, Statements: []api.Statement{{
		Sid: "org2-read", Effect: api.Allow, Principals: []string{"msp:Org2MSP"},
		Actions: []string{api.ActionDeviceRead}, Resources: []string{d.ID},
	}}})
	require.NoError(t, err)
	require.Equal(t, "Org1MSP", p.Owner)
	require.Equal(t, 1, p.Version)

	got, err := op.Policy(ctx, pid)
	require.NoError(t, err)
	require.Equal(t, p.Statements, got.Statements)
	list, err := op.ListPolicies(ctx, api.PolicyQuery{PageSize: 500})
	require.NoError(t, err)
	require.NotEmpty(t, list.Policies)

	auditor2 := connect(t, "Org2", "auditor")
	dec, err := auditor2.CheckAccess(ctx, api.AccessRequest{Action: api.ActionDeviceRead, Resource: d.ID})
	require.NoError(t, err)
	require.True(t, dec.Allowed, dec.Reason)
	exp, err := auditor2.Explain(ctx, api.AccessRequest{Action: api.ActionDeviceRead, Resource: d.ID})
	require.NoError(t, err)
	require.Equal(t, "Org2MSP", exp.Principal.MSPID)
	require.Equal(t, "Org1MSP", exp.Owner)

	require.NoError(t, op.DeletePolicy(ctx, pid))
	_, err = op.Policy(ctx, pid)
	require.Equal(t, api.CodeNotFound, api.CodeOf(err))

	rid := testnet.UniqueID(t, "warm")
	r, err := op.PutRule(ctx, api.Rule{ID: rid, Selector: api.DeviceSelector{Devices: []string{d.ID}},
		Condition: "reading.values.temperature > 8.0",
		Actions:   []api.RuleAction{{Type: api.ActionTypeAlert, Severity: api.SeverityWarning, Message: "too warm"}}})
	require.NoError(t, err)
	require.Equal(t, "Org1MSP", r.Owner)
	gotRule, err := op.Rule(ctx, rid)
	require.NoError(t, err)
	require.Equal(t, r.Condition, gotRule.Condition)
	rules, err := op.ListRules(ctx, api.RuleQuery{PageSize: 500})
	require.NoError(t, err)
	require.NotEmpty(t, rules.Rules)
	require.NoError(t, op.DeleteRule(ctx, rid))
	_, err = op.Rule(ctx, rid)
	require.Equal(t, api.CodeNotFound, api.CodeOf(err))
}

func TestChaincodeRefusalsSurfaceTheirCodeAndMessage(t *testing.T) {
	ctx := t.Context()
	op := connect(t, "Org1", "operator")

	_, err := op.Device(ctx, "no-such-device-anywhere")
	require.Equal(t, api.CodeNotFound, api.CodeOf(err))
	var te *client.TransactionError
	require.ErrorAs(t, err, &te)
	require.Equal(t, client.StageEvaluate, te.Stage)
	require.Contains(t, te.Message, "no-such-device-anywhere")

	d := enroll(t, op, testnet.UniqueID(t, "dup"))
	_, err = op.EnrollDevice(ctx, api.EnrollRequest{ID: d.ID, Type: "fridge", PublicKey: d.PublicKey})
	require.Equal(t, api.CodeAlreadyExists, api.CodeOf(err))
	require.ErrorAs(t, err, &te)
	require.Equal(t, client.StageEndorse, te.Stage)
	require.Equal(t, "device:Enroll", te.Tx)
	require.NotEmpty(t, te.TxID)
	require.NotEmpty(t, te.Endorsers, "the gateway says which peer refused")
	var ae *api.Error
	require.True(t, errors.As(err, &ae))

	// Another org's operator may not manage Org1's device.
	op2 := connect(t, "Org2", "operator")
	fw := "evil"
	_, err = op2.UpdateDevice(ctx, api.DeviceUpdate{ID: d.ID, Firmware: &fw})
	require.Equal(t, api.CodeAccessDenied, api.CodeOf(err))

	after, err := op.Device(ctx, d.ID)
	require.NoError(t, err)
	require.Equal(t, d.Device, *after, "a refusal changes nothing")
}
