// Package receipts_test makes receipts on a real Fabric network and checks
// them as an outsider would: offline, with the trust anchor alone, with the
// Go verifier and with the independent node verifier (test/receipt-node).
// Forged and tampered receipts are refused by both, at the same step.
package receipts_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/index"
	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/receipt"
	"github.com/iotledger/iotledger/test/testnet"
)

var fabric *network.Network

func TestMain(m *testing.M) { os.Exit(testnet.Run(m, &fabric)) }

// connect returns a client that lives as long as the test binary: the
// fixture's clients serve every test.
func connect(t *testing.T, org, identity string, opts ...client.Option) *client.Client {
	t.Helper()
	p, err := fabric.Profile(org)
	require.NoError(t, err)
	c, err := client.Connect(context.Background(), p, identity, opts...)
	require.NoError(t, err)
	return c
}

// device is an enrolled device and its key.
type device struct {
	id     string
	signer *reading.Signer
}

func enroll(t *testing.T, op *client.Client, alg reading.Algorithm) device {
	t.Helper()
	s, err := reading.GenerateKey(alg)
	require.NoError(t, err)
	id := testnet.UniqueID(t, "rcpt")
	_, err = op.EnrollDevice(t.Context(), api.EnrollRequest{ID: id, Type: "meter", PublicKey: s.Public().PEM(), Activate: true})
	require.NoError(t, err)
	testnet.Settle(t.Context(), t, fabric)
	return device{id: id, signer: s}
}

func (d device) reading(t *testing.T, seq uint64, v float64) reading.Envelope {
	t.Helper()
	env, err := d.signer.SignReading(reading.Payload{Device: d.id, Seq: seq, Timestamp: time.Now().UnixMilli(),
		Values: []reading.Value{{Name: "power", Unit: "W", Number: &v}}})
	require.NoError(t, err)
	return env
}

// indexedProof is reading seq of device with its Merkle path in its batch,
// as Org1's index serves them from the blocks (the ledger keeps no
// readings). Call ix.Sync after the submission first.
func indexedProof(t *testing.T, ix *testnet.Index, device string, seq uint64) *reading.Proof {
	t.Helper()
	p, err := index.ReadingProof(t.Context(), ix, device, seq)
	require.NoError(t, err)
	return p
}

// proofOf claims that batch[i] is in the batch transaction txID committed,
// with the Merkle path of the readings given: a proof made from what the
// test holds, for claims no index backs (a reading that never committed).
func proofOf(t *testing.T, txID string, batch []reading.Envelope, i int) *reading.Proof {
	t.Helper()
	leaves := make([][32]byte, len(batch))
	for j, env := range batch {
		leaves[j] = reading.LeafHash(env.Payload, env.Signature)
	}
	root, err := reading.MerkleRoot(leaves)
	require.NoError(t, err)
	path, err := reading.InclusionPath(leaves, i)
	require.NoError(t, err)
	p := &reading.Proof{BatchID: txID, Root: root, Size: len(batch), Index: i, Payload: batch[i].Payload, Signature: batch[i].Signature}
	for _, h := range path {
		p.Path = append(p.Path, h)
	}
	return p
}

// fixture is one real receipt and everything the tests forge it with.
type fixture struct {
	op1, hub1, aud2 *client.Client
	anchor          receipt.Anchor
	d, d2           device
	batch           []reading.Envelope
	r               *receipt.Receipt
}

var shared *fixture

func setup(t *testing.T) *fixture {
	t.Helper()
	if shared != nil {
		return shared
	}
	f := &fixture{op1: connect(t, "Org1", "operator"), hub1: connect(t, "Org1", "hub"), aud2: connect(t, "Org2", "auditor")}
	var err error
	f.anchor, _, err = f.op1.TrustAnchor(t.Context())
	require.NoError(t, err)
	f.d, f.d2 = enroll(t, f.op1, reading.ECDSAP256), enroll(t, f.op1, reading.Ed25519)
	f.batch = []reading.Envelope{f.d.reading(t, 1, 10), f.d2.reading(t, 1, 20), f.d.reading(t, 2, 30)}
	br, err := f.hub1.SubmitBatch(t.Context(), api.BatchRequest{Readings: f.batch})
	require.NoError(t, err)
	ix := testnet.StartIndex(t, fabric, "Org1")
	ix.Sync(t)
	p := indexedProof(t, ix, f.d.id, 2)
	require.Equal(t, proofOf(t, br.BatchID, f.batch, 2), p, "the index serves the reading as submitted, in its batch")
	f.r, err = f.op1.ReadingReceipt(t.Context(), p)
	require.NoError(t, err)
	shared = f
	return f
}

func marshal(t *testing.T, r *receipt.Receipt) []byte {
	t.Helper()
	b, err := r.Marshal()
	require.NoError(t, err)
	return b
}

