package chaincode

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"slices"
	"testing"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// enrollPrivate enrolls an active private device of c's org.
func (w *world) enrollPrivate(c caller, id, typ string) *testDevice {
	w.t.Helper()
	s := newKey(w.t, reading.ECDSAP256)
	req := api.EnrollRequest{ID: id, Type: typ, PublicKey: s.Public().PEM(), Activate: true, Private: true}
	d := must[api.Device](w, c, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Enroll(ctx, jsonArg(w.t, req))
	})
	require.True(w.t, d.Private)
	return &testDevice{id: id, signer: s}
}

// vitals signs the device's next reading with a distinctive heart rate.
func (d *testDevice) vitals(t *testing.T, bpm float64, note string) reading.Envelope {
	t.Helper()
	d.seq++
	env, err := d.signer.SignReading(reading.Payload{Device: d.id, Seq: d.seq, Timestamp: 1_700_000_000_000 + int64(d.seq),
		Values: []reading.Value{{Name: "heart_rate", Unit: "beat/min", Number: &bpm}, {Name: "note", String: &note}}})
	require.NoError(t, err)
	return env
}

// submitPrivate runs SubmitPrivateBatch with the batch in the transient data.
func (w *world) submitPrivate(c caller, envs ...reading.Envelope) (string, error) {
	w.transient = map[string][]byte{api.TransientBatchKey: []byte(jsonArg(w.t, api.BatchRequest{Readings: envs}))}
	defer func() { w.transient = nil }()
	return w.invoke(c, w.c.Telemetry.SubmitPrivateBatch)
}

// requireAbsent fails if any encoding of secret appears in b.
func requireAbsent(t *testing.T, b []byte, secret []byte, what string) {
	t.Helper()
	require.False(t, bytes.Contains(b, secret), "%s carries the secret bytes", what)
	require.False(t, bytes.Contains(b, []byte(base64.StdEncoding.EncodeToString(secret))), "%s carries the secret base64", what)
}

func TestPrivateReadingsKeepPayloadInTheOwnersCollectionAndOnlyHashesOnTheChannel(t *testing.T) {
	w := newWorld(t)
	mon := w.enrollPrivate(org1Operator, "monitor", "vitals")
	envs := []reading.Envelope{mon.vitals(t, 131.25, "patient-7-arrhythmia"), mon.vitals(t, 88.5, "patient-7-ok")}

	out, err := w.submitPrivate(org1Hub, envs...)
	require.NoError(t, err)
	var receipt api.BatchReceipt
	require.NoError(t, json.Unmarshal([]byte(out), &receipt))
	require.Equal(t, 2, receipt.Size)

	// The Merkle root still commits to every reading.
	leaves := make([][32]byte, len(envs))
	for i, env := range envs {
		r, err := env.Decode()
		require.NoError(t, err)
		leaves[i] = r.LeafHash()
	}
	root, err := reading.MerkleRoot(leaves)
	require.NoError(t, err)
	require.Equal(t, reading.Hash(root), receipt.Root)

	// Nothing public is written: the batch is Org1's alone to endorse, so
	// Org2's peer never sees it.
	require.Empty(t, w.lastTx.writes)
	require.Equal(t, []string{"Org1MSP"}, w.requiredEndorsers(w.lastTx))
	// The event and the result carry neither the payloads nor their
	// signatures nor the values in them.
	public := append(slices.Clone(w.lastRaw), out...)
	for i := range envs {
		requireAbsent(t, public, envs[i].Payload, "the channel")
		requireAbsent(t, public, envs[i].Signature, "the channel")
	}
	for _, secret := range []string{"patient-7", "131.25", "88.5", "heart_rate"} {
		require.NotContains(t, string(public), secret)
	}

	// Only Org1's implicit collection holds the readings (one key for the
	// batch, its envelopes in order), the batch record and the device's
	// replay state.
	require.Equal(t, []string{"_implicit_org_Org1MSP"}, sortedKeys(w.private))
	coll := w.private["_implicit_org_Org1MSP"]
	require.ElementsMatch(t, []string{ckey(t, kindPrivBatch, receipt.BatchID), ckey(t, kindBatch, receipt.BatchID), ckey(t, kindReplay, "monitor")}, sortedKeys(coll))
	var kept api.BatchRequest
	require.NoError(t, reading.DecodeStrict(coll[ckey(t, kindPrivBatch, receipt.BatchID)], &kept))
	require.Equal(t, envs, kept.Readings)
	st, err := decodeReplay(coll[ckey(t, kindReplay, "monitor")])
	require.NoError(t, err)
	require.Equal(t, replayState{hwm: 2}, st)
}

