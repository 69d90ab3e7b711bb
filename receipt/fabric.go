package receipt

import (
	"bytes"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset/kvrwset"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"

	"github.com/iotledger/iotledger/receipt/trust"
)

// This file reads Fabric's block and transaction structures as
// docs/receipts.md §4 describes them. Bytes that are hashed or signed are
// kept as they are in the block, never re-encoded.

// headerBytes is the DER encoding Fabric hashes a block header with (§4.1).
func headerBytes(h *common.BlockHeader) []byte {
	der, err := asn1.Marshal(struct {
		Number       *big.Int
		PreviousHash []byte
		DataHash     []byte
	}{new(big.Int).SetUint64(h.GetNumber()), h.GetPreviousHash(), h.GetDataHash()})
	if err != nil {
		panic(err) // a big.Int and two byte strings always encode
	}
	return der
}

func headerHash(h *common.BlockHeader) []byte {
	s := sha256.Sum256(headerBytes(h))
	return s[:]
}

func checkDataHash(b *common.Block) error {
	s := sha256.Sum256(bytes.Join(b.GetData().GetData(), nil))
	if !bytes.Equal(s[:], b.GetHeader().GetDataHash()) {
		return fmt.Errorf("block %d: its data hash %x is not the hash of its transactions %x", b.GetHeader().GetNumber(), b.GetHeader().GetDataHash(), s[:])
	}
	return nil
}

// stripUnsigned empties the metadata no signature covers (§4.3).
func stripUnsigned(b *common.Block) *common.Block {
	c := proto.Clone(b).(*common.Block)
	md := c.GetMetadata().GetMetadata()
	for i := range md {
		// The genesis block is trusted through the anchor: none of its
		// metadata is signed.
		if i != int(common.BlockMetadataIndex_SIGNATURES) || c.GetHeader().GetNumber() == 0 {
			md[i] = nil
		}
	}
	return c
}

func checkNoUnsigned(b *common.Block) error {
	for i, m := range b.GetMetadata().GetMetadata() {
		if i != int(common.BlockMetadataIndex_SIGNATURES) && len(m) != 0 {
			return fmt.Errorf("block %d: metadata %s holds %d bytes that no signature covers (a receipt carries it empty)",
				b.GetHeader().GetNumber(), common.BlockMetadataIndex(i), len(m))
		}
	}
	return nil
}

// signatures are a block's orderer signatures and the config they name.
type signatures struct {
	lastConfig uint64
	signed     []trust.SignedData
}

func blockSignatures(b *common.Block) (*signatures, error) {
	n := b.GetHeader().GetNumber()
	md := b.GetMetadata().GetMetadata()
	if len(md) <= int(common.BlockMetadataIndex_SIGNATURES) || len(md[common.BlockMetadataIndex_SIGNATURES]) == 0 {
		return nil, fmt.Errorf("block %d carries no orderer signatures", n)
	}
	var m common.Metadata
	if err := proto.Unmarshal(md[common.BlockMetadataIndex_SIGNATURES], &m); err != nil {
		return nil, fmt.Errorf("block %d: signature metadata: %w", n, err)
	}
	var obm common.OrdererBlockMetadata
	if err := proto.Unmarshal(m.GetValue(), &obm); err != nil {
		return nil, fmt.Errorf("block %d: orderer block metadata: %w", n, err)
	}
	if obm.GetLastConfig() == nil {
		return nil, fmt.Errorf("block %d: its signed metadata names no config block", n)
	}
	hdr := headerBytes(b.GetHeader())
	s := &signatures{lastConfig: obm.GetLastConfig().GetIndex()}
	for i, ms := range m.GetSignatures() {
		var sh common.SignatureHeader
		if err := proto.Unmarshal(ms.GetSignatureHeader(), &sh); err != nil {
			return nil, fmt.Errorf("block %d: signature %d: header: %w", n, i, err)
		}
		data := make([]byte, 0, len(m.GetValue())+len(ms.GetSignatureHeader())+len(hdr))
		data = append(append(append(data, m.GetValue()...), ms.GetSignatureHeader()...), hdr...)
		s.signed = append(s.signed, trust.SignedData{Data: data, Identity: sh.GetCreator(), Signature: ms.GetSignature()})
	}
	if len(s.signed) == 0 {
		return nil, fmt.Errorf("block %d carries no orderer signatures", n)
	}
	return s, nil
}

