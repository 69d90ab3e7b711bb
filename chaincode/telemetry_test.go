package chaincode

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

func TestSubmitBatchKeepsItsCommitmentAndReplayStatesButNoReading(t *testing.T) {
	w := newWorld(t)
	a := w.enroll(org1Operator, "a", "fridge")
	b := w.enroll(org1Operator, "b", "fridge")
	envs := []reading.Envelope{a.reading(t, 3), b.reading(t, 4), a.reading(t, 5)}
	out, err := w.submitBatch(org1Hub, envs...)
	require.NoError(t, err)
	var receipt api.BatchReceipt
	require.NoError(t, json.Unmarshal([]byte(out), &receipt))
	require.Equal(t, w.lastTx.id, receipt.BatchID)
	require.Equal(t, 3, receipt.Size)
	require.Zero(t, receipt.Alerts)

	leaves := make([][32]byte, len(envs))
	for i, env := range envs {
		r, err := env.Decode()
		require.NoError(t, err)
		leaves[i] = r.LeafHash()
	}
	root, err := reading.MerkleRoot(leaves)
	require.NoError(t, err)
	require.Equal(t, reading.Hash(root), receipt.Root)

	require.Equal(t, api.EventTelemetryBatch, w.lastEvent.Type)
	require.Equal(t, &api.BatchSummary{ID: receipt.BatchID, Root: receipt.Root, Size: 3, Devices: []string{"a", "b"}}, w.lastEvent.Batch)
	require.Equal(t, []string{"a", "b"}, w.lastEvent.Devices)
	require.Equal(t, org1Hub.id, w.lastEvent.Client)

	// The batch's commitment and one replay state per device; no key per
	// reading (the readings are in the transaction's arguments).
	require.ElementsMatch(t, []string{ckey(t, kindBatch, receipt.BatchID), ckey(t, kindReplay, "a"), ckey(t, kindReplay, "b")}, w.lastTx.order)
	for k := range w.state {
		require.False(t, strings.HasPrefix(k, readingPrefix), "reading key %q", k)
	}
	require.Empty(t, w.lastTx.pvt)

	rec := must[api.BatchRecord](w, org2Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.GetBatch(ctx, receipt.BatchID)
	})
	require.Equal(t, api.BatchRecord{ID: receipt.BatchID, Root: receipt.Root, Size: 3, Submitter: org1Hub.id, MSPID: "Org1MSP", Timestamp: w.now}, rec)
	require.NotContains(t, string(w.state[ckey(t, kindBatch, receipt.BatchID)]), "leaves")

	seen := must[api.SeenAnswer](w, org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.Seen(ctx, "a", `[1,2,3]`)
	})
	require.Equal(t, api.SeenAnswer{Device: "a", HighWater: 2, Window: ReplayWindow, Seqs: []api.SeqSeen{
		{Seq: 1, State: api.SeqAccepted}, {Seq: 2, State: api.SeqAccepted}, {Seq: 3, State: api.SeqNotSeen},
	}}, seen)
}

func TestSubmitSingleReading(t *testing.T) {
	w := newWorld(t)
	a := w.enroll(org1Operator, "a", "fridge")
	receipt := must[api.BatchReceipt](w, org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.Submit(ctx, string(a.reading(t, 1).Encode()))
	})
	require.Equal(t, 1, receipt.Size)
	refused(t, w, org1Hub, api.CodeInvalidArgument, "envelope", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.Submit(ctx, `{"p":1}`)
	})
}

