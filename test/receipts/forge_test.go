package receipts_test

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset/kvrwset"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/iotledger/iotledger/receipt"
)

// This file is the forger's kit: it rewrites the blocks of a real receipt
// and signs them again with keys a hostile party may hold (an orderer's, a
// peer's, a client's), so each test shows which check catches what.

// signer is an MSP identity with its private key.
type signer struct {
	mspID string
	cert  []byte
	key   *ecdsa.PrivateKey
}

// loadSigner reads the signing identity of a node of the network.
func loadSigner(t *testing.T, mspID, mspDir string) signer {
	t.Helper()
	certs, err := filepath.Glob(filepath.Join(mspDir, "signcerts", "*.pem"))
	require.NoError(t, err)
	require.Len(t, certs, 1, mspDir)
	cert, err := os.ReadFile(certs[0])
	require.NoError(t, err)
	keyPEM, err := os.ReadFile(filepath.Join(mspDir, "keystore", "priv_sk"))
	require.NoError(t, err)
	return signer{mspID: mspID, cert: cert, key: parseKey(t, keyPEM)}
}

func parseKey(t *testing.T, keyPEM []byte) *ecdsa.PrivateKey {
	t.Helper()
	blk, _ := pem.Decode(keyPEM)
	require.NotNil(t, blk)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	require.NoError(t, err)
	return k.(*ecdsa.PrivateKey)
}

func (s signer) identity(t *testing.T) []byte {
	t.Helper()
	b, err := proto.Marshal(&msp.SerializedIdentity{Mspid: s.mspID, IdBytes: s.cert})
	require.NoError(t, err)
	return b
}

// sign makes a low-S ECDSA signature over SHA-256, as Fabric does.
func (s signer) sign(t *testing.T, msg []byte) []byte {
	t.Helper()
	d := sha256.Sum256(msg)
	r, sv, err := ecdsa.Sign(rand.Reader, s.key, d[:])
	require.NoError(t, err)
	n := s.key.Curve.Params().N
	if sv.Cmp(new(big.Int).Rsh(n, 1)) > 0 {
		sv.Sub(n, sv)
	}
	der, err := asn1.Marshal(struct{ R, S *big.Int }{r, sv})
	require.NoError(t, err)
	return der
}

func headerDER(h *common.BlockHeader) []byte {
	der, _ := asn1.Marshal(struct {
		Number       *big.Int
		PreviousHash []byte
		DataHash     []byte
	}{new(big.Int).SetUint64(h.GetNumber()), h.GetPreviousHash(), h.GetDataHash()})
	return der
}

// resign recomputes a block's data hash and replaces its orderer
// signatures with one by s.
func resign(t *testing.T, b *common.Block, s signer) {
	t.Helper()
	var joined []byte
	for _, d := range b.GetData().GetData() {
		joined = append(joined, d...)
	}
	sum := sha256.Sum256(joined)
	b.Header.DataHash = sum[:]
	var md common.Metadata
	require.NoError(t, proto.Unmarshal(b.GetMetadata().GetMetadata()[common.BlockMetadataIndex_SIGNATURES], &md))
	sh, err := proto.Marshal(&common.SignatureHeader{Creator: s.identity(t), Nonce: []byte("forged-nonce-000")})
	require.NoError(t, err)
	msg := append(append(append([]byte(nil), md.GetValue()...), sh...), headerDER(b.GetHeader())...)
	md.Signatures = []*common.MetadataSignature{{SignatureHeader: sh, Signature: s.sign(t, msg)}}
	raw, err := proto.Marshal(&md)
	require.NoError(t, err)
	b.Metadata.Metadata[common.BlockMetadataIndex_SIGNATURES] = raw
}

// txEdit is a decoded endorser transaction to rewrite.
type txEdit struct {
	env     *common.Envelope
	payload *common.Payload
	tx      *peer.Transaction
	cap     *peer.ChaincodeActionPayload
	prp     *peer.ProposalResponsePayload
	action  *peer.ChaincodeAction
	rws     *rwset.TxReadWriteSet
}

func decodeTx(t *testing.T, raw []byte) *txEdit {
	t.Helper()
	e := &txEdit{env: &common.Envelope{}, payload: &common.Payload{}, tx: &peer.Transaction{}, cap: &peer.ChaincodeActionPayload{},
		prp: &peer.ProposalResponsePayload{}, action: &peer.ChaincodeAction{}, rws: &rwset.TxReadWriteSet{}}
	require.NoError(t, proto.Unmarshal(raw, e.env))
	require.NoError(t, proto.Unmarshal(e.env.GetPayload(), e.payload))
	require.NoError(t, proto.Unmarshal(e.payload.GetData(), e.tx))
	require.NoError(t, proto.Unmarshal(e.tx.GetActions()[0].GetPayload(), e.cap))
	require.NoError(t, proto.Unmarshal(e.cap.GetAction().GetProposalResponsePayload(), e.prp))
	require.NoError(t, proto.Unmarshal(e.prp.GetExtension(), e.action))
	require.NoError(t, proto.Unmarshal(e.action.GetResults(), e.rws))
	return e
}

// rewriteNamespace lets f change the chaincode's KV read-write set.
func (e *txEdit) rewriteNamespace(t *testing.T, ns string, f func(kv *kvrwset.KVRWSet)) {
	t.Helper()
	for _, n := range e.rws.GetNsRwset() {
		if n.GetNamespace() != ns {
			continue
		}
		var kv kvrwset.KVRWSet
		require.NoError(t, proto.Unmarshal(n.GetRwset(), &kv))
		f(&kv)
		raw, err := proto.Marshal(&kv)
		require.NoError(t, err)
		n.Rwset = raw
	}
}

// encode marshals the transaction back; the creator s signs the envelope
// again (a hostile submitter holds its own key).
func (e *txEdit) encode(t *testing.T, s signer) []byte {
	t.Helper()
	m := func(v proto.Message) []byte {
		b, err := proto.Marshal(v)
		require.NoError(t, err)
		return b
	}
	e.action.Results = m(e.rws)
	e.prp.Extension = m(e.action)
	e.cap.Action.ProposalResponsePayload = m(e.prp)
	e.tx.Actions[0].Payload = m(e.cap)
	e.payload.Data = m(e.tx)
	e.env.Payload = m(e.payload)
	e.env.Signature = s.sign(t, e.env.GetPayload())
	return m(e.env)
}

// receiptBlocks decodes a receipt's blocks for editing.
func receiptBlocks(t *testing.T, r *receipt.Receipt) []*common.Block {
	t.Helper()
	bs, err := r.DecodeBlocks()
	require.NoError(t, err)
	return bs
}

// setBlocks writes edited blocks back into a copy of the receipt.
func setBlocks(t *testing.T, r *receipt.Receipt, bs []*common.Block) *receipt.Receipt {
	t.Helper()
	c := *r
	c.Blocks = nil
	for _, b := range bs {
		raw, err := proto.Marshal(b)
		require.NoError(t, err)
		c.Blocks = append(c.Blocks, base64.StdEncoding.EncodeToString(raw))
	}
	return &c
}