// payloadOf decodes an envelope's payload and its two headers.
func payloadOf(env *common.Envelope) (*common.Payload, *common.ChannelHeader, *common.SignatureHeader, error) {
	var p common.Payload
	if err := proto.Unmarshal(env.GetPayload(), &p); err != nil {
		return nil, nil, nil, fmt.Errorf("payload: %w", err)
	}
	var ch common.ChannelHeader
	if err := proto.Unmarshal(p.GetHeader().GetChannelHeader(), &ch); err != nil {
		return nil, nil, nil, fmt.Errorf("channel header: %w", err)
	}
	var sh common.SignatureHeader
	if err := proto.Unmarshal(p.GetHeader().GetSignatureHeader(), &sh); err != nil {
		return nil, nil, nil, fmt.Errorf("signature header: %w", err)
	}
	return &p, &ch, &sh, nil
}

// firstTxTime is the timestamp of a block's first transaction: the time a
// block's signatures are judged at.
func firstTxTime(b *common.Block) (time.Time, error) {
	data := b.GetData().GetData()
	if len(data) == 0 {
		return time.Time{}, fmt.Errorf("block %d holds no transaction", b.GetHeader().GetNumber())
	}
	var env common.Envelope
	if err := proto.Unmarshal(data[0], &env); err != nil {
		return time.Time{}, fmt.Errorf("block %d: transaction 0: %w", b.GetHeader().GetNumber(), err)
	}
	_, ch, _, err := payloadOf(&env)
	if err != nil {
		return time.Time{}, fmt.Errorf("block %d: transaction 0: %w", b.GetHeader().GetNumber(), err)
	}
	return ch.GetTimestamp().AsTime(), nil
}

// configBlock is a decoded config block.
type configBlock struct {
	number  uint64
	channel string
	config  *common.Config
	time    time.Time
}

func configOf(b *common.Block) (*configBlock, error) {
	n := b.GetHeader().GetNumber()
	data := b.GetData().GetData()
	if len(data) != 1 {
		return nil, fmt.Errorf("block %d holds %d transactions; a config block holds one", n, len(data))
	}
	var env common.Envelope
	if err := proto.Unmarshal(data[0], &env); err != nil {
		return nil, fmt.Errorf("block %d: envelope: %w", n, err)
	}
	p, ch, _, err := payloadOf(&env)
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", n, err)
	}
	if common.HeaderType(ch.GetType()) != common.HeaderType_CONFIG {
		return nil, fmt.Errorf("block %d is not a config block (its transaction is of type %s)", n, common.HeaderType(ch.GetType()))
	}
	var ce common.ConfigEnvelope
	if err := proto.Unmarshal(p.GetData(), &ce); err != nil {
		return nil, fmt.Errorf("block %d: config envelope: %w", n, err)
	}
	if ce.GetConfig().GetChannelGroup() == nil {
		return nil, fmt.Errorf("block %d: the config envelope holds no channel group", n)
	}
	return &configBlock{number: n, channel: ch.GetChannelId(), config: ce.GetConfig(), time: ch.GetTimestamp().AsTime()}, nil
}

// endorserTx is an endorser transaction as §4.5 reads it.
type endorserTx struct {
	block    uint64
	index    int
	txID     string
	time     time.Time
	creator  trust.SignedData // the envelope's signature by its creator
	function string
	args     [][]byte
	writes   map[string]*kvrwset.KVWrite // in the chaincode's namespace
	reads    map[string]*kvrwset.KVRead
	// sbe is the key-level endorsement policy (a SignaturePolicyEnvelope)
	// each key's metadata write sets; an empty value removes it.
	sbe     map[string][]byte
	written []string // keys written (value or metadata), in rwset order
	// collections the transaction wrote private data to (hashes in the
	// block), in rwset order
	collections []string
	// private are the hashed private writes: collection → hex SHA-256 of
	// the key → SHA-256 of the value (deletes left out).
	private  map[string]map[string][]byte
	endorsed []trust.SignedData
	event    *peer.ChaincodeEvent // the endorsed chaincode event, if any
}