// Signatures are verified together, on several goroutines, after a
// batch's other checks: the refusal is still that of the first reading, in
// batch order, that fails any check, and a reading's signature counts
// before its replay check, as when each reading was verified in turn.
func TestBatchRefusalIsTheFirstFailingReadingWhenSignaturesAreVerifiedTogether(t *testing.T) {
	w := newWorld(t)
	a := w.enroll(org1Operator, "a", "fridge")
	b := w.enroll(org1Operator, "b", "fridge")
	committed := a.reading(t, 1)
	_, err := w.submitBatch(org1Hub, committed)
	require.NoError(t, err)
	const n = 200 // several verifiers' worth (sigsPerWorker)
	batch := func(badSig []int, replay []int) []reading.Envelope {
		envs := make([]reading.Envelope, n)
		for i := range envs {
			envs[i] = b.reading(t, float64(i))
		}
		for _, i := range replay {
			envs[i] = committed
		}
		other := b.reading(t, 0)
		for _, i := range badSig {
			envs[i].Signature = other.Signature
		}
		return envs
	}
	for _, tc := range []struct {
		name     string
		badSig   []int
		replay   []int
		code     api.Code
		contains string
	}{
		{"one bad signature near the end", []int{198}, nil, api.CodeBadSignature, "reading 198 (device b"},
		{"two bad signatures: the first", []int{199, 7}, nil, api.CodeBadSignature, "reading 7 (device b"},
		{"a replay before a bad signature", []int{150}, []int{40}, api.CodeReplay, "reading 40 (device a seq 1)"},
		{"a bad signature before a replay", []int{40}, []int{150}, api.CodeBadSignature, "reading 40 (device b"},
		{"a replay with a bad signature: the signature", []int{60}, []int{60}, api.CodeBadSignature, "reading 60 (device a seq 1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			envs := batch(tc.badSig, tc.replay)
			refused(t, w, org1Hub, tc.code, tc.contains, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: envs}))
			})
		})
	}
	_, err = w.submitBatch(org1Hub, batch(nil, nil)...)
	require.NoError(t, err, "the same batch with every signature good commits")
}

func TestSubmitBatchRefusesWholeBatchNamingTheReading(t *testing.T) {
	w := newWorld(t)
	a := w.enroll(org1Operator, "a", "fridge")
	b := w.enroll(org1Operator, "b", "fridge")
	c := w.enroll(org2Operator, "c", "fridge")
	s := w.enroll(org1Operator, "s", "fridge")
	must[api.Device](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Suspend(ctx, "s", "")
	})
	committed := a.reading(t, 1)
	_, err := w.submitBatch(org1Hub, committed)
	require.NoError(t, err)

	forged := b.reading(t, 2)
	forged.Signature = a.reading(t, 2).Signature
	tampered := b.reading(t, 2)
	tampered.Payload = []byte(strings.Replace(string(tampered.Payload), `"v":2`, `"v":9`, 1))
	unknown := newKey(t, reading.ECDSAP256)
	unknownEnv, err := unknown.SignReading(reading.Payload{Device: "ghost", Seq: 1, Timestamp: 1, Values: []reading.Value{{Name: "x", Bool: new(bool)}}})
	require.NoError(t, err)
	dup := b.reading(t, 1)

	cases := []struct {
		name     string
		who      caller
		envs     []reading.Envelope
		code     api.Code
		contains string
	}{
		{"forged signature", org1Hub, []reading.Envelope{b.reading(t, 1), forged}, api.CodeBadSignature, "reading 1 (device b seq"},
		{"tampered payload", org1Hub, []reading.Envelope{tampered}, api.CodeBadSignature, "signature does not verify"},
		{"replay of a committed reading", org1Hub, []reading.Envelope{b.reading(t, 1), committed}, api.CodeReplay, "reading 1 (device a seq 1): this device and sequence number are already on the ledger"},
		{"replay inside the batch", org1Hub, []reading.Envelope{dup, b.reading(t, 1), dup}, api.CodeReplay, "reading 2 (device b seq"},
		{"unknown device", org1Hub, []reading.Envelope{unknownEnv}, api.CodeNotFound, "reading 0 (device ghost seq 1)"},
		{"suspended device", org1Hub, []reading.Envelope{s.reading(t, 1)}, api.CodeDeviceInactive, "device is suspended"},
		{"other org's device", org1Hub, []reading.Envelope{b.reading(t, 1), c.reading(t, 1)}, api.CodeAccessDenied, "reading 1 (device c seq"},
		{"hub without the role", org1NoRole, []reading.Envelope{b.reading(t, 1)}, api.CodeAccessDenied, "telemetry:write"},
		{"operator is not a hub", org1Operator, []reading.Envelope{b.reading(t, 1)}, api.CodeAccessDenied, "telemetry:write"},
		{"broken envelope", org1Hub, []reading.Envelope{{Payload: []byte("{}"), Signature: []byte{1}}}, api.CodeInvalidArgument, "reading 0: invalid reading"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			refused(t, w, tc.who, tc.code, tc.contains, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: tc.envs}))
			})
			require.Empty(t, w.lastTx.writes, "a refused batch writes nothing")
		})
	}

	many := make([]reading.Envelope, MaxBatchReadings+1)
	for i := range many {
		many[i] = committed
	}
	for _, tc := range []struct {
		arg      string
		contains string
	}{
		{`{"readings":[]}`, "1..500 readings, got 0"},
		{jsonArg(t, api.BatchRequest{Readings: many}), "got 501"},
		{`{"readings":[{"p":"AA==","s":"AA==","x":1}]}`, "unknown field"},
		{`{"readings":"no"}`, "batch request is not valid JSON"},
	} {
		refused(t, w, org1Hub, api.CodeInvalidArgument, tc.contains, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.SubmitBatch(ctx, tc.arg)
		})
	}
}

