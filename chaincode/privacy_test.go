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
	fridge := w.enroll(org1Operator, "fridge", "fridge")
	envs := []reading.Envelope{mon.vitals(t, 131.25, "patient-7-arrhythmia"), fridge.reading(t, 4), mon.vitals(t, 88.5, "patient-7-ok")}

	out, err := w.submitPrivate(org1Hub, envs...)
	require.NoError(t, err)
	var receipt api.BatchReceipt
	require.NoError(t, json.Unmarshal([]byte(out), &receipt))
	require.Equal(t, 3, receipt.Size)

	// The Merkle root still commits to every reading, private or not.
	leaves := make([][32]byte, len(envs))
	for i, env := range envs {
		r, err := env.Decode()
		require.NoError(t, err)
		leaves[i] = r.LeafHash()
	}
	root, err := reading.MerkleRoot(leaves)
	require.NoError(t, err)
	require.Equal(t, reading.Hash(root), receipt.Root)

	// Public writes, the event and the result carry neither the private
	// payloads nor their signatures nor the values in them.
	var public []byte
	for _, k := range w.lastTx.order {
		public = append(append(public, k...), w.lastTx.writes[k]...)
	}
	public = append(append(public, w.lastRaw...), out...)
	for _, i := range []int{0, 2} {
		requireAbsent(t, public, envs[i].Payload, "the channel")
		requireAbsent(t, public, envs[i].Signature, "the channel")
	}
	for _, secret := range []string{"patient-7", "131.25", "88.5", "heart_rate"} {
		require.NotContains(t, string(public), secret)
	}
	// The public device's reading is stored as SubmitBatch stores it.
	require.True(t, bytes.Contains(w.state[readingKey("fridge", 1)], envs[1].Payload))
	require.True(t, bytes.Contains(w.state[readingKey("fridge", 1)], envs[1].Signature))

	// The private record keeps ts, key, batch, index and leaf (device and
	// seq are in its key).
	rec, err := decodeRecord(w.state[readingKey("monitor", 2)])
	require.NoError(t, err)
	require.Equal(t, api.StoredReading{
		Timestamp: 1_700_000_000_002, KeyID: w.getDevice("monitor").KeyID,
		BatchID: receipt.BatchID, Index: 2, Committed: w.now, Private: true, PrivateTo: "Org1MSP", Leaf: ptr(reading.Hash(leaves[2])),
	}, rec)

	// Only Org1's implicit collection holds the payloads, under the same keys.
	require.Equal(t, []string{"_implicit_org_Org1MSP"}, sortedKeys(w.private))
	var pr privateReading
	require.NoError(t, json.Unmarshal(w.private["_implicit_org_Org1MSP"][readingKey("monitor", 1)], &pr))
	require.Equal(t, envs[0].Payload, pr.Payload)
	require.Equal(t, envs[0].Signature, pr.Signature)
	require.Len(t, w.private["_implicit_org_Org1MSP"], 2)
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
	require.NotContains(t, w.state, readingKey("fridge", 1), "the whole batch is refused")
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
	for _, secret := range []string{"142.75", "racing", "calm", "heart_rate"} {
		require.NotContains(t, string(w.lastRaw), secret)
		require.NotContains(t, out, secret)
	}
}