// findTx returns envelope index i of block b; want, when not empty, is the
// transaction ID it must have.
func parseEndorserTx(b *common.Block, i int, channel, chaincode string) (*endorserTx, error) {
	data := b.GetData().GetData()
	if i < 0 || i >= len(data) {
		return nil, fmt.Errorf("block %d has no transaction %d (it holds %d)", b.GetHeader().GetNumber(), i, len(data))
	}
	var env common.Envelope
	if err := proto.Unmarshal(data[i], &env); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	p, ch, sh, err := payloadOf(&env)
	if err != nil {
		return nil, err
	}
	if common.HeaderType(ch.GetType()) != common.HeaderType_ENDORSER_TRANSACTION {
		return nil, fmt.Errorf("it is a %s transaction, not an endorser transaction", common.HeaderType(ch.GetType()))
	}
	if ch.GetChannelId() != channel {
		return nil, fmt.Errorf("it is a transaction of channel %q, not %q", ch.GetChannelId(), channel)
	}
	sum := sha256.Sum256(append(append([]byte(nil), sh.GetNonce()...), sh.GetCreator()...))
	if want := hex.EncodeToString(sum[:]); ch.GetTxId() != want {
		return nil, fmt.Errorf("its transaction ID %q is not the hash of its nonce and creator (%s)", ch.GetTxId(), want)
	}
	if ch.GetTimestamp() == nil {
		return nil, errors.New("its channel header has no timestamp")
	}
	tx := &endorserTx{
		block: b.GetHeader().GetNumber(), index: i, txID: ch.GetTxId(), time: ch.GetTimestamp().AsTime(),
		creator: trust.SignedData{Data: env.GetPayload(), Identity: sh.GetCreator(), Signature: env.GetSignature()},
	}
	var t peer.Transaction
	if err := proto.Unmarshal(p.GetData(), &t); err != nil {
		return nil, fmt.Errorf("transaction: %w", err)
	}
	if len(t.GetActions()) != 1 {
		return nil, fmt.Errorf("it has %d actions; an endorser transaction of this chaincode has one", len(t.GetActions()))
	}
	var cap peer.ChaincodeActionPayload
	if err := proto.Unmarshal(t.GetActions()[0].GetPayload(), &cap); err != nil {
		return nil, fmt.Errorf("chaincode action payload: %w", err)
	}
	var cpp peer.ChaincodeProposalPayload
	if err := proto.Unmarshal(cap.GetChaincodeProposalPayload(), &cpp); err != nil {
		return nil, fmt.Errorf("chaincode proposal payload: %w", err)
	}
	var cis peer.ChaincodeInvocationSpec
	if err := proto.Unmarshal(cpp.GetInput(), &cis); err != nil {
		return nil, fmt.Errorf("chaincode invocation: %w", err)
	}
	if name := cis.GetChaincodeSpec().GetChaincodeId().GetName(); name != chaincode {
		return nil, fmt.Errorf("it invokes chaincode %q, not %q", name, chaincode)
	}
	tx.args = cis.GetChaincodeSpec().GetInput().GetArgs()
	if len(tx.args) == 0 {
		return nil, errors.New("it names no function")
	}
	tx.function = string(tx.args[0])
	prp := cap.GetAction().GetProposalResponsePayload()
	var resp peer.ProposalResponsePayload
	if err := proto.Unmarshal(prp, &resp); err != nil {
		return nil, fmt.Errorf("proposal response payload: %w", err)
	}
	// Fabric hashes the proposal with the action's signature header; it
	// must be the transaction's own.
	if !bytes.Equal(t.GetActions()[0].GetHeader(), p.GetHeader().GetSignatureHeader()) {
		return nil, errors.New("its action's signature header is not the transaction's")
	}
	h := sha256.New()
	h.Write(p.GetHeader().GetChannelHeader())
	h.Write(t.GetActions()[0].GetHeader())
	h.Write(cap.GetChaincodeProposalPayload())
	if !bytes.Equal(h.Sum(nil), resp.GetProposalHash()) {
		return nil, errors.New("the endorsed proposal hash is not the hash of this transaction's headers and arguments: the endorsers signed another proposal")
	}
	var action peer.ChaincodeAction
	if err := proto.Unmarshal(resp.GetExtension(), &action); err != nil {
		return nil, fmt.Errorf("chaincode action: %w", err)
	}
	if name := action.GetChaincodeId().GetName(); name != chaincode {
		return nil, fmt.Errorf("its endorsed result is of chaincode %q, not %q", name, chaincode)
	}
	if st := action.GetResponse().GetStatus(); st != 200 {
		return nil, fmt.Errorf("its endorsed response has status %d, not 200", st)
	}
	if len(action.GetEvents()) > 0 {
		var ev peer.ChaincodeEvent
		if err := proto.Unmarshal(action.GetEvents(), &ev); err != nil {
			return nil, fmt.Errorf("chaincode event: %w", err)
		}
		tx.event = &ev
	}
	var rws rwset.TxReadWriteSet
	if err := proto.Unmarshal(action.GetResults(), &rws); err != nil {
		return nil, fmt.Errorf("read-write set: %w", err)
	}
	tx.writes, tx.reads, tx.sbe = map[string]*kvrwset.KVWrite{}, map[string]*kvrwset.KVRead{}, map[string][]byte{}
	for _, ns := range rws.GetNsRwset() {
		if ns.GetNamespace() != chaincode {
			continue
		}
		for _, coll := range ns.GetCollectionHashedRwset() {
			var h kvrwset.HashedRWSet
			if err := proto.Unmarshal(coll.GetHashedRwset(), &h); err != nil {
				return nil, fmt.Errorf("hashed read-write set of collection %s: %w", coll.GetCollectionName(), err)
			}
			if len(h.GetHashedWrites()) > 0 || len(h.GetMetadataWrites()) > 0 {
				tx.collections = append(tx.collections, coll.GetCollectionName())
			}
			for _, w := range h.GetHashedWrites() {
				if w.GetIsDelete() {
					continue
				}
				if tx.private == nil {
					tx.private = map[string]map[string][]byte{}
				}
				if tx.private[coll.GetCollectionName()] == nil {
					tx.private[coll.GetCollectionName()] = map[string][]byte{}
				}
				tx.private[coll.GetCollectionName()][hex.EncodeToString(w.GetKeyHash())] = w.GetValueHash()
			}
		}
		var kv kvrwset.KVRWSet
		if err := proto.Unmarshal(ns.GetRwset(), &kv); err != nil {
			return nil, fmt.Errorf("read-write set of %s: %w", chaincode, err)
		}
		for _, w := range kv.GetWrites() {
			tx.writes[w.GetKey()] = w
			tx.written = append(tx.written, w.GetKey())
		}
		for _, m := range kv.GetMetadataWrites() {
			if _, ok := tx.writes[m.GetKey()]; !ok {
				tx.written = append(tx.written, m.GetKey())
			}
			// A metadata write replaces all of a key's metadata: without a
			// validation parameter, the key has no policy after it.
			tx.sbe[m.GetKey()] = nil
			for _, e := range m.GetEntries() {
				if e.GetName() == validationParameter {
					tx.sbe[m.GetKey()] = e.GetValue()
				}
			}
		}
		for _, r := range kv.GetReads() {
			tx.reads[r.GetKey()] = r
		}
	}
	for _, e := range cap.GetAction().GetEndorsements() {
		tx.endorsed = append(tx.endorsed, trust.SignedData{
			Data:      append(append([]byte(nil), prp...), e.GetEndorser()...),
			Identity:  e.GetEndorser(),
			Signature: e.GetSignature(),
		})
	}
	return tx, nil
}