func TestRevokedDeviceCannotSubmitTelemetry(t *testing.T) {
	w := newWorld(t)
	a := w.enroll(org1Operator, "a", "fridge")
	must[api.Device](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Revoke(ctx, "a", "key leaked")
	})
	refused(t, w, org1Hub, api.CodeDeviceInactive, "device is revoked", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: []reading.Envelope{a.reading(t, 1)}}))
	})
}

func TestRuleFiresAlertCommandAndQuarantineInTheBatchEvent(t *testing.T) {
	w := newWorld(t)
	a := w.enroll(org1Operator, "a", "fridge", "ward")
	w.enroll(org1Operator, "fan", "fan", "ward")
	w.enroll(org2Operator, "other", "fan", "ward")
	_, err := w.putRule(org1Operator, api.Rule{
		ID: "too-warm", Selector: api.DeviceSelector{Types: []string{"fridge"}}, Condition: "reading.values.temperature > 8",
		Actions: []api.RuleAction{
			{Type: api.ActionTypeAlert, Severity: api.SeverityCritical, Message: "fridge too warm"},
			{Type: api.ActionTypeCommand, Command: "cool", Params: json.RawMessage(`{"target":4}`), TTL: 60},
			{Type: api.ActionTypeCommand, Command: "spin", Target: "group:ward"},
			{Type: api.ActionTypeSetStatus, Status: api.StatusSuspended, Message: "quarantine"},
		},
	})
	require.NoError(t, err)
	_, err = w.putRule(org1Operator, api.Rule{ID: "off", Disabled: true, Condition: "true",
		Actions: []api.RuleAction{{Type: api.ActionTypeAlert, Severity: api.SeverityInfo}}})
	require.NoError(t, err)

	receipt := must[api.BatchReceipt](w, org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: []reading.Envelope{a.reading(t, 4), a.reading(t, 9.5), a.reading(t, 12)}}))
	})
	ev := w.lastEvent
	// Readings 2 and 3 are hot. The batch was accepted while the device was
	// active, so both readings run the rules; the quarantine happens once.
	require.Equal(t, 2, receipt.Alerts)
	require.Equal(t, []api.Alert{
		{Rule: "too-warm", Device: "a", Seq: 2, Severity: api.SeverityCritical, Message: "fridge too warm"},
		{Rule: "too-warm", Device: "a", Seq: 3, Severity: api.SeverityCritical, Message: "fridge too warm"},
	}, ev.Alerts)
	require.Equal(t, 6, receipt.Commands)
	require.Len(t, ev.Commands, 6)
	require.Equal(t, "a", ev.Commands[0].Device)
	require.Equal(t, "cool", ev.Commands[0].Name)
	require.JSONEq(t, `{"target":4}`, string(ev.Commands[0].Params))
	require.Equal(t, w.now.Add(time.Minute), ev.Commands[0].ExpiresAt)
	require.Equal(t, w.now.Add(time.Hour), ev.Commands[1].ExpiresAt, "default TTL")
	// Group targets are the rule owner's live devices of the group, in key
	// order; Org2's device of the same group name gets nothing.
	require.Equal(t, []string{"a", "fan"}, []string{ev.Commands[1].Device, ev.Commands[2].Device})
	for i, c := range ev.Commands {
		require.Equal(t, fmt.Sprintf("%s-%d", receipt.BatchID, i), c.ID)
		require.Equal(t, api.CommandPending, c.Status)
		require.Equal(t, "rule:too-warm", c.IssuedBy)
		require.Equal(t, "Org1MSP", c.Owner)
		require.Contains(t, w.state, ckey(t, kindCommand, c.Device, c.ID))
		require.Equal(t, []string{"Org1MSP"}, w.endorsers(ckey(t, kindCommand, c.Device, c.ID)))
	}
	require.Equal(t, []api.StatusChange{{Device: "a", Owner: "Org1MSP", From: api.StatusActive, To: api.StatusSuspended, Reason: "quarantine", Cause: "rule:too-warm"}}, ev.StatusChanges)
	require.Equal(t, api.StatusSuspended, w.getDevice("a").Status)
	require.Equal(t, []string{"a", "fan"}, ev.Devices)
	require.Equal(t, []string{"a"}, ev.Batch.Devices)
}

