// Package chaincode_test runs the iotledger chaincode on a real Fabric
// network (started by the network package: orderers, two orgs with a peer
// and a CA each, the chaincode as a service) and checks what it accepts,
// what it refuses and what the ledger then holds.
package chaincode_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/index"
)

// device is a simulated device of the tests: its key and its next sequence.
type device struct {
	id     string
	signer *reading.Signer
	seq    uint64
}

func newDevice(t *testing.T, prefix string) *device {
	t.Helper()
	s, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	return &device{id: fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()), signer: s}
}

func (d *device) reading(t *testing.T, temp float64) reading.Envelope {
	t.Helper()
	d.seq++
	env, err := d.signer.SignReading(reading.Payload{Device: d.id, Seq: d.seq, Timestamp: time.Now().UnixMilli(),
		Values: []reading.Value{{Name: "temperature", Unit: "Cel", Number: &temp}}})
	require.NoError(t, err)
	return env
}

func enroll(ctx context.Context, t *testing.T, operator *client.Client, d *device, typ string) *api.Device {
	t.Helper()
	got, err := operator.EnrollDevice(ctx, api.EnrollRequest{ID: d.id, Type: typ, PublicKey: d.signer.Public().PEM(), Activate: true})
	require.NoError(t, err)
	return got
}

// requireRefused checks a refusal's classified code and message.
func requireRefused(t *testing.T, err error, code api.Code, contains string) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code, api.CodeOf(err), "error: %v", err)
	require.Contains(t, err.Error(), contains)
}

// valuesOf decodes an indexed reading's values.
func valuesOf(t *testing.T, r *index.Reading) []reading.Value {
	t.Helper()
	var vs []reading.Value
	require.NoError(t, json.Unmarshal(r.Values, &vs))
	require.NotEmpty(t, vs)
	return vs
}

// requireNoReading checks that the ledger accepted no reading of d with seq.
func requireNoReading(ctx context.Context, t *testing.T, c *client.Client, d *device, seq uint64) {
	t.Helper()
	seen, err := c.Seen(ctx, d.id, []uint64{seq})
	require.NoError(t, err)
	require.Equal(t, api.SeqNotSeen, seen.Seqs[0].State, "reading %d of %s", seq, d.id)
}

func TestHubSubmitsSignedTelemetryThatProvesOffline(t *testing.T) {
	e := env(t)
	ctx := e.ctx(t)
	d := newDevice(t, "it-fridge")
	dev := enroll(ctx, t, e.org1Operator, d, "fridge")
	require.Equal(t, "Org1MSP", dev.Owner)
	e.settle(t) // both endorsers know the device

	receipt, err := e.org1Hub.SubmitBatch(ctx, api.BatchRequest{Readings: []reading.Envelope{d.reading(t, 3.5), d.reading(t, 3.6), d.reading(t, 3.7)}})
	require.NoError(t, err)
	require.Equal(t, 3, receipt.Size)

	seen, err := e.org1Operator.Seen(ctx, d.id, []uint64{1, 2, 3, 4})
	require.NoError(t, err)
	require.Equal(t, []api.SeqSeen{{Seq: 1, State: api.SeqAccepted}, {Seq: 2, State: api.SeqAccepted}, {Seq: 3, State: api.SeqAccepted}, {Seq: 4, State: api.SeqNotSeen}}, seen.Seqs)

	// The ledger keeps no readings: Org1's index, following the blocks,
	// serves them and their proofs.
	ix := e.index(t, "Org1")
	got, err := ix.Reading(ctx, d.id, 2)
	require.NoError(t, err)
	require.Equal(t, receipt.BatchID, got.BatchTx)
	require.Equal(t, 1, got.Index)
	require.Equal(t, 3.6, *valuesOf(t, got)[0].Number)

	proof, err := index.ReadingProof(ctx, ix, d.id, 3)
	require.NoError(t, err)
	proof.PublicKey = dev.PublicKey // the key the ledger enrolled, not the test's
	payload, err := proof.Verify()
	require.NoError(t, err)
	require.Equal(t, uint64(3), payload.Seq)
	require.Equal(t, receipt.Root, proof.Root)
}