func TestPrivateBatchHoldsOnlyPrivateDevicesOfOneOrg(t *testing.T) {
	w := newWorld(t)
	mon := w.enrollPrivate(org1Operator, "monitor", "vitals")
	fridge := w.enroll(org1Operator, "fridge", "fridge")
	other := w.enrollPrivate(org2Operator, "monitor-2", "vitals")
	_, err := w.putPolicy(org2Operator, grant("org1-hub-writes", []string{"msp:Org1MSP"}, []string{api.ActionTelemetryWrite}, []string{"monitor-2"}))
	require.NoError(t, err)
	w.transient = batchTransient(t, mon.vitals(t, 70, "a"), fridge.reading(t, 4))
	refused(t, w, org1Hub, api.CodeInvalidArgument, "reading 1 (device fridge seq 1): device fridge is not private", w.c.Telemetry.SubmitPrivateBatch)
	w.transient = batchTransient(t, mon.vitals(t, 70, "a"), other.vitals(t, 71, "b"))
	refused(t, w, org1Hub, api.CodeInvalidArgument, "device monitor-2 is private to Org2MSP, and this batch holds private readings of Org1MSP", w.c.Telemetry.SubmitPrivateBatch)
	w.transient = nil
	require.Zero(t, w.privateCount())

	// A hub granted another org's private device submits its readings in a
	// batch of their own, which that org alone endorses.
	_, err = w.submitPrivate(org1Hub, other.vitals(t, 72, "c"))
	require.NoError(t, err)
	require.Equal(t, []string{"Org2MSP"}, w.requiredEndorsers(w.lastTx))
	require.Contains(t, w.private["_implicit_org_Org2MSP"], ckey(t, kindPrivBatch, w.lastTx.id))
	require.Contains(t, w.private["_implicit_org_Org2MSP"], ckey(t, kindReplay, "monitor-2"))
	require.Len(t, w.private, 1, "the refused batches wrote nothing in Org1's collection")
}

func TestPublicSubmitRefusesPrivateDeviceReadings(t *testing.T) {
	w := newWorld(t)
	mon := w.enrollPrivate(org1Operator, "monitor", "vitals")
	fridge := w.enroll(org1Operator, "fridge", "fridge")
	refused(t, w, org1Hub, api.CodeInvalidArgument, "reading 1 (device monitor seq 1): device monitor is private", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: []reading.Envelope{fridge.reading(t, 4), mon.vitals(t, 70, "x")}}))
	})
	refused(t, w, org1Hub, api.CodeInvalidArgument, "telemetry:SubmitPrivateBatch", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.Submit(ctx, string(mon.vitals(t, 70, "x").Encode()))
	})
	require.NotContains(t, w.state, ckey(t, kindReplay, "fridge"), "the whole batch is refused")
}