func TestEveryMemberGivesTheSameTrustAnchor(t *testing.T) {
	f := setup(t)
	a2, genesis, err := f.aud2.TrustAnchor(t.Context())
	require.NoError(t, err)
	require.Equal(t, f.anchor, a2, "Org1's and Org2's peers hand out the same anchor")
	require.Equal(t, fabric.Channel(), a2.Channel)
	fromBlock, err := receipt.AnchorOf(genesis)
	require.NoError(t, err)
	require.Equal(t, a2, fromBlock)
	fromFile, err := receipt.AnchorOfFile(fabric.GenesisBlockPath())
	require.NoError(t, err)
	require.Equal(t, a2, fromFile, "the genesis block the channel was made from (network trust-anchor) gives the same anchor")
	one, err := f.aud2.BlockByNumber(t.Context(), 1)
	require.NoError(t, err)
	require.Equal(t, a2.Genesis, hex.EncodeToString(one.GetHeader().GetPreviousHash()), "the anchor is the hash block 1 chains to")
}

func TestAReadingReceiptVerifiesOfflineWithTheAnchorAlone(t *testing.T) {
	f := setup(t)
	data := marshal(t, f.r)
	start := time.Now()
	res, err := receipt.Verify(data, f.anchor)
	took := time.Since(start)
	require.NoError(t, err)
	t.Logf("reading receipt: %d bytes, %d blocks + %d config blocks, verified in %s", len(data), len(f.r.Blocks), len(f.r.Config), took)
	require.Equal(t, receipt.KindReading, res.Kind)
	require.Equal(t, f.d.id, res.Device)
	require.Equal(t, uint64(2), res.Reading.Seq)
	require.Equal(t, "Org1MSP", res.Owner)
	require.Equal(t, api.StatusActive, res.Status)
	require.Equal(t, f.d.signer.Public().Fingerprint(), res.KeyID)
	require.Equal(t, []string{"Org1MSP", "Org2MSP"}, res.Endorsers, "MAJORITY of two orgs")
	require.Equal(t, "telemetry:SubmitBatch", res.Function)
	require.Contains(t, res.Creator, "Org1MSP")

	// The online cross-check, against the other org's peer.
	cc, err := f.aud2.CheckReceipt(t.Context(), f.r, res)
	require.NoError(t, err)
	require.Equal(t, "VALID", cc.Transactions[res.TxID])
	require.Equal(t, "VALID", cc.Transactions[res.RecordTx])
	require.Equal(t, "Org2MSP", cc.Org)
}

func TestAPrivateDeviceGetsNoReceipt(t *testing.T) {
	f := setup(t)
	s, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	id := testnet.UniqueID(t, "priv")
	_, err = f.op1.EnrollDevice(t.Context(), api.EnrollRequest{ID: id, Type: "meter", PublicKey: s.Public().PEM(), Activate: true, Private: true})
	require.NoError(t, err)
	batch := []reading.Envelope{device{id: id, signer: s}.reading(t, 1, 1)}
	br, err := f.hub1.SubmitPrivateBatch(t.Context(), api.BatchRequest{Readings: batch})
	require.NoError(t, err)

	// Org1's index holds the reading, and gives no receipt material for it.
	ix := testnet.StartIndex(t, fabric, "Org1")
	ix.Sync(t)
	r, err := ix.Reading(t.Context(), id, 1)
	require.NoError(t, err)
	require.True(t, r.Private)
	require.Equal(t, br.BatchID, r.BatchTx)
	_, err = index.ReadingProof(t.Context(), ix, id, 1)
	require.ErrorContains(t, err, "gets no receipt")

	// A receipt made from the batch's readings does not verify, and says
	// why: the batch is private.
	rc, err := f.op1.ReadingReceipt(t.Context(), proofOf(t, br.BatchID, batch, 0))
	if err == nil {
		_, err = receipt.Verify(marshal(t, rc), f.anchor)
	}
	require.Error(t, err)
	require.Contains(t, strings.ToLower(err.Error()), "private", "error: %v", err)
}

