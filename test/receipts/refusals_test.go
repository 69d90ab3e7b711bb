package receipts_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset/kvrwset"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/receipt"
)

// refusal is a forged or tampered receipt and the step that must refuse it.
type refusal struct {
	name   string
	doc    []byte
	anchor receipt.Anchor
	step   receipt.Step
	reason string // in the Go verifier's message
}

// forgedReading signs a made-up reading with a key the ledger never saw.
func forgedReading(t *testing.T, device string) (payload, sig []byte) {
	t.Helper()
	s, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	v := 99.0
	env, err := s.SignReading(reading.Payload{Device: device, Seq: 2, Timestamp: 1, Values: []reading.Value{{Name: "power", Number: &v}}})
	require.NoError(t, err)
	return env.Payload, env.Signature
}

func (f *fixture) refusals(t *testing.T) []refusal {
	t.Helper()
	good := marshal(t, f.r)
	edit := func(fn func(r *receipt.Receipt)) []byte {
		c := *f.r
		rd := *f.r.Reading
		c.Reading = &rd
		fn(&c)
		return marshal(t, &c)
	}
	var out []refusal
	add := func(name string, doc []byte, step receipt.Step, reason string) {
		out = append(out, refusal{name: name, doc: doc, anchor: f.anchor, step: step, reason: reason})
	}

	// The proof `telemetry verify` used to accept: a fresh key signs a
	// made-up reading, the root is its own leaf, the key travels inside.
	payload, sig := forgedReading(t, f.d.id)
	leaf := reading.LeafHash(payload, sig)
	selfMade, err := json.Marshal(reading.Proof{BatchID: f.r.TxID, Root: leaf, Size: 1, Index: 0, Payload: payload, Signature: sig, PublicKey: "-----BEGIN PUBLIC KEY-----"})
	require.NoError(t, err)
	add("self-made proof", selfMade, receipt.StepFormat, "unknown field")
	add("forged reading, batch of one", edit(func(r *receipt.Receipt) {
		r.Reading.Payload, r.Reading.Signature = base64.StdEncoding.EncodeToString(payload), base64.StdEncoding.EncodeToString(sig)
		r.Reading.Size, r.Reading.Index, r.Reading.Path = 1, 0, []string{}
	}), receipt.StepSubject, "its committed record 3")
	add("forged reading in the real batch", edit(func(r *receipt.Receipt) {
		r.Reading.Payload, r.Reading.Signature = base64.StdEncoding.EncodeToString(payload), base64.StdEncoding.EncodeToString(sig)
	}), receipt.StepSubject, "is not in batch")
	add("reading moved to another leaf", edit(func(r *receipt.Receipt) { r.Reading.Index = 1 }), receipt.StepSubject, "is not in batch")

	other := f.anchor
	other.Genesis = strings.Repeat("0f", 32)
	out = append(out, refusal{"another network's anchor", good, other, receipt.StepAnchor, "another network"})
	otherCh := f.anchor
	otherCh.Channel = "elsewhere"
	out = append(out, refusal{"another channel's anchor", good, otherCh, receipt.StepAnchor, `channel "elsewhere"`})

	// The reading of one device presented as another's.
	// (with the other device's record block in the receipt, so the
	// verifier gets as far as the reading itself).
	add("another device", func() []byte {
		d2, err := f.op1.Device(t.Context(), f.d2.id)
		require.NoError(t, err)
		b2, err := f.op1.BlockByTxID(t.Context(), d2.UpdatedByTx)
		require.NoError(t, err)
		bs := receiptBlocks(t, f.r)
		if !slices.ContainsFunc(bs, func(b *common.Block) bool { return b.GetHeader().GetNumber() == b2.GetHeader().GetNumber() }) {
			for i := range b2.Metadata.Metadata {
				if i != int(common.BlockMetadataIndex_SIGNATURES) {
					b2.Metadata.Metadata[i] = nil
				}
			}
			bs = append(bs, b2)
			slices.SortFunc(bs, func(a, b *common.Block) int { return int(a.GetHeader().GetNumber()) - int(b.GetHeader().GetNumber()) })
		}
		c := setBlocks(t, f.r, bs)
		c.Device = f.d2.id
		return marshal(t, c)
	}(), receipt.StepSubject, "the reading is of device")

	// A block signed by a peer, not by an orderer of the channel.
	peer1 := peerSigner(t, "org1")
	add("block signed by a peer", func() []byte {
		bs := receiptBlocks(t, f.r)
		last := bs[len(bs)-1]
		resign(t, last, peer1)
		return marshal(t, setBlocks(t, f.r, bs))
	}(), receipt.StepBlocks, "is not signed as the channel requires")

	// Unsigned metadata: a validation flag a peer would add.
	add("unsigned metadata", func() []byte {
		bs := receiptBlocks(t, f.r)
		bs[len(bs)-1].Metadata.Metadata[common.BlockMetadataIndex_TRANSACTIONS_FILTER] = []byte{0}
		return marshal(t, setBlocks(t, f.r, bs))
	}(), receipt.StepBlocks, "no signature covers")

	// Org1 alone endorses (its hub and an orderer collude: both sign again).
	orderer, hub := ordererSigner(t), clientSigner(t, "Org1", "hub")
	subjectEdit := func(fn func(e *txEdit)) []byte {
		bs := receiptBlocks(t, f.r)
		for _, b := range bs {
			for i, raw := range b.GetData().GetData() {
				if i != txIndexIfAny(b, f.r.TxID) {
					continue
				}
				e := decodeTx(t, raw)
				fn(e)
				b.Data.Data[i] = e.encode(t, hub)
				resign(t, b, orderer)
			}
		}
		return marshal(t, setBlocks(t, f.r, bs))
	}
	add("one org's endorsement where MAJORITY needs two", subjectEdit(func(e *txEdit) {
		e.cap.Action.Endorsements = e.cap.Action.Endorsements[:1]
	}), receipt.StepTransaction, "MAJORITY")
	add("endorsed proposal swapped", subjectEdit(func(e *txEdit) {
		var cpp peer.ChaincodeProposalPayload
		require.NoError(t, proto.Unmarshal(e.cap.GetChaincodeProposalPayload(), &cpp))
		cpp.TransientMap = map[string][]byte{"x": []byte("y")}
		raw, err := proto.Marshal(&cpp)
		require.NoError(t, err)
		e.cap.ChaincodeProposalPayload = raw
	}), receipt.StepTransaction, "endorsers signed another proposal")
	add("batch root rewritten", subjectEdit(func(e *txEdit) {
		e.rewriteNamespace(t, f.r.Chaincode, func(kv *kvrwset.KVRWSet) {
			for _, w := range kv.GetWrites() {
				if strings.HasPrefix(w.GetKey(), "\x00batch\x00") {
					var b api.BatchRecord
					require.NoError(t, json.Unmarshal(w.GetValue(), &b))
					b.Root = reading.Hash(leaf)
					w.Value, _ = json.Marshal(b)
				}
			}
		})
		e.rewriteNamespace(t, f.r.Chaincode, func(*kvrwset.KVRWSet) {})
	}), receipt.StepTransaction, "MAJORITY")

	// A key the ledger never enrolled: the record in force rewritten to a
	// fresh key (the operator and an orderer sign again).
	operator := clientSigner(t, "Org1", "operator")
	fresh, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	add("a key the ledger never enrolled", func() []byte {
		bs := receiptBlocks(t, f.r)
		dev := "\x00dev\x00" + f.d.id + "\x00"
		for _, b := range bs[:len(bs)-1] { // the record's block precedes the batch's
			for i, raw := range b.GetData().GetData() {
				e := decodeTx(t, raw)
				touched := false
				e.rewriteNamespace(t, f.r.Chaincode, func(kv *kvrwset.KVRWSet) {
					for _, w := range kv.GetWrites() {
						if w.GetKey() == dev {
							var d api.Device
							require.NoError(t, json.Unmarshal(w.GetValue(), &d))
							d.PublicKey, d.KeyID = fresh.Public().PEM(), fresh.Public().Fingerprint()
							w.Value, _ = json.Marshal(d)
							touched = true
						}
					}
				})
				if touched {
					b.Data.Data[i] = e.encode(t, operator)
					resign(t, b, orderer)
				}
			}
		}
		return marshal(t, setBlocks(t, f.r, bs))
	}(), receipt.StepDevice, "not satisfied")
	add("the record's block left out", func() []byte {
		c := *f.r
		c.Blocks = c.Blocks[len(c.Blocks)-1:]
		return marshal(t, &c)
	}(), receipt.StepDevice, "which the receipt does not hold")

	// Framing nobody signs must not vary either.
	add("a block with an unknown field", func() []byte {
		c := *f.r
		raw, err := base64.StdEncoding.DecodeString(c.Blocks[0])
		require.NoError(t, err)
		raw = append(raw, 0xa2, 0x06, 0x01, 0x00) // field 100, 1 byte long
		c.Blocks = append([]string{base64.StdEncoding.EncodeToString(raw)}, c.Blocks[1:]...)
		return marshal(t, &c)
	}(), receipt.StepBlocks, "not canonical")
	add("genesis metadata filled in", func() []byte {
		c := *f.r
		raw, err := base64.StdEncoding.DecodeString(c.Config[0])
		require.NoError(t, err)
		var g common.Block
		require.NoError(t, proto.Unmarshal(raw, &g))
		g.Metadata.Metadata[common.BlockMetadataIndex_SIGNATURES] = []byte("anything")
		raw, err = proto.MarshalOptions{Deterministic: true}.Marshal(&g)
		require.NoError(t, err)
		c.Config = append([]string{base64.StdEncoding.EncodeToString(raw)}, c.Config[1:]...)
		return marshal(t, &c)
	}(), receipt.StepConfig, "nothing signs its metadata")
	add("action header not the transaction's", subjectEdit(func(e *txEdit) {
		var sh common.SignatureHeader
		require.NoError(t, proto.Unmarshal(e.tx.Actions[0].GetHeader(), &sh))
		sh.Nonce = append(sh.Nonce, 1)
		raw, err := proto.Marshal(&sh)
		require.NoError(t, err)
		e.tx.Actions[0].Header = raw
	}), receipt.StepTransaction, "action's signature header")
	// A receipt of one kind about a transaction of another.
	add("reading receipt of the enrolment", func() []byte {
		d, err := f.op1.Device(t.Context(), f.d.id)
		require.NoError(t, err)
		c := *f.r
		c.TxID = d.UpdatedByTx
		return marshal(t, &c)
	}(), receipt.StepDevice, "when it did not exist")
	add("device-status receipt of a batch", func() []byte {
		c := *f.r
		c.Kind, c.Reading = receipt.KindDeviceStatus, nil
		return marshal(t, &c)
	}(), receipt.StepSubject, "does not write device")

	// Strict JSON.
	add("a null field", bytes.Replace(good, []byte(`"kind": "reading",`), []byte(`"kind": "reading", "command": null,`), 1), receipt.StepFormat, "null at")
	add("base64 with a line break", func() []byte {
		i := bytes.Index(good, []byte(`"payload": "`)) + len(`"payload": "`) + 8
		return append(append(append([]byte(nil), good[:i]...), []byte(`\n`)...), good[i:]...)
	}(), receipt.StepFormat, "line break")
	add("duplicate key", bytes.Replace(good, []byte(`"kind": "reading",`), []byte(`"kind": "reading", "kind": "device-status",`), 1), receipt.StepFormat, "duplicate key")
	add("case-variant key", bytes.Replace(good, []byte(`"txId"`), []byte(`"TxId"`), 1), receipt.StepFormat, "case-sensitive")
	add("trailing data", append(append([]byte(nil), good...), []byte(`{}`)...), receipt.StepFormat, "trailing data")
	return out
}

