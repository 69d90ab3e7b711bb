package receipt

import (
	"context"
	"fmt"
	"slices"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset/kvrwset"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"

	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/receipt/trust"
)

// Source is where a receipt's blocks come from: any member's peer.
type Source interface {
	BlockByNumber(ctx context.Context, n uint64) (*common.Block, error)
	BlockByTxID(ctx context.Context, txID string) (*common.Block, error)
}

// Request says what a receipt is to prove.
type Request struct {
	Kind      Kind
	Channel   string
	Chaincode string
	Device    string
	TxID      string // the subject transaction
	// Reading is the reading of a KindReading receipt and its Merkle path
	// in its batch, as an org's index gives them.
	Reading *reading.Proof
	Command string // of a KindCommandAck receipt
}

// Build assembles a receipt from the channel's blocks: the subject's block,
// the block that wrote the device record it read, and the config chain
// from the genesis block to the config in force. It checks nothing a
// verifier checks; Verify the result.
func Build(ctx context.Context, src Source, req Request) (*Receipt, error) {
	r := &Receipt{Format: Format, Kind: req.Kind, Channel: req.Channel, Chaincode: req.Chaincode, Device: req.Device, TxID: req.TxID}
	switch req.Kind {
	case KindReading:
		if req.Reading == nil {
			return nil, fmt.Errorf("a reading receipt needs the reading and its path")
		}
		p := req.Reading
		r.Reading = &Reading{
			Payload: b64(p.Payload), Signature: b64(p.Signature), Index: p.Index, Size: p.Size,
			Path: make([]string, len(p.Path)),
		}
		for i, h := range p.Path {
			r.Reading.Path[i] = h.String()
		}
	case KindCommandAck:
		c := req.Command
		r.Command = &c
	case KindDeviceStatus:
	default:
		return nil, fmt.Errorf("kind %q is not one of reading, command-ack, device-status", req.Kind)
	}
	sb, err := src.BlockByTxID(ctx, req.TxID)
	if err != nil {
		return nil, fmt.Errorf("fetching the block of transaction %s: %w", req.TxID, err)
	}
	configs, err := configChain(ctx, src, sb)
	if err != nil {
		return nil, err
	}
	ch, err := trust.FromConfigBlock(configs[len(configs)-1])
	if err != nil {
		return nil, err
	}
	a := &anchors{src: src, req: req, orgs: len(ch.ApplicationMSPs()), blocks: map[uint64]*common.Block{sb.GetHeader().GetNumber(): sb}}
	subject, err := parseEndorserTx(sb, txIndexOf(sb, req.TxID), req.Channel, req.Chaincode)
	if err != nil {
		return nil, fmt.Errorf("transaction %s: %w", req.TxID, err)
	}
	if req.Kind == KindReading && subject.function == "telemetry:SubmitPrivateBatch" {
		return nil, fmt.Errorf("transaction %s is a private batch, endorsed by its owner alone: its readings get no receipt (docs/receipts.md §8)", req.TxID)
	}
	if err := a.endorsement(ctx, subject); err != nil {
		return nil, err
	}
	if req.Kind != KindDeviceStatus {
		dev := compositeKey("dev", req.Device)
		rd, ok := subject.reads[dev]
		if !ok || rd.GetVersion() == nil {
			return nil, fmt.Errorf("transaction %s did not read device %s's record", req.TxID, req.Device)
		}
		prev, err := a.writer(ctx, rd)
		if err != nil {
			return nil, err
		}
		if err := a.endorsement(ctx, prev); err != nil {
			return nil, err
		}
	}
	for _, b := range configs {
		s, err := encodeBlock(stripUnsigned(b))
		if err != nil {
			return nil, err
		}
		r.Config = append(r.Config, s)
	}
	blocks := a.blocks
	nums := make([]uint64, 0, len(blocks))
	for n := range blocks {
		nums = append(nums, n)
	}
	slices.Sort(nums)
	for _, n := range nums {
		s, err := encodeBlock(stripUnsigned(blocks[n]))
		if err != nil {
			return nil, err
		}
		r.Blocks = append(r.Blocks, s)
	}
	return r, nil
}

