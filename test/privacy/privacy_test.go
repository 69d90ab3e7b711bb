package privacy_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
)

// monitor is a simulated patient vitals monitor.
type monitor struct {
	id     string
	signer *reading.Signer
	seq    uint64
}

func newMonitor(t *testing.T, prefix string) *monitor {
	t.Helper()
	s, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	return &monitor{id: fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()), signer: s}
}

// vitals signs the next reading: a heart rate and a note that appear
// nowhere else, so that finding them in a block can only mean a leak.
func (m *monitor) vitals(t *testing.T, bpm float64, note string) reading.Envelope {
	t.Helper()
	m.seq++
	env, err := m.signer.SignReading(reading.Payload{Device: m.id, Seq: m.seq, Timestamp: time.Now().UnixMilli(),
		Values: []reading.Value{{Name: "heart_rate", Unit: "beat/min", Number: &bpm}, {Name: "note", String: &note}}})
	require.NoError(t, err)
	return env
}

func connect(ctx context.Context, t *testing.T, org, identity string) *client.Client {
	t.Helper()
	p, err := fabric.Profile(org)
	require.NoError(t, err)
	c, err := client.Connect(ctx, p, identity)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// connectVia connects an identity of org idOrg to the gateway peer of org
// peerOrg.
func connectVia(ctx context.Context, t *testing.T, peerOrg, idOrg, identity string) *client.Client {
	t.Helper()
	p, err := fabric.Profile(peerOrg)
	require.NoError(t, err)
	own, err := fabric.Profile(idOrg)
	require.NoError(t, err)
	files, err := own.Identity(identity)
	require.NoError(t, err)
	p.Identities = map[string]client.IdentityFiles{identity: files}
	c, err := client.Connect(ctx, p, identity)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: starts a Fabric network")
	}
	require.NotNil(t, fabric, "no network")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// blockBytes fetches the block holding txID, as Org1's admin, and returns
// it serialized exactly as the channel keeps it.
func blockBytes(ctx context.Context, t *testing.T, admin *client.Client, txID string) []byte {
	t.Helper()
	block, err := admin.BlockByTxID(ctx, txID)
	require.NoError(t, err)
	b, err := proto.Marshal(block)
	require.NoError(t, err)
	require.True(t, bytes.Contains(b, []byte(txID)), "the block must hold the transaction")
	return b
}

func TestPrivateVitalsStayWithTheOwnerAndOffTheChannel(t *testing.T) {
	ctx := testContext(t)
	org1Operator := connect(ctx, t, "Org1", "operator")
	org1Hub := connect(ctx, t, "Org1", "hub")
	org1Admin := connect(ctx, t, "Org1", "admin")
	org2Operator := connect(ctx, t, "Org2", "operator")

	mon := newMonitor(t, "vitals")
	d, err := org1Operator.EnrollDevice(ctx, api.EnrollRequest{ID: mon.id, Type: "vitals-monitor", PublicKey: mon.signer.Public().PEM(), Activate: true, Private: true})
	require.NoError(t, err)
	require.True(t, d.Private)
	// Org1 grants Org2 telemetry:read on the monitor: Org2 may read the
	// records, but its peers never held the values.
	_, err = org1Operator.PutPolicy(ctx, api.Policy{ID: "org2-reads-" + mon.id, Statements: []api.Statement{{
		Effect: api.Allow, Principals: []string{"msp:Org2MSP"}, Actions: []string{api.ActionTelemetryRead}, Resources: []string{mon.id},
	}}})
	require.NoError(t, err)

	secrets := []string{"patient-4711-arrhythmia-" + mon.id, "patient-4711-stable-" + mon.id}
	envs := []reading.Envelope{mon.vitals(t, 131.0625, secrets[0]), mon.vitals(t, 77.4375, secrets[1])}
	receipt, err := org1Hub.SubmitPrivateBatch(ctx, api.BatchRequest{Readings: envs})
	require.NoError(t, err)
	require.Equal(t, 2, receipt.Size)

	// The owner org reads the values (the batch's readings, kept under one
	// key in its collection), and they are what the batch's root commits to.
	own, err := org1Operator.PrivateBatch(ctx, receipt.BatchID)
	require.NoError(t, err)
	require.Equal(t, envs, own.Readings)
	leaves := make([][32]byte, len(own.Readings))
	for i, env := range own.Readings {
		r, err := env.Decode()
		require.NoError(t, err)
		leaves[i] = r.LeafHash()
		require.Equal(t, []float64{131.0625, 77.4375}[i], *r.Values[0].Number)
		require.Equal(t, secrets[i], *r.Values[1].String)
	}
	root, err := reading.MerkleRoot(leaves)
	require.NoError(t, err)
	require.Equal(t, receipt.Root, reading.Hash(root))

	// Org2, allowed to read by Org1's policy, finds nothing: no Org2 peer
	// ever held the readings, not even their records.
	_, err = org2Operator.PrivateBatch(ctx, receipt.BatchID)
	require.Equal(t, api.CodeNotFound, api.CodeOf(err), "error: %v", err)
	require.Contains(t, err.Error(), "the private data of Org2MSP holds no private batch")

	// Org2's peer does not hold the values: Org1's own operator, reading
	// through Org2's gateway (which evaluates on Org2's peer), is refused
	// by Fabric's private data store and told where to ask.
	viaOrg2 := connectVia(ctx, t, "Org2", "Org1", "operator")
	_, err = viaOrg2.PrivateBatch(ctx, receipt.BatchID)
	require.Error(t, err)
	require.Equal(t, api.CodeFailedPrecondition, api.CodeOf(err), "error: %v", err)
	require.Contains(t, err.Error(), "evaluate on a peer of Org1MSP")
	require.Contains(t, err.Error(), "private data matching public hash version is not available", "Fabric's own refusal on a peer without the values")

	// The block that committed the batch holds neither the payloads, nor
	// the signatures, nor the values, in any encoding the chaincode uses,
	// nor even their Merkle leaves: everything the batch wrote is in Org1's
	// implicit collection, and the block carries Fabric's hashes of it.
	block := blockBytes(ctx, t, org1Admin, receipt.BatchID)
	for i, env := range envs {
		r, err := env.Decode()
		require.NoError(t, err)
		leaf := reading.Hash(r.LeafHash())
		for what, secret := range map[string][]byte{
			"payload":          env.Payload,
			"payload (base64)": []byte(base64.StdEncoding.EncodeToString(env.Payload)),
			"signature":        env.Signature,
			"signature (b64)":  []byte(base64.StdEncoding.EncodeToString(env.Signature)),
			"note":             []byte(secrets[i]),
			"leaf":             []byte(leaf.String()),
		} {
			require.False(t, bytes.Contains(block, secret), "the block carries reading %d's %s", i+1, what)
		}
	}
	for _, v := range []float64{131.0625, 77.4375} {
		require.False(t, bytes.Contains(block, []byte(strconv.FormatFloat(v, 'f', -1, 64))), "the block carries the value %v", v)
	}
	require.True(t, bytes.Contains(block, []byte("_implicit_org_Org1MSP")), "the block carries the hashed writes of Org1's implicit collection")
}

// The absence check above means something only if the same check finds a
// public device's payload and signature in its block (payloads travel
// base64-encoded in JSON, in the arguments).
func TestPublicReadingValuesAreInTheBlock(t *testing.T) {
	ctx := testContext(t)
	org1Operator := connect(ctx, t, "Org1", "operator")
	org1Hub := connect(ctx, t, "Org1", "hub")
	org1Admin := connect(ctx, t, "Org1", "admin")
	mon := newMonitor(t, "public-vitals")
	_, err := org1Operator.EnrollDevice(ctx, api.EnrollRequest{ID: mon.id, Type: "vitals-monitor", PublicKey: mon.signer.Public().PEM(), Activate: true})
	require.NoError(t, err)
	note := "public-note-" + mon.id
	env := mon.vitals(t, 64.5, note)
	receipt, err := org1Hub.SubmitBatch(ctx, api.BatchRequest{Readings: []reading.Envelope{env}})
	require.NoError(t, err)
	block := blockBytes(ctx, t, org1Admin, receipt.BatchID)
	require.True(t, bytes.Contains(block, []byte(base64.StdEncoding.EncodeToString(env.Payload))), "the block carries the payload (base64)")
	require.True(t, bytes.Contains(block, []byte(base64.StdEncoding.EncodeToString(env.Signature))), "the block carries the signature (base64)")
}

func TestPublicSubmitBatchRefusesAPrivateDevicesReading(t *testing.T) {
	ctx := testContext(t)
	org1Operator := connect(ctx, t, "Org1", "operator")
	org1Hub := connect(ctx, t, "Org1", "hub")
	mon := newMonitor(t, "vitals-refused")
	_, err := org1Operator.EnrollDevice(ctx, api.EnrollRequest{ID: mon.id, Type: "vitals-monitor", PublicKey: mon.signer.Public().PEM(), Activate: true, Private: true})
	require.NoError(t, err)
	_, err = org1Hub.SubmitBatch(ctx, api.BatchRequest{Readings: []reading.Envelope{mon.vitals(t, 90, "must-not-leak")}})
	require.Error(t, err)
	require.Equal(t, api.CodeInvalidArgument, api.CodeOf(err), "error: %v", err)
	require.Contains(t, err.Error(), "telemetry:SubmitPrivateBatch")
	_, err = org1Hub.SubmitReading(ctx, mon.vitals(t, 91, "must-not-leak"))
	require.Equal(t, api.CodeInvalidArgument, api.CodeOf(err), "error: %v", err)
	seen, err := org1Operator.Seen(ctx, mon.id, []uint64{1})
	require.NoError(t, err)
	require.Equal(t, api.SeqNotSeen, seen.Seqs[0].State, "a refused reading is not accepted")

	// The same reading goes through the private batch.
	mon.seq = 0
	receipt, err := org1Hub.SubmitPrivateBatch(ctx, api.BatchRequest{Readings: []reading.Envelope{mon.vitals(t, 90, "private-ok")}})
	require.NoError(t, err)
	require.Equal(t, 1, receipt.Size)
}