func TestOnlyTheOwnerOrgReadsPrivateValues(t *testing.T) {
	w := newWorld(t)
	mon := w.enrollPrivate(org1Operator, "monitor", "vitals")
	envs := []reading.Envelope{mon.vitals(t, 61, "a"), mon.vitals(t, 62, "b"), mon.vitals(t, 63, "c")}
	_, err := w.submitPrivate(org1Hub, envs...)
	require.NoError(t, err)
	// Org1 lets Org2 read the monitor's telemetry: Org2 still gets no values.
	_, err = w.putPolicy(org1Operator, grant("org2-reads", []string{"msp:Org2MSP"}, []string{api.ActionTelemetryRead}, []string{"monitor"}))
	require.NoError(t, err)

	get := func(c caller) api.StoredReading {
		return must[api.StoredReading](w, c, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.Get(ctx, "monitor", "2")
		})
	}
	own := get(org1Auditor)
	require.True(t, own.Private)
	require.Equal(t, envs[1].Payload, own.Payload)
	require.Equal(t, envs[1].Signature, own.Signature)
	require.Len(t, own.Values, 2)
	require.Equal(t, 62.0, *own.Values[0].Number)

	other := get(org2Operator)
	require.True(t, other.Private)
	require.Equal(t, "Org1MSP", other.PrivateTo)
	require.Nil(t, other.Values)
	require.Nil(t, other.Payload)
	require.Nil(t, other.Signature)
	require.Equal(t, own.Leaf, other.Leaf)

	list := func(c caller) api.ReadingPage {
		return must[api.ReadingPage](w, c, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.List(ctx, jsonArg(t, api.ReadingQuery{Device: "monitor"}))
		})
	}
	for i, r := range list(org1Operator).Readings {
		require.Equal(t, envs[i].Payload, r.Payload)
		require.Len(t, r.Values, 2)
	}
	for _, r := range list(org2Operator).Readings {
		require.True(t, r.Private)
		require.Nil(t, r.Values)
		require.Nil(t, r.Payload)
	}

	proof := func(c caller) reading.Proof {
		return must[reading.Proof](w, c, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.Proof(ctx, "monitor", "2")
		})
	}
	p := proof(org1Auditor)
	payload, err := p.Verify()
	require.NoError(t, err)
	require.Equal(t, uint64(2), payload.Seq)

	// Org2's proof has no payload, which Verify refuses; the leaf hash of
	// the public record proves inclusion all the same.
	p2 := proof(org2Operator)
	require.Empty(t, p2.Payload)
	require.Empty(t, p2.Signature)
	_, err = p2.Verify()
	require.Error(t, err)
	require.NoError(t, reading.VerifyInclusion(*other.Leaf, p2.Index, p2.Size, toArrays(p2.Path), p2.Root))
	wrong := *other.Leaf
	wrong[0] ^= 1
	require.ErrorIs(t, reading.VerifyInclusion(wrong, p2.Index, p2.Size, toArrays(p2.Path), p2.Root), reading.ErrProofMismatch)

	// An Org1 caller whose read lands on Org2's peer is told where to ask.
	w.peerOrg = "Org2MSP"
	refused(t, w, org1Auditor, api.CodeFailedPrecondition, "evaluate on a peer of Org1MSP", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.Get(ctx, "monitor", "2")
	})
	w.peerOrg = ""
}

func TestPrivateReadingsStayWithTheOrgThatOwnedTheDeviceWhenTheyWereSubmitted(t *testing.T) {
	w := newWorld(t)
	mon := w.enrollPrivate(org1Operator, "monitor", "vitals")
	_, err := w.submitPrivate(org1Hub, mon.vitals(t, 61, "before"))
	require.NoError(t, err)
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
	require.Contains(t, w.private["_implicit_org_Org1MSP"], readingKey("monitor", 1))
	require.Contains(t, w.private["_implicit_org_Org2MSP"], readingKey("monitor", 2))

	r2 := must[api.StoredReading](w, org2Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.Get(ctx, "monitor", "2")
	})
	require.Len(t, r2.Values, 2)
	// The earlier reading's values stay with Org1, whose peers hold them.
	r1 := must[api.StoredReading](w, org2Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.Get(ctx, "monitor", "1")
	})
	require.Equal(t, "Org1MSP", r1.PrivateTo)
	require.Nil(t, r1.Values)
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
		w.fault = fault{method: "GetPrivateData", n: 1}
		refused(t, w, org1Operator, api.CodeFailedPrecondition, "injected ledger failure", func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.Get(ctx, "monitor", "1")
		})
	})
	t.Run("tampered private value", func(t *testing.T) {
		w := newWorld(t)
		mon := w.enrollPrivate(org1Operator, "monitor", "vitals")
		_, err := w.submitPrivate(org1Hub, mon.vitals(t, 61, "a"), mon.vitals(t, 62, "b"))
		require.NoError(t, err)
		coll := w.private["_implicit_org_Org1MSP"]
		coll[readingKey("monitor", 1)] = coll[readingKey("monitor", 2)]
		refused(t, w, org1Operator, api.CodeInternal, "does not match its leaf hash", func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.Get(ctx, "monitor", "1")
		})
		coll[readingKey("monitor", 1)] = []byte("not json")
		refused(t, w, org1Operator, api.CodeInternal, "decoding private reading", func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.Get(ctx, "monitor", "1")
		})
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

func ptr[T any](v T) *T { return &v }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func toArrays(hs []reading.Hash) [][32]byte {
	out := make([][32]byte, len(hs))
	for i, h := range hs {
		out[i] = h
	}
	return out
}

func TestSubmitPrivateBatchIsDeterministic(t *testing.T) {
	mon := &testDevice{id: "monitor", signer: newKey(t, reading.ECDSAP256)}
	pub := &testDevice{id: "fridge", signer: newKey(t, reading.Ed25519)}
	var envs []reading.Envelope
	for i := range 10 {
		envs = append(envs, mon.vitals(t, 60+float64(i), "n"), pub.reading(t, float64(i)))
	}
	run := func() *txRecord {
		w := newWorld(t)
		for _, d := range []*testDevice{mon, pub} {
			must[api.Device](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Device.Enroll(ctx, jsonArg(t, api.EnrollRequest{ID: d.id, Type: "t", PublicKey: d.signer.Public().PEM(), Activate: true, Private: d == mon}))
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
	require.Len(t, first.pvt["_implicit_org_Org1MSP"], 10)
}