func TestSubmitPrivateBatchRefusesLikeSubmitBatch(t *testing.T) {
	w := newWorld(t)
	mon := w.enrollPrivate(org1Operator, "monitor", "vitals")
	ok := mon.vitals(t, 70, "ok")
	_, err := w.submitPrivate(org1Hub, ok)
	require.NoError(t, err)

	forged := mon.vitals(t, 71, "forged")
	forged.Signature = ok.Signature
	cases := []struct {
		name      string
		c         caller
		transient map[string][]byte
		code      api.Code
		contains  string
	}{
		{"no transient data", org1Hub, nil, api.CodeInvalidArgument, `transient key "batch"`},
		{"empty batch entry", org1Hub, map[string][]byte{api.TransientBatchKey: {}}, api.CodeInvalidArgument, "no batch in the transient data"},
		{"not JSON", org1Hub, map[string][]byte{api.TransientBatchKey: []byte("{")}, api.CodeInvalidArgument, "batch request is not valid JSON"},
		{"no readings", org1Hub, map[string][]byte{api.TransientBatchKey: []byte(`{"readings":[]}`)}, api.CodeInvalidArgument, "a batch carries 1..500 readings, got 0"},
		{"replay", org1Hub, batchTransient(t, ok), api.CodeReplay, "already on the ledger"},
		{"bad signature", org1Hub, batchTransient(t, forged), api.CodeBadSignature, "signature does not verify"},
		{"other org's hub", org2Hub, batchTransient(t, mon.vitals(t, 72, "x")), api.CodeAccessDenied, "may not telemetry:write"},
		{"operator is not a hub", org1Operator, batchTransient(t, mon.vitals(t, 73, "x")), api.CodeAccessDenied, "may not telemetry:write"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w.transient = tc.transient
			defer func() { w.transient = nil }()
			refused(t, w, tc.c, tc.code, tc.contains, w.c.Telemetry.SubmitPrivateBatch)
		})
	}
	must[api.Device](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Suspend(ctx, "monitor", "maintenance")
	})
	w.transient = batchTransient(t, mon.vitals(t, 74, "x"))
	refused(t, w, org1Hub, api.CodeDeviceInactive, "only active devices", w.c.Telemetry.SubmitPrivateBatch)
	w.transient = nil
}

func batchTransient(t *testing.T, envs ...reading.Envelope) map[string][]byte {
	t.Helper()
	return map[string][]byte{api.TransientBatchKey: []byte(jsonArg(t, api.BatchRequest{Readings: envs}))}
}

func TestRulesSeePrivateValuesButTheEventCarriesOnlyRuleMessages(t *testing.T) {
	w := newWorld(t)
	mon := w.enrollPrivate(org1Operator, "monitor", "vitals")
	_, err := w.putRule(org1Operator, api.Rule{
		ID: "tachycardia", Selector: api.DeviceSelector{Types: []string{"vitals"}}, Condition: "reading.values.heart_rate > 120",
		Actions: []api.RuleAction{
			{Type: api.ActionTypeAlert, Severity: api.SeverityCritical, Message: "heart rate high"},
			{Type: api.ActionTypeCommand, Command: "page-nurse"},
		},
	})
	require.NoError(t, err)
	out, err := w.submitPrivate(org1Hub, mon.vitals(t, 80, "calm"), mon.vitals(t, 142.75, "racing"))
	require.NoError(t, err)
	var receipt api.BatchReceipt
	require.NoError(t, json.Unmarshal([]byte(out), &receipt))
	require.Equal(t, 1, receipt.Alerts)
	require.Equal(t, []api.Alert{{Rule: "tachycardia", Device: "monitor", Seq: 2, Severity: api.SeverityCritical, Message: "heart rate high"}}, w.lastEvent.Alerts)
	require.Len(t, w.lastEvent.Commands, 1)
	cmd := w.lastEvent.Commands[0]
	require.True(t, cmd.Private, "a command issued in a private batch stays with the owner")
	require.Equal(t, []string{"Org1MSP"}, w.requiredEndorsers(w.lastTx))
	require.Contains(t, w.private["_implicit_org_Org1MSP"], ckey(t, kindCommand, "monitor", cmd.ID))
	require.NotContains(t, w.state, ckey(t, kindCommandID, cmd.ID))
	for _, secret := range []string{"142.75", "racing", "calm", "heart_rate"} {
		require.NotContains(t, string(w.lastRaw), secret)
		require.NotContains(t, out, secret)
	}
}

func (w *world) privateBatch(c caller, id string) (string, error) {
	return w.invoke(c, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.PrivateBatch(ctx, id)
	})
}