// txIndexIfAny is the position of a transaction in a block, or -1.
func txIndexIfAny(b *common.Block, txID string) int {
	for i, raw := range b.GetData().GetData() {
		var env common.Envelope
		var p common.Payload
		var ch common.ChannelHeader
		if proto.Unmarshal(raw, &env) != nil || proto.Unmarshal(env.GetPayload(), &p) != nil || proto.Unmarshal(p.GetHeader().GetChannelHeader(), &ch) != nil {
			continue
		}
		if ch.GetTxId() == txID {
			return i
		}
	}
	return -1
}

func TestForgedAndTamperedReceiptsAreRefusedAtTheRightStep(t *testing.T) {
	f := setup(t)
	for _, rc := range f.refusals(t) {
		t.Run(rc.name, func(t *testing.T) {
			_, err := receipt.Verify(rc.doc, rc.anchor)
			require.Error(t, err)
			var re *receipt.Error
			require.ErrorAs(t, err, &re, err.Error())
			require.Equal(t, rc.step, re.Step, err.Error())
			require.ErrorContains(t, err, rc.reason)
			t.Log(err)
		})
	}
}

func TestOneOrgsEndorsementOfARealBlockIsRefused(t *testing.T) {
	// Not forged: Org1's hub sends a batch to Org1's peer alone; the
	// orderers put it in a block, the peers mark it invalid. Offline, the
	// receipt of that transaction must not verify.
	f := setup(t)
	lone := connect(t, "Org1", "hub", client.WithEndorsingOrganizations("Org1MSP"), client.WithRetry(1, 0))
	env := f.d.reading(t, 10, 1)
	_, err := lone.SubmitBatch(t.Context(), api.BatchRequest{Readings: []reading.Envelope{env}})
	var te *client.TransactionError
	require.ErrorAs(t, err, &te)
	require.Equal(t, "ENDORSEMENT_POLICY_FAILURE", te.ValidationCode)
	r, err := receipt.Build(t.Context(), f.op1BlockSource(), receipt.Request{
		Kind: receipt.KindReading, Channel: fabric.Channel(), Chaincode: f.r.Chaincode, Device: f.d.id, TxID: te.TxID,
		Reading: &reading.Proof{BatchID: te.TxID, Size: 1, Index: 0, Payload: env.Payload, Signature: env.Signature},
	})
	require.NoError(t, err)
	_, err = receipt.Verify(marshal(t, r), f.anchor)
	var re *receipt.Error
	require.ErrorAs(t, err, &re)
	require.Equal(t, receipt.StepTransaction, re.Step)
	require.ErrorContains(t, err, "MAJORITY")
}