func TestOtherOrgOperatorCannotManageOrg1Device(t *testing.T) {
	e := env(t)
	ctx := e.ctx(t)
	d := newDevice(t, "it-owned")
	enroll(ctx, t, e.org1Operator, d, "pump")
	e.settle(t)

	_, err := e.org2Operator.SetDeviceStatus(ctx, d.id, api.StatusSuspended, "hostile")
	requireRefused(t, err, api.CodeAccessDenied, "device:manage")
	_, err = e.org2Operator.RotateDeviceKey(ctx, d.id, newDevice(t, "k").signer.Public().PEM())
	requireRefused(t, err, api.CodeAccessDenied, "device:manage")
	_, err = e.org2Operator.Device(ctx, d.id)
	requireRefused(t, err, api.CodeAccessDenied, "device:read")

	got, err := e.org1Operator.Device(ctx, d.id)
	require.NoError(t, err)
	require.Equal(t, api.StatusActive, got.Status)
	require.Equal(t, 1, got.KeyVersion)
}

// A change of an Org1 device endorsed only by Org2's peer is invalidated at
// commit by the device key's endorsement policy — even on a chaincode
// definition whose own policy one org's endorsement satisfies. So a member
// whose peer runs modified chaincode cannot change another member's devices.
func TestDeviceChangeEndorsedOnlyByAnotherOrgIsInvalidatedAtCommit(t *testing.T) {
	e := env(t)
	ctx := e.ctx(t)
	anyOrg := e.anyOrgChaincode(t)
	op1 := e.connect(t, "Org1", "operator", anyOrg)
	d := newDevice(t, "it-sbe")
	enroll(ctx, t, op1, d, "valve")
	e.settle(t)

	byOrg2 := e.connect(t, "Org1", "operator", anyOrg, client.WithEndorsingOrganizations("Org2MSP"))
	_, err := byOrg2.SetDeviceStatus(ctx, d.id, api.StatusSuspended, "endorsed by the wrong org")
	require.Error(t, err)
	var te *client.TransactionError
	require.True(t, errors.As(err, &te), "error: %v", err)
	require.Equal(t, "ENDORSEMENT_POLICY_FAILURE", te.ValidationCode, "error: %v", err)

	got, err := op1.Device(ctx, d.id)
	require.NoError(t, err)
	require.Equal(t, api.StatusActive, got.Status, "the invalid transaction changed nothing")

	byOrg1 := e.connect(t, "Org1", "operator", anyOrg, client.WithEndorsingOrganizations("Org1MSP"))
	got, err = byOrg1.SetDeviceStatus(ctx, d.id, api.StatusSuspended, "endorsed by the owner")
	require.NoError(t, err)
	require.Equal(t, api.StatusSuspended, got.Status)
}

