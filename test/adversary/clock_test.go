package adversary_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/test/adversary/rawgw"
)

// Fabric takes the proposal timestamp from the client and never checks it,
// while the contracts use it as "now". Every honest endorser refuses one
// further than 5 minutes from its own clock, so no member can move another
// member's time.

// Org2 forges "two hours from now" to expire Org1's pending command early.
func TestForwardDatedProposalCannotExpireAnotherOrgsCommand(t *testing.T) {
	e := env(t)
	ctx := e.ctx(t)
	d := newDevice(t, "clk-exp")
	e.enroll(ctx, t, e.org1Operator, d, api.EnrollRequest{Type: "valve"})
	cmds, err := e.org1Operator.SendCommand(ctx, api.CommandRequest{Device: d.id, Name: "open", TTLSeconds: 3600})
	require.NoError(t, err)
	require.Len(t, cmds, 1)
	id := cmds[0].ID
	e.settle(t)

	attacker := e.raw(t, "Org2", "operator")
	forged := time.Now().Add(2 * time.Hour)
	expire := rawgw.Proposal{Function: "command:Expire", Args: []string{id}, Timestamp: forged}
	_, _, _, err = attacker.Invoke(ctx, expire, "Org1MSP", "Org2MSP")
	requireClockSkew(t, err, forged)
	requirePending(t, e, id)

	// Org2's own modified chaincode endorses the forgery, but the command's
	// key belongs to Org1: the transaction is invalidated at commit.
	_, code, _, err := attacker.Invoke(ctx, expire, "Org2MSP")
	require.NoError(t, err, "the hostile server endorses the forged expiry")
	require.Equal(t, peer.TxValidationCode_ENDORSEMENT_POLICY_FAILURE, code)
	requirePending(t, e, id)
}

func requirePending(t *testing.T, e *environment, id string) {
	t.Helper()
	got, err := e.org1Operator.Command(e.ctx(t), id)
	require.NoError(t, err)
	require.Equal(t, api.CommandPending, got.Status)
	require.Nil(t, got.CompletedAt)
}

// Org1's own hub backdates a delivery to before the command expired.
func TestBackDatedProposalCannotDeliverAnExpiredCommand(t *testing.T) {
	e := env(t)
	ctx := e.ctx(t)
	d := newDevice(t, "clk-dlv")
	e.enroll(ctx, t, e.org1Operator, d, api.EnrollRequest{Type: "valve"})
	cmds, err := e.org1Operator.SendCommand(ctx, api.CommandRequest{Device: d.id, Name: "close", TTLSeconds: 2})
	require.NoError(t, err)
	require.Len(t, cmds, 1)
	cmd := cmds[0]
	require.Eventually(t, func() bool { return time.Now().After(cmd.ExpiresAt.Add(time.Second)) },
		time.Minute, 100*time.Millisecond, "command %s never expired", cmd.ID)
	_, err = e.org1Hub.MarkCommandDelivered(ctx, cmd.ID)
	requireRefused(t, err, api.CodeFailedPrecondition, "expired")

	forged := time.Now().Add(-time.Hour)
	_, _, _, err = e.raw(t, "Org1", "hub").Invoke(ctx, rawgw.Proposal{Function: "command:MarkDelivered", Args: []string{cmd.ID}, Timestamp: forged})
	requireClockSkew(t, err, forged)
	got, err := e.org1Operator.Command(ctx, cmd.ID)
	require.NoError(t, err)
	require.Contains(t, []api.CommandStatus{api.CommandPending, api.CommandExpired}, got.Status)
	require.Nil(t, got.DeliveredAt, "never delivered")
}

// Org2 reads Org1's device through a grant that has run out, by dating its
// query to when the grant was valid.
func TestBackDatedProposalCannotReadThroughAnExpiredGrant(t *testing.T) {
	e := env(t)
	ctx := e.ctx(t)
	d := newDevice(t, "clk-grant")
	e.enroll(ctx, t, e.org1Operator, d, api.EnrollRequest{Type: "pump"})
	notBefore := time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Second)
	notAfter := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	_, err := e.org1Operator.PutPolicy(ctx, api.Policy{ID: "grant-" + d.id, NotBefore: &notBefore, NotAfter: &notAfter,
		Statements: []api.Statement{{Sid: "org2-operators-read", Effect: api.Allow, Principals: []string{"role:operator@Org2MSP"},
			Actions: []string{api.ActionDeviceRead}, Resources: []string{d.id}}}})
	require.NoError(t, err)
	e.settle(t)

	attacker := e.raw(t, "Org2", "operator")
	forged := notAfter.Add(-time.Hour)
	_, err = attacker.Evaluate(ctx, rawgw.Proposal{Function: "device:Get", Args: []string{d.id}, Timestamp: forged}, "Org1MSP")
	requireClockSkew(t, err, forged)
	_, err = attacker.Evaluate(ctx, rawgw.Proposal{Function: "device:Get", Args: []string{d.id}}, "Org1MSP")
	requireRefused(t, err, api.CodeAccessDenied, "device:read")
}

// Org1's hub dates a reading 50 years ahead so that a rule's cooldown would
// silence the rule for 50 years.
func TestFutureDatedReadingCannotMoveARuleCooldown(t *testing.T) {
	e := env(t)
	ctx := e.ctx(t)
	d := newDevice(t, "clk-cool")
	e.enroll(ctx, t, e.org1Operator, d, api.EnrollRequest{Type: "freezer"})
	_, err := e.org1Operator.PutRule(ctx, api.Rule{ID: "cool-" + d.id, Selector: api.DeviceSelector{Devices: []string{d.id}},
		Condition: "true", CooldownSeconds: 3600,
		Actions: []api.RuleAction{{Type: api.ActionTypeAlert, Severity: api.SeverityWarning, Message: "reading seen"}}})
	require.NoError(t, err)
	e.settle(t)

	forged := time.Now().AddDate(50, 0, 0)
	early := d.reading(t, num("temperature", -18))
	_, _, _, err = e.raw(t, "Org1", "hub").Invoke(ctx, rawgw.Proposal{Function: "telemetry:Submit", Args: []string{string(early.Encode())}, Timestamp: forged})
	requireClockSkew(t, err, forged)
	seen, err := e.org1Operator.Seen(ctx, d.id, []uint64{d.seq})
	require.NoError(t, err)
	require.Equal(t, api.SeqNotSeen, seen.Seqs[0].State)

	receipt, err := e.org1Hub.SubmitBatch(ctx, api.BatchRequest{Readings: []reading.Envelope{d.reading(t, num("temperature", -17))}})
	require.NoError(t, err)
	require.Equal(t, 1, receipt.Alerts, "the rule fires: its cooldown was not moved ahead")
}

// An enrollment dated an hour ahead.
func TestFutureDatedEnrollmentIsRefused(t *testing.T) {
	e := env(t)
	ctx := e.ctx(t)
	d := newDevice(t, "clk-enr")
	req, err := json.Marshal(api.EnrollRequest{ID: d.id, Type: "meter", PublicKey: d.signer.Public().PEM(), Activate: true})
	require.NoError(t, err)
	forged := time.Now().Add(time.Hour)
	_, _, _, err = e.raw(t, "Org1", "operator").Invoke(ctx, rawgw.Proposal{Function: "device:Enroll", Args: []string{string(req)}, Timestamp: forged})
	requireClockSkew(t, err, forged)
	_, err = e.org1Operator.Device(ctx, d.id)
	requireRefused(t, err, api.CodeNotFound)
}