func TestOnlyTheOwnerOrgGetsAPrivateBatch(t *testing.T) {
	w := newWorld(t)
	mon := w.enrollPrivate(org1Operator, "monitor", "vitals")
	envs := []reading.Envelope{mon.vitals(t, 61, "a"), mon.vitals(t, 62, "b"), mon.vitals(t, 63, "c")}
	_, err := w.submitPrivate(org1Hub, envs...)
	require.NoError(t, err)
	id := w.lastTx.id
	// Org1 lets Org2 read the monitor's telemetry: Org2 still gets nothing.
	_, err = w.putPolicy(org1Operator, grant("org2-reads", []string{"msp:Org2MSP"}, []string{api.ActionTelemetryRead}, []string{"monitor"}))
	require.NoError(t, err)

	// The owner's reader gets the bytes its collection holds, whose hash
	// the block carries.
	out, err := w.privateBatch(org1Auditor, id)
	require.NoError(t, err)
	stored := w.private["_implicit_org_Org1MSP"][ckey(t, kindPrivBatch, id)]
	require.Equal(t, string(stored), out)
	var got api.BatchRequest
	require.NoError(t, reading.DecodeStrict([]byte(out), &got))
	require.Equal(t, envs, got.Readings)
	require.Empty(t, w.lastTx.writes)

	for _, tc := range []struct {
		name     string
		who      caller
		peer     string
		id       string
		code     api.Code
		contains string
	}{
		{"another org, allowed to read", org2Operator, "", id, api.CodeNotFound, "the private data of Org2MSP holds no private batch"},
		{"another org's auditor", caller{"Org2MSP", "x509::CN=auditor,OU=client::CN=ca.org2", api.RoleAuditor}, "", id, api.CodeNotFound, "stays with the org whose devices it carried"},
		{"the owner, on another org's peer", org1Auditor, "Org2MSP", id, api.CodeFailedPrecondition, "evaluate on a peer of Org1MSP"},
		{"the owner's hub, which may not read", org1Hub, "", id, api.CodeAccessDenied, `may not telemetry:read "monitor" of Org1MSP`},
		{"a public batch", org1Auditor, "", "nope", api.CodeNotFound, "a public batch's readings are in its transaction's arguments"},
		{"no id", org1Auditor, "", "", api.CodeInvalidArgument, "batch id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w.peerOrg = tc.peer
			defer func() { w.peerOrg = "" }()
			refused(t, w, tc.who, tc.code, tc.contains, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Telemetry.PrivateBatch(ctx, tc.id)
			})
		})
	}
}

func TestSeenOfAPrivateDeviceIsAnsweredByItsOwnersPeers(t *testing.T) {
	w := newWorld(t)
	mon := w.enrollPrivate(org1Operator, "monitor", "vitals")
	_, err := w.submitPrivate(org1Hub, mon.vitals(t, 61, "a"), mon.vitals(t, 62, "b"))
	require.NoError(t, err)
	require.Equal(t, map[uint64]api.SeqState{1: api.SeqAccepted, 2: api.SeqAccepted, 3: api.SeqNotSeen}, states(w.seen(org1Hub, "monitor", 1, 2, 3)))
	w.peerOrg = "Org2MSP"
	defer func() { w.peerOrg = "" }()
	refused(t, w, org1Hub, api.CodeFailedPrecondition, "the replay state of private device monitor is in the private data of Org1MSP, which this peer cannot read", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.Seen(ctx, "monitor", `[1]`)
	})
}

func TestPrivateReadingsStayWithTheOrgThatOwnedTheDeviceWhenTheyWereSubmitted(t *testing.T) {
	w := newWorld(t)
	mon := w.enrollPrivate(org1Operator, "monitor", "vitals")
	_, err := w.submitPrivate(org1Hub, mon.vitals(t, 61, "before"))
	require.NoError(t, err)
	first := w.lastTx.id
	must[api.Device](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.OfferTransfer(ctx, "monitor", "Org2MSP")
	})
	must[api.Device](w, org2Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.AcceptTransfer(ctx, "monitor")
	})
	d := w.getDevice("monitor")
	require.True(t, d.Private, "privacy survives a transfer")
	if d.Status != api.StatusActive {
		must[api.Device](w, org2Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Device.Activate(ctx, "monitor", "in service")
		})
	}
	_, err = w.submitPrivate(org2Hub, mon.vitals(t, 62, "after"))
	require.NoError(t, err)
	second := w.lastTx.id
	require.Contains(t, w.private["_implicit_org_Org1MSP"], ckey(t, kindPrivBatch, first))
	require.Contains(t, w.private["_implicit_org_Org2MSP"], ckey(t, kindPrivBatch, second))

	_, err = w.privateBatch(org2Operator, second)
	require.NoError(t, err)
	// The earlier batch stays with Org1, whose peers hold it; Org1 still
	// gets it, by its own policies, though the device is Org2's now.
	refused(t, w, org2Operator, api.CodeNotFound, "stays with the org whose devices it carried", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.PrivateBatch(ctx, first)
	})
	_, err = w.privateBatch(org1Auditor, first)
	require.NoError(t, err)
}