func TestTelemetryRefusalsWriteNothing(t *testing.T) {
	e := env(t)
	ctx := e.ctx(t)
	d := newDevice(t, "it-refuse")
	enroll(ctx, t, e.org1Operator, d, "fridge")
	e.settle(t)
	first := d.reading(t, 4)
	_, err := e.org1Hub.SubmitReading(ctx, first)
	require.NoError(t, err)

	t.Run("forged signature", func(t *testing.T) {
		forged := d.reading(t, 4)
		forged.Signature = newDevice(t, "x").reading(t, 4).Signature
		_, err := e.org1Hub.SubmitBatch(ctx, api.BatchRequest{Readings: []reading.Envelope{forged}})
		requireRefused(t, err, api.CodeBadSignature, fmt.Sprintf("reading 0 (device %s seq %d)", d.id, d.seq))
		requireNoReading(ctx, t, e.org1Operator, d, d.seq)
	})
	t.Run("replayed reading", func(t *testing.T) {
		fresh := d.reading(t, 4)
		_, err := e.org1Hub.SubmitBatch(ctx, api.BatchRequest{Readings: []reading.Envelope{fresh, first}})
		requireRefused(t, err, api.CodeReplay, fmt.Sprintf("reading 1 (device %s seq 1)", d.id))
		requireNoReading(ctx, t, e.org1Operator, d, d.seq)
	})
	t.Run("hub without the role", func(t *testing.T) {
		noRole := e.enrollIdentity(t, "Org1", nil)
		next := d.reading(t, 4)
		_, err := noRole.SubmitReading(ctx, next)
		requireRefused(t, err, api.CodeAccessDenied, "telemetry:write")
		requireNoReading(ctx, t, e.org1Operator, d, d.seq)
	})
	t.Run("expired cross-org grant", func(t *testing.T) {
		from, until := time.Now().Add(-48*time.Hour).UTC(), time.Now().Add(-time.Hour).UTC()
		_, err := e.org1Operator.PutPolicy(ctx, api.Policy{ID: "it-org2-hubs-" + d.id, NotBefore: &from, NotAfter: &until,
			Statements: []api.Statement{{Sid: "relay", Effect: api.Allow, Principals: []string{"role:hub@Org2MSP"},
				Actions: []string{api.ActionTelemetryWrite}, Resources: []string{d.id}}}})
		require.NoError(t, err)
		e.settle(t)
		next := d.reading(t, 4)
		_, err = e.org2Hub.SubmitReading(ctx, next)
		requireRefused(t, err, api.CodeAccessDenied, "telemetry:write")
		requireNoReading(ctx, t, e.org1Operator, d, d.seq)

		until = time.Now().Add(time.Hour).UTC()
		_, err = e.org1Operator.PutPolicy(ctx, api.Policy{ID: "it-org2-hubs-" + d.id, NotBefore: &from, NotAfter: &until,
			Statements: []api.Statement{{Sid: "relay", Effect: api.Allow, Principals: []string{"role:hub@Org2MSP"},
				Actions: []string{api.ActionTelemetryWrite}, Resources: []string{d.id}}}})
		require.NoError(t, err)
		e.settle(t)
		_, err = e.org2Hub.SubmitReading(ctx, next)
		require.NoError(t, err, "inside its window the same grant lets Org2's hub relay the reading")
	})
	t.Run("revoked device", func(t *testing.T) {
		_, err := e.org1Operator.SetDeviceStatus(ctx, d.id, api.StatusRevoked, "key leaked")
		require.NoError(t, err)
		next := d.reading(t, 4)
		_, err = e.org1Hub.SubmitReading(ctx, next)
		requireRefused(t, err, api.CodeDeviceInactive, "revoked")
		requireNoReading(ctx, t, e.org1Operator, d, d.seq)
	})
}

func TestRuleFiresAndItsAlertAndCommandArriveInTheEvent(t *testing.T) {
	e := env(t)
	ctx := e.ctx(t)
	d := newDevice(t, "it-rule")
	typ := "freezer-" + d.id[len("it-rule-"):]
	enroll(ctx, t, e.org1Operator, d, typ)
	_, err := e.org1Operator.PutRule(ctx, api.Rule{ID: "it-too-warm-" + typ, Selector: api.DeviceSelector{Types: []string{typ}},
		Condition: "reading.values.temperature > -10.0",
		Actions: []api.RuleAction{
			{Type: api.ActionTypeAlert, Severity: api.SeverityCritical, Message: "freezer thawing"},
			{Type: api.ActionTypeCommand, Command: "defrost-stop", TTL: 600},
		}})
	require.NoError(t, err)
	e.settle(t)

	receipt, err := e.org1Hub.SubmitBatch(ctx, api.BatchRequest{Readings: []reading.Envelope{d.reading(t, -20), d.reading(t, -2)}})
	require.NoError(t, err)
	require.Equal(t, 1, receipt.Alerts)
	require.Equal(t, 1, receipt.Commands)

	ev := e.eventOf(t, e.org1Operator, receipt.BatchID)
	require.Equal(t, api.EventTelemetryBatch, ev.Type)
	require.Equal(t, []api.Alert{{Rule: "it-too-warm-" + typ, Device: d.id, Seq: 2, Severity: api.SeverityCritical, Message: "freezer thawing"}}, ev.Alerts)
	require.Len(t, ev.Commands, 1)
	cmd := ev.Commands[0]
	require.Equal(t, receipt.BatchID+"-0", cmd.ID)
	require.Equal(t, "defrost-stop", cmd.Name)
	require.Equal(t, api.CommandPending, cmd.Status)

	// The rule's command follows the same lifecycle as an operator's.
	delivered, err := e.org1Hub.MarkCommandDelivered(ctx, cmd.ID)
	require.NoError(t, err)
	require.Equal(t, api.CommandDelivered, delivered.Status)
	payload := []byte(fmt.Sprintf(`{"device":%q,"command":%q,"status":"acked","result":"stopped","ts":1}`, d.id, cmd.ID))
	sig, err := d.signer.Sign(reading.DomainAck, payload)
	require.NoError(t, err)
	altered := []byte(fmt.Sprintf(`{"device":%q,"command":%q,"status":"failed","result":"stopped","ts":1}`, d.id, cmd.ID))
	_, err = e.org1Hub.AckCommand(ctx, reading.Envelope{Payload: altered, Signature: sig})
	requireRefused(t, err, api.CodeBadSignature, "does not verify")
	acked, err := e.org1Hub.AckCommand(ctx, reading.Envelope{Payload: payload, Signature: sig})
	require.NoError(t, err)
	require.Equal(t, api.CommandAcked, acked.Status)
	_, err = e.org1Hub.AckCommand(ctx, reading.Envelope{Payload: payload, Signature: sig})
	requireRefused(t, err, api.CodeFailedPrecondition, "already acked")
}