// txIDAt returns the transaction ID of envelope i of a block, or "" when it
// has none that decodes.
func txIDAt(b *common.Block, i int) string {
	var env common.Envelope
	if proto.Unmarshal(b.GetData().GetData()[i], &env) != nil {
		return ""
	}
	_, ch, _, err := payloadOf(&env)
	if err != nil {
		return ""
	}
	return ch.GetTxId()
}

// validationParameter is the metadata entry holding a key-level
// endorsement policy.
const validationParameter = "VALIDATION_PARAMETER"

// implicitCollectionPrefix names an org's implicit private data collection.
const implicitCollectionPrefix = "_implicit_org_"

// collectionPolicy is the policy Fabric validates a transaction's writes to
// a private data collection with: an org's implicit collection takes the
// org's /Channel/Application/<org>/Endorsement policy. Other collections'
// policies are in the chaincode definition, which a receipt does not carry.
func collectionPolicy(ch *trust.Channel, collection string) (string, error) {
	msp, ok := strings.CutPrefix(collection, implicitCollectionPrefix)
	if !ok {
		return "", fmt.Errorf("it writes to collection %q, whose endorsement policy is in the chaincode definition: only implicit org collections are verified", collection)
	}
	org, ok := ch.ApplicationOrgPath(msp)
	if !ok {
		return "", fmt.Errorf("it writes to the implicit collection of %s, which is not an org of the channel", msp)
	}
	return org + "/Endorsement", nil
}