func TestPrivateBatchLedgerFailuresAreInternalAndLeaveNothing(t *testing.T) {
	for _, method := range []string{"GetTransient", "PutPrivateData"} {
		t.Run(method, func(t *testing.T) {
			w := newWorld(t)
			mon := w.enrollPrivate(org1Operator, "monitor", "vitals")
			w.fault = fault{method: method, n: 1}
			w.transient = batchTransient(t, mon.vitals(t, 61, "a"))
			refused(t, w, org1Hub, api.CodeInternal, "injected ledger failure", w.c.Telemetry.SubmitPrivateBatch)
			require.True(t, w.fault.hit)
		})
	}
	t.Run("GetPrivateData", func(t *testing.T) {
		w := newWorld(t)
		mon := w.enrollPrivate(org1Operator, "monitor", "vitals")
		_, err := w.submitPrivate(org1Hub, mon.vitals(t, 61, "a"))
		require.NoError(t, err)
		id := w.lastTx.id
		w.fault = fault{method: "GetPrivateData", n: 1}
		refused(t, w, org1Operator, api.CodeFailedPrecondition, "injected ledger failure", func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.PrivateBatch(ctx, id)
		})
		w.fault = fault{method: "GetPrivateData", n: 1} // the replay state
		w.transient = batchTransient(t, mon.vitals(t, 62, "b"))
		refused(t, w, org1Hub, api.CodeInternal, "injected ledger failure", w.c.Telemetry.SubmitPrivateBatch)
		w.transient = nil
	})
	t.Run("tampered private value", func(t *testing.T) {
		w := newWorld(t)
		mon := w.enrollPrivate(org1Operator, "monitor", "vitals")
		_, err := w.submitPrivate(org1Hub, mon.vitals(t, 61, "a"), mon.vitals(t, 62, "b"))
		require.NoError(t, err)
		id := w.lastTx.id
		coll := w.private["_implicit_org_Org1MSP"]
		coll[ckey(t, kindPrivBatch, id)] = []byte("not json")
		refused(t, w, org1Operator, api.CodeInconsistentRecord, "private batch pbatch~"+id+" cannot be decoded", func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.PrivateBatch(ctx, id)
		})
		coll[ckey(t, kindPrivBatch, id)] = []byte(`{"readings":[{"p":"e30=","s":"AA=="}]}`)
		refused(t, w, org1Operator, api.CodeInconsistentRecord, "reading 0 cannot be decoded", func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.PrivateBatch(ctx, id)
		})
		coll[ckey(t, kindReplay, "monitor")] = []byte{replayVersion, 0}
		w.transient = batchTransient(t, mon.vitals(t, 63, "c"))
		refused(t, w, org1Hub, api.CodeInconsistentRecord, "replay state rs~monitor", w.c.Telemetry.SubmitPrivateBatch)
		w.transient = nil
	})
}