// A transfer needs the old owner's endorsement, and afterwards only the new
// owner's peer can endorse changes of the device.
func TestTransferNeedsBothOrgsAndHandsEndorsementToTheNewOwner(t *testing.T) {
	e := env(t)
	ctx := e.ctx(t)
	anyOrg := e.anyOrgChaincode(t)
	op1 := e.connect(t, "Org1", "operator", anyOrg)
	op2 := e.connect(t, "Org2", "operator", anyOrg)
	d := newDevice(t, "it-transfer")
	enroll(ctx, t, op1, d, "tracker")
	e.settle(t)
	offered, err := op1.OfferTransfer(ctx, d.id, "Org2MSP")
	require.NoError(t, err)
	require.Equal(t, "Org2MSP", offered.PendingTo)
	e.settle(t)

	op2Alone := e.connect(t, "Org2", "operator", anyOrg, client.WithEndorsingOrganizations("Org2MSP"))
	_, err = op2Alone.AcceptTransfer(ctx, d.id)
	var te *client.TransactionError
	require.True(t, errors.As(err, &te), "error: %v", err)
	require.Equal(t, "ENDORSEMENT_POLICY_FAILURE", te.ValidationCode, "the old owner must endorse the hand-over")

	accepted, err := op2.AcceptTransfer(ctx, d.id) // the gateway plans both orgs from the key policies
	require.NoError(t, err)
	require.Equal(t, "Org2MSP", accepted.Owner)
	e.settle(t)

	_, err = op1.SetDeviceStatus(ctx, d.id, api.StatusSuspended, "not mine any more")
	requireRefused(t, err, api.CodeAccessDenied, "device:manage")
	viaOrg1Peer := e.connect(t, "Org2", "operator", anyOrg, client.WithEndorsingOrganizations("Org1MSP"))
	_, err = viaOrg1Peer.SetDeviceStatus(ctx, d.id, api.StatusSuspended, "endorsed by the old owner only")
	require.True(t, errors.As(err, &te), "error: %v", err)
	require.Equal(t, "ENDORSEMENT_POLICY_FAILURE", te.ValidationCode)
	got, err := op2.SetDeviceStatus(ctx, d.id, api.StatusSuspended, "new owner")
	require.NoError(t, err)
	require.Equal(t, api.StatusSuspended, got.Status)
}

