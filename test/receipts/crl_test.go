package receipts_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/receipt"
	"github.com/iotledger/iotledger/test/testnet"
)

// verdict is what a verifier decided of a receipt: valid, or the step of
// docs/receipts.md §3 that refused it and why.
type verdict struct {
	ok   bool
	step string
	msg  string
}

// bothVerdicts runs the Go verifier and the node verifier (the module the
// console's page runs) on one receipt.
func bothVerdicts(t *testing.T, r *receipt.Receipt, a receipt.Anchor, anchorPath string) (goV, jsV verdict) {
	t.Helper()
	doc := marshal(t, r)
	_, err := receipt.Verify(doc, a)
	goV.ok = err == nil
	if err != nil {
		var re *receipt.Error
		require.ErrorAs(t, err, &re, err.Error())
		goV.step, goV.msg = string(re.Step), err.Error()
	}
	p := filepath.Join(t.TempDir(), "receipt.json")
	require.NoError(t, os.WriteFile(p, doc, 0o644))
	jsV.ok, jsV.step, jsV.msg = nodeVerdict(t, anchorPath, p)
	return goV, jsV
}

// lastConfigOf is the number of the newest config block of a receipt.
func lastConfigOf(t *testing.T, r *receipt.Receipt) uint64 {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(r.Config[len(r.Config)-1])
	require.NoError(t, err)
	var b common.Block
	require.NoError(t, proto.Unmarshal(raw, &b))
	return b.GetHeader().GetNumber()
}

// orderedAgain is r with its subject transaction's block renumbered to
// number, naming config block lastConfig and signed again by an orderer,
// and with config as its configuration chain: what the orderers would have
// signed had they ordered that transaction then. Only the signatures of the
// block change; the transaction is byte for byte the one that committed.
func orderedAgain(t *testing.T, r *receipt.Receipt, config []string, number, lastConfig uint64) *receipt.Receipt {
	t.Helper()
	bs := receiptBlocks(t, r)
	k := slices.IndexFunc(bs, func(b *common.Block) bool { return txIndexIfAny(b, r.TxID) >= 0 })
	require.GreaterOrEqual(t, k, 0, "the subject's block is in the receipt")
	b := proto.Clone(bs[k]).(*common.Block)
	b.Header.Number = number
	var md common.Metadata
	require.NoError(t, proto.Unmarshal(b.GetMetadata().GetMetadata()[common.BlockMetadataIndex_SIGNATURES], &md))
	var obm common.OrdererBlockMetadata
	require.NoError(t, proto.Unmarshal(md.GetValue(), &obm))
	obm.LastConfig = &common.LastConfig{Index: lastConfig}
	var err error
	md.Value, err = proto.Marshal(&obm)
	require.NoError(t, err)
	b.Metadata.Metadata[common.BlockMetadataIndex_SIGNATURES], err = proto.Marshal(&md)
	require.NoError(t, err)
	resign(t, b, ordererSigner(t))
	bs = append(slices.Delete(slices.Clone(bs), k, k+1), b)
	slices.SortFunc(bs, func(x, y *common.Block) int { return int(x.GetHeader().GetNumber()) - int(y.GetHeader().GetNumber()) })
	c := setBlocks(t, r, bs)
	c.Config = slices.Clone(config)
	return c
}

// After an org revokes one of its identities (its CA's CRL in the org's
// channel MSP), the Go and the JavaScript verifier still agree on every
// receipt: receipts of identities not revoked verify, a receipt made before
// the revocation still verifies, and a transaction of the revoked identity
// that orderers put in a block after the revocation is refused by both, at
// step transaction, for the CRL.
func TestAfterARevocationBothVerifiersAgreeAndRefuseTheRevokedIdentity(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	dir := t.TempDir()
	anchorPath := filepath.Join(dir, "anchor.json")
	ab, err := json.Marshal(f.anchor)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(anchorPath, ab, 0o644))
	requireAgree := func(t *testing.T, r *receipt.Receipt, wantOK bool, wantStep, wantReason string) {
		t.Helper()
		goV, jsV := bothVerdicts(t, r, f.anchor, anchorPath)
		require.Equal(t, wantOK, goV.ok, "Go: %s", goV.msg)
		require.Equal(t, wantOK, jsV.ok, "JavaScript: %s", jsV.msg)
		require.Equal(t, wantStep, goV.step, "Go: %s", goV.msg)
		require.Equal(t, wantStep, jsV.step, "JavaScript: %s", jsV.msg)
		require.Contains(t, goV.msg, wantReason)
		require.Contains(t, jsV.msg, wantReason)
	}

	// A hub of Org1 that submits a batch, and is then revoked.
	name := uniqueID(t, "crl-hub")
	_, err = fabric.EnrollIdentity(ctx, "Org1", name, map[string]string{network.RoleAttribute: "hub"})
	require.NoError(t, err)
	doomed := connect(t, "Org1", name)
	d := enroll(t, f.op1, reading.ECDSAP256)
	early := []reading.Envelope{d.reading(t, 1, 1)}
	br, err := doomed.SubmitBatch(ctx, api.BatchRequest{Readings: early})
	require.NoError(t, err)
	testnet.Settle(ctx, t, fabric)
	before, err := f.op1.ReadingReceipt(ctx, proofOf(t, br.BatchID, early, 0))
	require.NoError(t, err)

	rev, err := fabric.RevokeIdentity(ctx, "Org1", name, "keycompromise")
	require.NoError(t, err)
	require.NotNil(t, rev.Update, "the CRL went into Org1's channel MSP")
	testnet.Settle(ctx, t, fabric)

	// The kept hub's batch after the revocation: its receipt carries the
	// configuration with the CRL.
	late := []reading.Envelope{d.reading(t, 2, 2)}
	br2, err := f.hub1.SubmitBatch(ctx, api.BatchRequest{Readings: late})
	require.NoError(t, err)
	testnet.Settle(ctx, t, fabric)
	after, err := f.op1.ReadingReceipt(ctx, proofOf(t, br2.BatchID, late, 0))
	require.NoError(t, err)
	crlConfig := lastConfigOf(t, after)
	require.GreaterOrEqual(t, crlConfig, rev.Update.Block, "the receipt's configuration holds the CRL")
	blocks := receiptBlocks(t, after)
	newest := blocks[len(blocks)-1].GetHeader().GetNumber()

	t.Run("a receipt of an identity not revoked verifies", func(t *testing.T) {
		requireAgree(t, after, true, "", "")
	})
	t.Run("a device record written after the revocation verifies", func(t *testing.T) {
		d2 := enroll(t, f.op1, reading.Ed25519)
		r, err := f.op1.DeviceReceipt(ctx, d2.id, "")
		require.NoError(t, err)
		requireAgree(t, r, true, "", "")
	})
	t.Run("a receipt of the revoked identity's earlier transaction still verifies", func(t *testing.T) {
		requireAgree(t, before, true, "", "")
		// With the configuration chain up to the CRL: a receipt speaks of its own block.
		c := *before
		c.Config = slices.Clone(after.Config)
		requireAgree(t, &c, true, "", "")
	})
	t.Run("the revoked identity's transaction in a block after the revocation is refused", func(t *testing.T) {
		forged := orderedAgain(t, before, after.Config, newest+1, crlConfig)
		requireAgree(t, forged, false, string(receipt.StepTransaction), "is revoked by a CRL")
		// The same forgery of a transaction by an identity not revoked verifies:
		// the CRL refuses it, nothing else.
		control := orderedAgain(t, f.r, after.Config, newest+1, crlConfig)
		requireAgree(t, control, true, "", "")
	})
}