func FuzzSubmitPrivateBatchTransient(f *testing.F) {
	f.Add([]byte(`{"readings":[{"p":"e30=","s":"AA=="}]}`))
	f.Add([]byte(`{"readings":[]}`))
	f.Add([]byte(`{"readings":null,"x":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		w := newWorld(t)
		w.transient = map[string][]byte{api.TransientBatchKey: b}
		_, err := w.invoke(org1Hub, w.c.Telemetry.SubmitPrivateBatch)
		// Nothing is enrolled: every batch is refused with a classified error.
		require.Error(t, err)
		require.NotEqual(t, api.CodeInternal, api.CodeOf(err), "error: %v", err)
		require.Empty(t, w.state)
		require.Zero(t, w.privateCount())
	})
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestSubmitPrivateBatchIsDeterministic(t *testing.T) {
	mon := &testDevice{id: "monitor", signer: newKey(t, reading.ECDSAP256)}
	pub := &testDevice{id: "bed-2", signer: newKey(t, reading.Ed25519)}
	var envs []reading.Envelope
	for i := range 10 {
		envs = append(envs, mon.vitals(t, 60+float64(i), "n"), pub.vitals(t, 70+float64(i), "m"))
	}
	run := func() *txRecord {
		w := newWorld(t)
		for _, d := range []*testDevice{mon, pub} {
			must[api.Device](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Device.Enroll(ctx, jsonArg(t, api.EnrollRequest{ID: d.id, Type: "t", PublicKey: d.signer.Public().PEM(), Activate: true, Private: true}))
			})
		}
		_, err := w.putRule(org1Operator, api.Rule{ID: "r", Condition: "reading.values.heart_rate > 65.0",
			Actions: []api.RuleAction{{Type: api.ActionTypeAlert, Severity: api.SeverityInfo, Message: "high"}}})
		require.NoError(t, err)
		_, err = w.submitPrivate(org1Hub, envs...)
		require.NoError(t, err)
		return w.lastTx
	}
	first, second := run(), run()
	require.Equal(t, first.order, second.order)
	require.Equal(t, first.writes, second.writes)
	require.Equal(t, first.pvt, second.pvt)
	require.Equal(t, first.events, second.events)
	require.Len(t, first.pvt["_implicit_org_Org1MSP"], 4, "the readings, the batch record and two replay states")
}

func TestACommandIssuedInAPrivateBatchLivesAndEndsWithItsOwner(t *testing.T) {
	w := newWorld(t)
	mon := w.enrollPrivate(org1Operator, "monitor", "vitals")
	_, err := w.putRule(org1Operator, api.Rule{ID: "page", Selector: api.DeviceSelector{Types: []string{"vitals"}}, Condition: "reading.values.heart_rate > 120",
		Actions: []api.RuleAction{{Type: api.ActionTypeCommand, Command: "page-nurse"}}})
	require.NoError(t, err)
	_, err = w.submitPrivate(org1Hub, mon.vitals(t, 150, "x"))
	require.NoError(t, err)
	id := w.lastEvent.Commands[0].ID

	page := must[api.CommandPage](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Command.List(ctx, `{"device":"monitor"}`)
	})
	require.Len(t, page.Commands, 1)
	require.True(t, page.Commands[0].Private)

	delivered := must[api.Command](w, org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Command.MarkDelivered(ctx, id)
	})
	require.Equal(t, api.CommandDelivered, delivered.Status)
	require.Equal(t, []string{"Org1MSP"}, w.requiredEndorsers(w.lastTx), "Org1 alone endorses the private command's changes")
	acked := must[api.Command](w, org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Command.Ack(ctx, mon.ack(t, api.AckPayload{Device: "monitor", Command: id, Status: api.CommandAcked}))
	})
	require.Equal(t, api.CommandAcked, acked.Status)
	require.Equal(t, []string{"Org1MSP"}, w.requiredEndorsers(w.lastTx))
	require.Empty(t, w.lastTx.writes, "nothing public")

	// Another org does not find it, not even where Org1 let it read.
	_, err = w.putPolicy(org1Operator, grant("org2-reads", []string{"msp:Org2MSP"}, []string{api.ActionDeviceRead}, []string{"monitor"}))
	require.NoError(t, err)
	refused(t, w, org2Operator, api.CodeNotFound, "does not exist", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Command.Get(ctx, id)
	})
	page = must[api.CommandPage](w, org2Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Command.List(ctx, `{"device":"monitor"}`)
	})
	require.Empty(t, page.Commands)
}
