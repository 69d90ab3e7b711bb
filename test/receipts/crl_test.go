package receipts_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
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

// withOrg1CRL is a config block after the newest of r's configuration (the
// next sequence, number n, signed by an orderer) that adds crl to the
// revocation list of Org1's MSP: an update Org1's admin did not sign,
// which only a receipt's forger, holding an orderer's key, can make. The
// verifiers check a config block's orderer signatures, not its update's.
func withOrg1CRL(t *testing.T, r *receipt.Receipt, n uint64, crl []byte) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(r.Config[len(r.Config)-1])
	require.NoError(t, err)
	b := &common.Block{}
	require.NoError(t, proto.Unmarshal(raw, b))
	env := &common.Envelope{}
	require.NoError(t, proto.Unmarshal(b.GetData().GetData()[0], env))
	payload := &common.Payload{}
	require.NoError(t, proto.Unmarshal(env.GetPayload(), payload))
	ce := &common.ConfigEnvelope{}
	require.NoError(t, proto.Unmarshal(payload.GetData(), ce))
	ce.Config.Sequence++
	mspID, err := fabric.MSPID("Org1")
	require.NoError(t, err)
	found := false
	for _, g := range ce.GetConfig().GetChannelGroup().GetGroups()["Application"].GetGroups() {
		mc := &msp.MSPConfig{}
		require.NoError(t, proto.Unmarshal(g.GetValues()["MSP"].GetValue(), mc))
		fc := &msp.FabricMSPConfig{}
		require.NoError(t, proto.Unmarshal(mc.GetConfig(), fc))
		if fc.GetName() != mspID {
			continue
		}
		fc.RevocationList = append(fc.RevocationList, crl)
		mc.Config = mustMarshal(t, fc)
		g.Values["MSP"].Value = mustMarshal(t, mc)
		found = true
	}
	require.True(t, found, "Org1's MSP is in the configuration")
	payload.Data = mustMarshal(t, ce)
	env.Payload = mustMarshal(t, payload)
	b.Data.Data = [][]byte{mustMarshal(t, env)}
	b.Header.Number = n
	md := &common.Metadata{}
	require.NoError(t, proto.Unmarshal(b.GetMetadata().GetMetadata()[common.BlockMetadataIndex_SIGNATURES], md))
	md.Value = mustMarshal(t, &common.OrdererBlockMetadata{LastConfig: &common.LastConfig{Index: n}})
	b.Metadata.Metadata[common.BlockMetadataIndex_SIGNATURES] = mustMarshal(t, md)
	resign(t, b, ordererSigner(t))
	return base64.StdEncoding.EncodeToString(mustMarshal(t, b))
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	return b
}

func parseCertPEM(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(certPEM)
	require.NotNil(t, blk)
	cert, err := x509.ParseCertificate(blk.Bytes)
	require.NoError(t, err)
	return cert
}

// crlOf is a PEM CRL of ca, signed with key, revoking cert.
func crlOf(t *testing.T, ca *x509.Certificate, key *ecdsa.PrivateKey, cert *x509.Certificate) []byte {
	t.Helper()
	now := time.Now()
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: cert.SerialNumber, RevocationTime: now}}}, ca, key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl})
}

// rogueCRL is a CRL revoking cert, signed by a fresh key under a CA
// certificate that copies the subject of cert's issuer: a CRL that names
// the org's CA and that no CA of the MSP signed.
func rogueCRL(t *testing.T, certPEM []byte) []byte {
	t.Helper()
	cert := parseCertPEM(t, certPEM)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: cert.Issuer, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: []byte("rogue")}
	caDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	return crlOf(t, ca, key, cert)
}

// orgCACRL is a CRL revoking cert signed by Org1's own CA (the cryptogen
// CA key its Fabric CA signs with).
func orgCACRL(t *testing.T, certPEM []byte) []byte {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(fabric.StateDir(), "crypto", "peerOrganizations", "org1.*", "ca"))
	require.NoError(t, err)
	require.Len(t, dirs, 1)
	certs, err := filepath.Glob(filepath.Join(dirs[0], "*-cert.pem"))
	require.NoError(t, err)
	require.Len(t, certs, 1)
	caPEM, err := os.ReadFile(certs[0])
	require.NoError(t, err)
	keyPEM, err := os.ReadFile(filepath.Join(dirs[0], "priv_sk"))
	require.NoError(t, err)
	return crlOf(t, parseCertPEM(t, caPEM), parseKey(t, keyPEM), parseCertPEM(t, certPEM))
}

// After an org revokes one of its identities (its CA's CRL in the org's
// channel MSP), the Go and the JavaScript verifier still agree on every
// receipt: receipts of identities not revoked verify, a receipt made before
// the revocation still verifies, and a transaction of the revoked identity
// that orderers put in a block after the revocation is refused by both, at
// step transaction, for the CRL. In a configuration forged with an
// orderer's key, a CRL that only names Org1's CA revokes nothing in both,
// one Org1's CA signed revokes in both, and one that does not parse
// refuses the configuration in both.
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
	name := testnet.UniqueID(t, "crl-hub")
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
	t.Run("a CRL no CA of the MSP signed revokes nothing, the org CA's does, one that does not parse refuses the configuration", func(t *testing.T) {
		// A forged config block adds to Org1's MSP a CRL revoking the kept
		// hub, signed by a key that only copies the name of the hub's CA.
		hub := clientSigner(t, "Org1", "hub")
		rogue := append(slices.Clone(after.Config), withOrg1CRL(t, after, newest+1, rogueCRL(t, hub.cert)))
		requireAgree(t, orderedAgain(t, f.r, rogue, newest+2, newest+1), true, "", "")
		// The same forgery with a CRL Org1's CA signed revokes the hub in both.
		signed := append(slices.Clone(after.Config), withOrg1CRL(t, after, newest+1, orgCACRL(t, hub.cert)))
		requireAgree(t, orderedAgain(t, f.r, signed, newest+2, newest+1), false, string(receipt.StepTransaction), "is revoked by a CRL")
		broken := append(slices.Clone(after.Config), withOrg1CRL(t, after, newest+1, []byte("-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n")))
		requireAgree(t, orderedAgain(t, f.r, broken, newest+2, newest+1), false, string(receipt.StepConfig), "revocation")
	})
}