func TestReceiptsOutliveRotationAndRevocationAndProveTheRevocation(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	d := enroll(t, f.op1, reading.ECDSAP256)
	ix := testnet.StartIndex(t, fabric, "Org1")
	_, err := f.hub1.SubmitBatch(ctx, api.BatchRequest{Readings: []reading.Envelope{d.reading(t, 1, 1)}})
	require.NoError(t, err)
	ix.Sync(t)
	before, err := f.op1.ReadingReceipt(ctx, indexedProof(t, ix, d.id, 1))
	require.NoError(t, err)

	rotated, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	_, err = f.op1.RotateDeviceKey(ctx, d.id, rotated.Public().PEM())
	require.NoError(t, err)
	testnet.Settle(ctx, t, fabric)
	old := d
	d.signer = rotated
	br, err := f.hub1.SubmitBatch(ctx, api.BatchRequest{Readings: []reading.Envelope{d.reading(t, 2, 2)}})
	require.NoError(t, err)
	ix.Sync(t)
	after, err := f.op1.ReadingReceipt(ctx, indexedProof(t, ix, d.id, 2))
	require.NoError(t, err)

	_, err = f.op1.SetDeviceStatus(ctx, d.id, api.StatusRevoked, "key leaked")
	require.NoError(t, err)
	testnet.Settle(ctx, t, fabric)

	res, err := receipt.Verify(marshal(t, before), f.anchor)
	require.NoError(t, err, "a later rotation and revocation do not touch an older receipt")
	require.Equal(t, 1, res.KeyVersion)
	require.Equal(t, old.signer.Public().Fingerprint(), res.KeyID)
	res, err = receipt.Verify(marshal(t, after), f.anchor)
	require.NoError(t, err)
	require.Equal(t, 2, res.KeyVersion)

	revoked, err := f.op1.DeviceReceipt(ctx, d.id, "")
	require.NoError(t, err)
	res, err = receipt.Verify(marshal(t, revoked), f.anchor)
	require.NoError(t, err)
	require.Equal(t, receipt.KindDeviceStatus, res.Kind)
	require.Equal(t, api.StatusRevoked, res.Status)
	require.Equal(t, "key leaked", res.StatusNote)
	require.Equal(t, "device:Revoke", res.Function)
	t.Logf("device %s was revoked at block %d (transaction %s)", d.id, res.Block, res.TxID)

	// A reading signed after the revocation never commits, so it has no receipt.
	late := []reading.Envelope{d.reading(t, 3, 3)}
	_, err = f.hub1.SubmitBatch(ctx, api.BatchRequest{Readings: late})
	requireCode(t, err, api.CodeDeviceInactive)
	ix.Sync(t)
	_, err = ix.Reading(ctx, d.id, 3)
	require.ErrorIs(t, err, index.ErrNotFound, "the index holds no reading 3")
	// Claimed to be in the batch of reading 2, it does not verify.
	forged, err := f.op1.ReadingReceipt(ctx, proofOf(t, br.BatchID, late, 0))
	if err == nil {
		_, err = receipt.Verify(marshal(t, forged), f.anchor)
	}
	require.Error(t, err)
}

func TestACommandAckReceiptProvesWhatTheDeviceAnswered(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	d := enroll(t, f.op1, reading.Ed25519)
	cmds, err := f.op1.SendCommand(ctx, api.CommandRequest{Device: d.id, Name: "reboot"})
	require.NoError(t, err)
	id := cmds[0].ID
	_, err = f.hub1.MarkCommandDelivered(ctx, id)
	require.NoError(t, err)
	payload, err := json.Marshal(api.AckPayload{Device: d.id, Command: id, Status: api.CommandAcked, Result: "rebooted in 4 s", Ts: time.Now().UnixMilli()})
	require.NoError(t, err)
	sig, err := d.signer.Sign(reading.DomainAck, payload)
	require.NoError(t, err)
	_, err = f.hub1.AckCommand(ctx, reading.Envelope{Payload: payload, Signature: sig})
	require.NoError(t, err)
	testnet.Settle(ctx, t, fabric)

	r, err := f.op1.CommandAckReceipt(ctx, id)
	require.NoError(t, err)
	res, err := receipt.Verify(marshal(t, r), f.anchor)
	require.NoError(t, err)
	require.Equal(t, receipt.KindCommandAck, res.Kind)
	require.Equal(t, api.CommandAcked, res.Ack.Status)
	require.Equal(t, "rebooted in 4 s", res.Ack.Result)
	require.Equal(t, "command:Ack", res.Function)
	cc, err := f.aud2.CheckReceipt(ctx, r, res)
	require.NoError(t, err)
	require.Equal(t, "VALID", cc.Transactions[res.TxID])
}

func requireCode(t *testing.T, err error, code api.Code) {
	t.Helper()
	require.Error(t, err)
	var te *client.TransactionError
	require.ErrorAs(t, err, &te)
	require.Equal(t, code, te.Code, te.Message)
}

// node material: where the forger finds keys.
func ordererSigner(t *testing.T) signer {
	dirs, err := filepath.Glob(filepath.Join(fabric.StateDir(), "crypto", "ordererOrganizations", "*", "orderers", "*", "msp"))
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	slices.Sort(dirs)
	return loadSigner(t, "OrdererMSP", dirs[0])
}

func peerSigner(t *testing.T, org string) signer {
	dirs, err := filepath.Glob(filepath.Join(fabric.StateDir(), "crypto", "peerOrganizations", "*", "peers", "*", "msp"))
	require.NoError(t, err)
	for _, d := range dirs {
		if filepath.Base(filepath.Dir(d))[len("peer0."):][:len(org)] == org {
			msp, err := fabric.MSPID(map[string]string{"org1": "Org1", "org2": "Org2"}[org])
			require.NoError(t, err)
			return loadSigner(t, msp, d)
		}
	}
	t.Fatalf("no peer of %s", org)
	return signer{}
}

func clientSigner(t *testing.T, org, identity string) signer {
	p, err := fabric.Profile(org)
	require.NoError(t, err)
	id := p.Identities[identity]
	cert, err := os.ReadFile(id.Cert)
	require.NoError(t, err)
	key, err := os.ReadFile(id.Key)
	require.NoError(t, err)
	return signer{mspID: id.MSPID, cert: cert, key: parseKey(t, key)}
}