func TestRuleCooldownUsesTransactionTime(t *testing.T) {
	w := newWorld(t)
	a := w.enroll(org1Operator, "a", "fridge")
	r := hotRule("warm", api.RuleAction{Type: api.ActionTypeAlert, Severity: api.SeverityWarning})
	r.CooldownSeconds = 600
	_, err := w.putRule(org1Operator, r)
	require.NoError(t, err)
	submit := func(temps ...float64) api.BatchReceipt {
		envs := make([]reading.Envelope, len(temps))
		for i, temp := range temps {
			envs[i] = a.reading(t, temp)
		}
		return must[api.BatchReceipt](w, org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: envs}))
		})
	}
	require.Equal(t, 1, submit(10, 11, 12).Alerts, "one alert per cooldown, even inside one batch")
	w.now = w.now.Add(5 * time.Minute)
	require.Equal(t, 0, submit(13).Alerts)
	w.now = w.now.Add(6 * time.Minute)
	require.Equal(t, 1, submit(14).Alerts)
	require.Equal(t, 0, submit(3).Alerts, "a cold reading does not fire")
}

func TestRuleThatCannotEvaluateDoesNotRefuseTelemetry(t *testing.T) {
	w := newWorld(t)
	a := w.enroll(org1Operator, "a", "fridge")
	r := hotRule("needs-humidity", api.RuleAction{Type: api.ActionTypeAlert, Severity: api.SeverityInfo})
	r.Condition = "reading.values.humidity > 50.0" // absent value: evaluation error
	_, err := w.putRule(org1Operator, r)
	require.NoError(t, err)
	receipt := must[api.BatchReceipt](w, org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: []reading.Envelope{a.reading(t, 20)}}))
	})
	require.Equal(t, 1, receipt.Size)
	require.Zero(t, receipt.Alerts)
}