func (f *fixture) op1BlockSource() receipt.Source { return f.op1 }

func TestEveryFlippedByteIsRefused(t *testing.T) {
	f := setup(t)
	good := marshal(t, f.r)
	// Every byte outside the long base64 strings, and a spread of bytes
	// inside them (each block is covered by hashes and signatures end to end).
	var positions []int
	inLong, start := false, 0
	for i := 0; i < len(good); i++ {
		if good[i] == '"' {
			if inLong {
				inLong = false
			} else if j := bytes.IndexByte(good[i+1:], '"'); j > 200 {
				inLong, start = true, i
			}
		}
		if !inLong || (i-start)%97 == 0 {
			positions = append(positions, i)
		}
	}
	t.Logf("%d of %d bytes flipped one at a time", len(positions), len(good))
	for _, i := range positions {
		doc := append([]byte(nil), good...)
		doc[i] ^= 0x01
		if _, err := receipt.Verify(doc, f.anchor); err == nil {
			t.Fatalf("a receipt with byte %d flipped (%q → %q) verified", i, good[i], doc[i])
		}
	}
}

// nodeVerifier runs test/receipt-node/verify.js, installing its one npm
// dependency from the lockfile the first time.
var npmOnce sync.Once

func nodeVerdict(t *testing.T, anchorPath, receiptPath string) (ok bool, step, out string) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "receipt-node"))
	require.NoError(t, err)
	npmOnce.Do(func() {
		if _, err := os.Stat(filepath.Join(dir, "node_modules")); err == nil {
			return
		}
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, "npm ci in %s: %s", dir, b)
	})
	cmd := exec.Command("node", filepath.Join(dir, "verify.js"), "--anchor", anchorPath, receiptPath)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && (!errors.As(err, &ee) || ee.ExitCode() != 1) {
		t.Fatalf("node verifier: %v: %s %s", err, stdout.String(), stderr.String())
	}
	var v struct {
		OK   bool   `json:"ok"`
		Step string `json:"step"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &v), "node verifier output: %s %s", stdout.String(), stderr.String())
	return v.OK, v.Step, stdout.String()
}

func TestTheNodeVerifierAgreesWithTheGoVerifier(t *testing.T) {
	f := setup(t)
	dir := t.TempDir()
	if d := os.Getenv("IOTLEDGER_RECEIPT_SAMPLES"); d != "" {
		require.NoError(t, os.MkdirAll(d, 0o755))
		dir = d
	}
	writeAnchor := func(name string, a receipt.Anchor) string {
		p := filepath.Join(dir, name)
		b, err := json.Marshal(a)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(p, b, 0o644))
		return p
	}
	anchorPath := writeAnchor("anchor.json", f.anchor)
	type sample struct {
		OK     bool   `json:"ok"`
		Step   string `json:"step,omitempty"`
		Anchor string `json:"anchor,omitempty"`
	}
	expected := map[string]sample{}
	files := map[string]string{}
	put := func(name string, doc []byte, a receipt.Anchor) {
		p := filepath.Join(dir, name+".json")
		require.NoError(t, os.WriteFile(p, doc, 0o644))
		_, err := receipt.Verify(doc, a)
		s := sample{OK: err == nil}
		var re *receipt.Error
		if errors.As(err, &re) {
			s.Step = string(re.Step)
		}
		if a != f.anchor {
			s.Anchor = filepath.Base(writeAnchor(name+".anchor.json", a))
		}
		expected[name+".json"] = s
		files[name+".json"] = p
	}
	put("valid-reading", marshal(t, f.r), f.anchor)
	for _, k := range []struct{ name, device, tx string }{{"valid-device-enrolled", f.d.id, ""}} {
		r, err := f.op1.DeviceReceipt(t.Context(), k.device, k.tx)
		require.NoError(t, err)
		put(k.name, marshal(t, r), f.anchor)
	}
	for _, rc := range f.refusals(t) {
		put(strings.NewReplacer(" ", "-", "'", "", ",", "").Replace(strings.ToLower(rc.name)), rc.doc, rc.anchor)
	}
	good := marshal(t, f.r)
	for _, i := range []int{10, 200, len(good) / 3, len(good) / 2, len(good) - 300} {
		doc := append([]byte(nil), good...)
		doc[i] ^= 0x01
		put("flipped-byte-"+hex.EncodeToString([]byte{byte(i >> 16), byte(i >> 8), byte(i)}), doc, f.anchor)
	}
	b, err := json.MarshalIndent(expected, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "expected.json"), b, 0o644))
	if _, err := os.Stat(filepath.Join("..", "receipt-node", "verify.js")); err != nil {
		t.Fatalf("the node verifier is missing: %v", err)
	}
	for name, want := range expected {
		t.Run(name, func(t *testing.T) {
			ap := anchorPath
			if want.Anchor != "" {
				ap = filepath.Join(dir, want.Anchor)
			}
			ok, step, out := nodeVerdict(t, ap, files[name])
			require.Equal(t, want.OK, ok, out)
			require.Equal(t, want.Step, step, out)
		})
	}
}