// configChain fetches the config blocks from the genesis block to the one
// in force at block b: each config block's predecessor is the one the
// block just before it names.
func configChain(ctx context.Context, src Source, b *common.Block) ([]*common.Block, error) {
	sigs, err := blockSignatures(b)
	if err != nil {
		return nil, err
	}
	var configs []*common.Block
	for n := sigs.lastConfig; ; {
		cb, err := src.BlockByNumber(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("fetching config block %d: %w", n, err)
		}
		configs = append(configs, cb)
		if n == 0 {
			break
		}
		if n == 1 {
			n = 0 // the genesis block carries no signatures to read
			continue
		}
		before, err := src.BlockByNumber(ctx, n-1)
		if err != nil {
			return nil, fmt.Errorf("fetching block %d: %w", n-1, err)
		}
		sigs, err := blockSignatures(before)
		if err != nil {
			return nil, err
		}
		n = sigs.lastConfig
	}
	slices.Reverse(configs)
	return configs, nil
}

// anchors collects the blocks a verifier needs to check endorsements as
// Fabric did: the key-level policy of a key is in the metadata of the
// transaction that last set it, found by following the versions each
// transaction read (docs/receipts.md §4.6).
type anchors struct {
	src    Source
	req    Request
	orgs   int
	blocks map[uint64]*common.Block
	seen   int
}

// endorsement fetches what proves the policies tx's endorsements must
// satisfy. A transaction endorsed by every application org satisfies the
// channel's policy, which stands in for each policy not proven.
func (a *anchors) endorsement(ctx context.Context, tx *endorserTx) error {
	if endorsingOrgs(tx) >= a.orgs {
		return nil
	}
	for _, k := range tx.written {
		if err := a.keyPolicy(ctx, tx, k); err != nil {
			return err
		}
	}
	return nil
}

// keyPolicy fetches the transactions back to the one that set key's policy.
func (a *anchors) keyPolicy(ctx context.Context, tx *endorserTx, key string) error {
	rd, ok := tx.reads[key]
	if !ok || rd.GetVersion() == nil {
		return nil
	}
	prev, err := a.writer(ctx, rd)
	if err != nil {
		return err
	}
	if err := a.endorsement(ctx, prev); err != nil {
		return err
	}
	if _, ok := prev.sbe[key]; ok {
		return nil
	}
	return a.keyPolicy(ctx, prev, key)
}

// writer fetches and decodes the transaction that wrote the version read.
func (a *anchors) writer(ctx context.Context, rd *kvrwset.KVRead) (*endorserTx, error) {
	if a.seen++; a.seen > maxAnchors {
		return nil, fmt.Errorf("transaction %s depends on more than %d earlier transactions: too long a history for one receipt", a.req.TxID, maxAnchors)
	}
	n := rd.GetVersion().GetBlockNum()
	b := a.blocks[n]
	if b == nil {
		var err error
		if b, err = a.src.BlockByNumber(ctx, n); err != nil {
			return nil, fmt.Errorf("fetching block %d: %w", n, err)
		}
		a.blocks[n] = b
	}
	prev, err := parseEndorserTx(b, int(rd.GetVersion().GetTxNum()), a.req.Channel, a.req.Chaincode)
	if err != nil {
		return nil, fmt.Errorf("the transaction that wrote %s (block %d): %w", readable(rd.GetKey()), n, err)
	}
	return prev, nil
}

// endorsingOrgs counts the MSPs named by a transaction's endorsements
// (unverified: Build only decides which blocks to fetch).
func endorsingOrgs(tx *endorserTx) int {
	seen := map[string]bool{}
	for _, e := range tx.endorsed {
		var id msp.SerializedIdentity
		if proto.Unmarshal(e.Identity, &id) == nil {
			seen[id.GetMspid()] = true
		}
	}
	return len(seen)
}

func txIndexOf(b *common.Block, txID string) int {
	for i := range b.GetData().GetData() {
		if txIDAt(b, i) == txID {
			return i
		}
	}
	return -1
}