func TestRuleRevocationAndCommandTargets(t *testing.T) {
	w := newWorld(t)
	a := w.enroll(org1Operator, "a", "fridge")
	w.enroll(org1Operator, "siren", "siren")
	w.enroll(org2Operator, "foreign", "siren")
	_, err := w.putRule(org1Operator, api.Rule{ID: "burn", Condition: "reading.values.temperature > 100",
		Actions: []api.RuleAction{
			{Type: api.ActionTypeCommand, Command: "wail", Target: "device:siren"},
			{Type: api.ActionTypeCommand, Command: "wail", Target: "device:foreign"},
			{Type: api.ActionTypeCommand, Command: "wail", Target: "device:missing"},
			{Type: api.ActionTypeCommand, Command: "wail", Target: "group:empty"},
			{Type: api.ActionTypeSetStatus, Status: api.StatusRevoked},
			{Type: api.ActionTypeCommand, Command: "shutdown"},
		}})
	require.NoError(t, err)
	receipt := must[api.BatchReceipt](w, org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: []reading.Envelope{a.reading(t, 120)}}))
	})
	require.Equal(t, 1, receipt.Commands, "only the owner's live devices get commands: siren; not the revoked device itself")
	require.Equal(t, "siren", w.lastEvent.Commands[0].Device)
	require.Equal(t, []string{"a"}, w.lastEvent.Revocations)
	require.Equal(t, api.StatusRevoked, w.lastEvent.StatusChanges[0].To)
	require.Equal(t, "rule burn on reading 1", w.lastEvent.StatusChanges[0].Reason)
}

func TestTelemetryQueryRefusals(t *testing.T) {
	w := newWorld(t)
	a := w.enroll(org1Operator, "a", "fridge")
	_, err := w.submitBatch(org1Hub, a.reading(t, 1))
	require.NoError(t, err)
	many := "[" + strings.Repeat("1,", MaxBatchReadings) + "1]"
	for _, tc := range []struct {
		who      caller
		tx       txFunc
		code     api.Code
		contains string
	}{
		{org2Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.Seen(ctx, "a", `[1]`)
		}, api.CodeAccessDenied, "may neither telemetry:write nor telemetry:read device a of Org1MSP"},
		{org1NoRole, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.Seen(ctx, "a", `[1]`)
		}, api.CodeAccessDenied, "may neither"},
		{org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.Seen(ctx, "ghost", `[1]`)
		}, api.CodeNotFound, `device "ghost" is not enrolled`},
		{org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.Seen(ctx, "a", `[]`)
		}, api.CodeInvalidArgument, "ask about 1..500 sequence numbers, got 0"},
		{org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.Seen(ctx, "a", many)
		}, api.CodeInvalidArgument, "got 501"},
		{org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.Seen(ctx, "a", `[0]`)
		}, api.CodeInvalidArgument, "sequence numbers start at 1"},
		{org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.Seen(ctx, "a", `[-1]`)
		}, api.CodeInvalidArgument, "sequence numbers is not valid JSON"},
		{org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.Seen(ctx, "a", `{"seq":1}`)
		}, api.CodeInvalidArgument, "sequence numbers is not valid JSON"},
		{org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.Seen(ctx, "a", ``)
		}, api.CodeInvalidArgument, "sequence numbers is empty: pass a JSON array"},
		{org1Auditor, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.GetBatch(ctx, "nope")
		}, api.CodeNotFound, "batch"},
		{org1Auditor, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.GetBatch(ctx, "")
		}, api.CodeInvalidArgument, "batch id"},
	} {
		refused(t, w, tc.who, tc.code, tc.contains, tc.tx)
	}
}