// endorsement is what a transaction's creator and endorsements proved.
type endorsement struct {
	creator *trust.Identity
	orgs    []string // orgs whose peers endorsed it validly, sorted
	channel error    // why the channel's endorsement policy is not satisfied; nil when it is
}

// checkEndorsed checks a transaction's creator (a valid signature, and the
// channel's Writers) and that its endorsements satisfy what Fabric validates
// it with (docs/receipts.md §4.6): each implicit collection it writes, its
// org's Endorsement policy; each key it writes, the key-level policy
// keyPolicy knows (false: none known), and the channel's Endorsement policy
// for the keys without one. The endorsements are verified once.
func checkEndorsed(ch *trust.Channel, tx *endorserTx, keyPolicy func(key string) ([]byte, bool, error)) (*endorsement, error) {
	creator, err := ch.Verify(tx.creator, tx.time)
	if err != nil {
		return nil, fmt.Errorf("its creator's signature: %w", err)
	}
	if err := ch.Evaluate(PolicyWriters, []trust.SignedData{tx.creator}, tx.time); err != nil {
		return nil, fmt.Errorf("its creator may not write to the channel: %w", err)
	}
	sigs := ch.Verified(tx.endorsed, tx.time)
	e := &endorsement{creator: creator, channel: ch.EvaluateVerified(PolicyEndorsement, sigs)}
	for _, id := range sigs.Identities() {
		if id.Role == trust.RolePeer && !slices.Contains(e.orgs, id.MSPID) {
			e.orgs = append(e.orgs, id.MSPID)
		}
	}
	slices.Sort(e.orgs)
	needChannel := len(tx.written) == 0 && len(tx.collections) == 0
	for _, coll := range tx.collections {
		path, err := collectionPolicy(ch, coll)
		if err != nil {
			return nil, err
		}
		if err := ch.EvaluateVerified(path, sigs); err != nil {
			return nil, err
		}
	}
	for _, k := range tx.written {
		pol, ok, err := keyPolicy(k)
		if err != nil {
			return nil, err
		}
		if !ok || len(pol) == 0 {
			needChannel = true
			continue
		}
		if err := ch.EvaluateSignaturePolicyVerified("the key-level policy of "+readable(k), pol, sigs); err != nil {
			return nil, err
		}
	}
	if needChannel && e.channel != nil {
		return nil, e.channel
	}
	return e, nil
}

// compositeKey builds a chaincode key as shim.CreateCompositeKey does.
func compositeKey(kind string, attrs ...string) string {
	k := "\x00" + kind + "\x00"
	for _, a := range attrs {
		k += a + "\x00"
	}
	return k
}