func TestFullBatchOfManyDevicesCommitsWhole(t *testing.T) {
	e := env(t)
	ctx := e.ctx(t)
	devs := make([]*device, 10)
	for i := range devs {
		devs[i] = newDevice(t, fmt.Sprintf("it-full%d", i))
		enroll(ctx, t, e.org1Operator, devs[i], "meter")
	}
	e.settle(t)
	envs := make([]reading.Envelope, 500)
	for i := range envs {
		envs[i] = devs[i%len(devs)].reading(t, float64(i))
	}
	receipt, err := e.org1Hub.SubmitBatch(ctx, api.BatchRequest{Readings: envs})
	require.NoError(t, err)
	require.Equal(t, 500, receipt.Size)

	seen, err := e.org1Operator.Seen(ctx, devs[3].id, []uint64{1, 50, 51})
	require.NoError(t, err)
	require.Equal(t, []api.SeqSeen{{Seq: 1, State: api.SeqAccepted}, {Seq: 50, State: api.SeqAccepted}, {Seq: 51, State: api.SeqNotSeen}}, seen.Seqs)

	// Org1's index holds the batch whole, in batch order, and serves seq
	// 10..50 of device 3 (reading i of the batch came from device i%10).
	ix := e.index(t, "Org1")
	indexed, err := ix.Batch(ctx, receipt.BatchID)
	require.NoError(t, err)
	require.Equal(t, 500, indexed.Size)
	require.Equal(t, receipt.Root[:], indexed.Root)
	leaves, err := ix.BatchReadings(ctx, receipt.BatchID)
	require.NoError(t, err)
	require.Len(t, leaves, 500)
	for i, r := range leaves {
		require.Equal(t, i, r.Index)
		require.Equal(t, envs[i].Payload, r.Payload, "reading %d of the batch", i)
	}
	page, err := ix.Readings(ctx, index.ReadingQuery{Device: devs[3].id, AfterSeq: 9, Limit: 100})
	require.NoError(t, err)
	require.Len(t, page, 41, "seq 10..50 of device 3")
	for i, r := range page {
		require.Equal(t, uint64(10+i), r.Seq)
		require.Equal(t, float64(3+10*(9+i)), *valuesOf(t, &r)[0].Number)
	}

	// Any member may read the batch record. Org2's peer commits the block on
	// its own schedule, so wait until it has.
	var batch *api.BatchRecord
	require.Eventually(t, func() bool {
		batch, err = e.org2Operator.Batch(ctx, receipt.BatchID)
		return err == nil
	}, 30*time.Second, 200*time.Millisecond, "Org2's peer never served batch %s: %v", receipt.BatchID, err)
	require.Equal(t, 500, batch.Size)
	require.Equal(t, receipt.Root, batch.Root)
}

// A hub that endorses in parallel names every org at once; one that names
// orgs the endorsement policy is not satisfied by (Org1 alone, under
// MAJORITY of two) gets its transaction invalidated as
// ENDORSEMENT_POLICY_FAILURE, and the client submits it again with the
// gateway's plan, which commits: the reading is on the ledger once.
func TestParallelEndorsementCommitsAndFallsBackToTheGatewaysPlan(t *testing.T) {
	e := env(t)
	ctx := e.ctx(t)
	d := newDevice(t, "it-parallel")
	enroll(ctx, t, e.org1Operator, d, "meter")
	e.settle(t)

	all := e.connect(t, "Org1", "hub", "", client.WithParallelEndorsement())
	r, err := all.SubmitBatch(ctx, api.BatchRequest{Readings: []reading.Envelope{d.reading(t, 1)}})
	require.NoError(t, err)
	require.Equal(t, 1, r.Size)

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	short := e.connect(t, "Org1", "hub", "", client.WithParallelEndorsement("Org1MSP"), client.WithLogger(log))
	second := d.reading(t, 2)
	r, err = short.SubmitBatch(ctx, api.BatchRequest{Readings: []reading.Envelope{second}})
	require.NoError(t, err, "the gateway's plan commits what Org1 alone could not")
	require.Equal(t, 1, r.Size)
	require.Contains(t, logs.String(), "parallel endorsement refused")
	require.Contains(t, logs.String(), "ENDORSEMENT_POLICY_FAILURE")

	_, err = short.SubmitBatch(ctx, api.BatchRequest{Readings: []reading.Envelope{second}})
	require.Equal(t, api.CodeReplay, api.CodeOf(err), "the reading committed once: %v", err)
	require.Equal(t, 1, strings.Count(logs.String(), "parallel endorsement refused"),
		"a refusal is the transaction's; and for a minute the client does not name its orgs again")
}