func TestSubmitBatchIsDeterministic(t *testing.T) {
	a := &testDevice{id: "a", signer: newKey(t, reading.ECDSAP256)}
	b := &testDevice{id: "b", signer: newKey(t, reading.Ed25519)}
	var envs []reading.Envelope
	for i := 0; i < 20; i++ {
		envs = append(envs, a.reading(t, float64(i)), b.reading(t, float64(i)))
	}
	run := func() *txRecord {
		w := newWorld(t)
		for _, d := range []*testDevice{a, b} {
			must[api.Device](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Device.Enroll(ctx, jsonArg(t, api.EnrollRequest{ID: d.id, Type: "fridge", PublicKey: d.signer.Public().PEM(), Activate: true,
					Attributes: map[string]string{"zone": "z", "floor": "2", "wing": "east", "room": "12"}}))
			})
		}
		_, err := w.putRule(org1Operator, api.Rule{ID: "r", Condition: "reading.values.temperature > 10.0 && device.attributes.zone == 'z'", CooldownSeconds: 1,
			Actions: []api.RuleAction{{Type: api.ActionTypeAlert, Severity: api.SeverityInfo}, {Type: api.ActionTypeCommand, Command: "c", Params: json.RawMessage(`{"b":1,"a":2}`)}}})
		require.NoError(t, err)
		_, err = w.submitBatch(org1Hub, envs...)
		require.NoError(t, err)
		return w.lastTx
	}
	first, second := run(), run()
	require.Equal(t, first.order, second.order)
	require.Equal(t, first.writes, second.writes)
	require.Equal(t, first.sbe, second.sbe)
	require.Equal(t, first.events, second.events)
	require.NotEmpty(t, first.events)
}

func FuzzSubmitBatchArgs(f *testing.F) {
	key, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(f, err)
	temp := 4.0
	env, err := key.SignReading(reading.Payload{Device: "a", Seq: 1, Timestamp: 1, Values: []reading.Value{{Name: "temperature", Number: &temp}}})
	require.NoError(f, err)
	f.Add(`{"readings":[` + string(env.Encode()) + `]}`)
	f.Add(`{"readings":[{"p":"` + base64.StdEncoding.EncodeToString([]byte(`{"device":"a","seq":1,"ts":1,"values":[]}`)) + `","s":"AQ=="}]}`)
	f.Add(`{"readings":[]}`)
	f.Add(`{}`)
	f.Add(`{"readings":[{"p":null,"s":null}]}`)
	f.Fuzz(func(t *testing.T, arg string) {
		w := newWorld(t)
		must[api.Device](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Device.Enroll(ctx, jsonArg(t, api.EnrollRequest{ID: "a", Type: "fridge", PublicKey: key.Public().PEM(), Activate: true}))
		})
		before := len(w.state)
		out, err := w.invoke(org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.SubmitBatch(ctx, arg)
		})
		if err != nil {
			require.NotEmpty(t, api.CodeOf(err), "every refusal is classified: %v", err)
			require.Equal(t, before, len(w.state))
			return
		}
		var receipt api.BatchReceipt
		require.NoError(t, json.Unmarshal([]byte(out), &receipt))
		require.Positive(t, receipt.Size)
	})
}

func TestReplayRefusalNamesTheFirstReplayedReadingInBatchOrder(t *testing.T) {
	w := newWorld(t)
	a := w.enroll(org1Operator, "a", "fridge")
	b := w.enroll(org1Operator, "b", "fridge")
	var committed []reading.Envelope
	for i := 0; i < 3; i++ {
		committed = append(committed, a.reading(t, 1))
	}
	_, err := w.submitBatch(org1Hub, committed...)
	require.NoError(t, err)
	far := &testDevice{id: "a", signer: a.signer, seq: 1000}

	for _, tc := range []struct {
		name     string
		envs     []reading.Envelope
		contains string
	}{
		{"two replays", []reading.Envelope{b.reading(t, 1), a.reading(t, 1), committed[2], committed[1]}, "reading 2 (device a seq 3)"},
		{"a replay between new readings", []reading.Envelope{far.reading(t, 1), committed[1], b.reading(t, 1)}, "reading 1 (device a seq 2)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refused(t, w, org1Hub, api.CodeReplay, tc.contains, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: tc.envs}))
			})
			require.Empty(t, w.lastTx.writes)
		})
	}
	// Readings out of order and with gaps are fine as long as they are new.
	_, err = w.submitBatch(org1Hub, far.reading(t, 1), a.reading(t, 1))
	require.NoError(t, err)
}
