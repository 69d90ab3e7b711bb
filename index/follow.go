package index

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/receipt"
)

// BlockSource delivers the channel's blocks from a number on, in order,
// until ctx ends (a peer's deliver service; client.Client.Blocks).
type BlockSource interface {
	Blocks(ctx context.Context, from uint64) (<-chan *common.Block, error)
}

// Follower keeps a Store up to date with the channel: it verifies every
// block (receipt.Chain) before applying it, from the genesis block the
// trust anchor names.
type Follower struct {
	store     Store
	src       BlockSource
	anchor    receipt.Anchor
	chaincode string
	log       *slog.Logger
	applied   func(b *Block) // test and metrics hook, may be nil
	private   PrivateSource  // the own org's private batches, may be nil
	mspID     string         // the own org
}

// PrivateSource gives an owner org's private batches: the value stored
// under pbatch~<txid> in its implicit collection, byte for byte
// (client.Client.PrivateBatch). The follower checks it against the hash
// the block carries.
type PrivateSource interface {
	PrivateBatchRaw(ctx context.Context, txID string) ([]byte, error)
}

// WithPrivate makes the follower resolve the private readings of org
// mspID (its own) from src; other orgs' private batches are indexed as
// commitments only.
func (f *Follower) WithPrivate(src PrivateSource, mspID string) *Follower {
	f.private, f.mspID = src, mspID
	return f
}

// NewFollower makes a follower of the channel the anchor names.
func NewFollower(store Store, src BlockSource, anchor receipt.Anchor, chaincode string, log *slog.Logger) *Follower {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Follower{store: store, src: src, anchor: anchor, chaincode: chaincode, log: log}
}

// OnApplied sets a function called after each block is applied.
func (f *Follower) OnApplied(fn func(b *Block)) { f.applied = fn }

// Run follows the channel until ctx ends or a block fails verification (a
// peer serving forged or inconsistent blocks): then it stops with an error
// and the index stays at the last good block.
func (f *Follower) Run(ctx context.Context) error {
	next, _, err := f.store.Checkpoint(ctx)
	if err != nil {
		return err
	}
	chain, err := f.resume(ctx, next)
	if err != nil {
		return err
	}
	blocks, err := f.src.Blocks(ctx, chain.Next())
	if err != nil {
		return err
	}
	for {
		var b *common.Block
		var ok bool
		select {
		case <-ctx.Done():
			return ctx.Err()
		case b, ok = <-blocks:
		}
		if !ok {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return errors.New("index: the peer's block stream ended")
		}
		vb, err := chain.Verify(b)
		if err != nil {
			return fmt.Errorf("index: refusing block %d: %w", b.GetHeader().GetNumber(), err)
		}
		ib, err := f.decode(ctx, vb)
		if err != nil {
			return err
		}
		if err := f.store.Apply(ctx, ib); err != nil {
			return fmt.Errorf("index: applying block %d: %w", vb.Number, err)
		}
		if f.applied != nil {
			f.applied(ib)
		}
	}
}

// resume rebuilds the verifier's state as of block next from the store,
// which saved it with its checkpoint.
func (f *Follower) resume(ctx context.Context, next uint64) (*receipt.Chain, error) {
	if next == 0 {
		return receipt.NewChain(f.anchor, f.chaincode)
	}
	st, err := f.store.ChainState(ctx)
	if err != nil {
		return nil, err
	}
	return receipt.ResumeChain(f.anchor, f.chaincode, *st)
}

// decode turns a verified block into index records.
func (f *Follower) decode(ctx context.Context, vb *receipt.VerifiedBlock) (*Block, error) {
	b := &Block{Number: vb.Number, Hash: vb.Hash, Time: vb.Time, Config: vb.Config, Policies: vb.Policies}
	for _, vt := range vb.Txs {
		if vt.Foreign {
			continue
		}
		t := Transaction{
			Block: vb.Number, Index: vt.Index, TxID: vt.TxID, Time: vt.Time, ValidationCode: vt.ValidationCode,
			Function: vt.Function, CreatorMSP: vt.CreatorMSP, Creator: vt.Creator, Endorsers: vt.Endorsers,
		}
		if vt.Event != nil && vt.Event.GetEventName() == api.EventName {
			var ev api.Event
			if err := json.Unmarshal(vt.Event.GetPayload(), &ev); err == nil {
				t.Event = &ev
				t.Devices = append(t.Devices, ev.Devices...)
			} else {
				f.log.Warn("undecodable chaincode event", "tx", vt.TxID, "err", err)
			}
		}
		if vt.Valid() && (vt.Function == api.ContractTelemetry+":SubmitBatch" || vt.Function == api.ContractTelemetry+":Submit") {
			f.batch(&t, &vt)
		}
		if vt.Valid() && vt.Function == api.ContractTelemetry+":SubmitPrivateBatch" {
			if err := f.privateBatch(ctx, &t, &vt); err != nil {
				return nil, err
			}
		}
		slices.Sort(t.Devices)
		t.Devices = slices.Compact(t.Devices)
		b.Transactions = append(b.Transactions, t)
	}
	return b, nil
}

// batch decodes a committed public batch: the readings from the
// transaction's arguments (the bytes the endorsers checked), the
// commitment from its write set.
func (f *Follower) batch(t *Transaction, vt *receipt.VerifiedTx) {
	for k, v := range vt.Writes {
		if !strings.HasPrefix(k, "\x00batch\x00") {
			continue
		}
		var rec api.BatchRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			f.log.Warn("undecodable batch record", "tx", vt.TxID, "err", err)
			continue
		}
		t.Batch = &Batch{TxID: vt.TxID, Root: rec.Root[:], Size: rec.Size, Submitter: rec.Submitter, MSPID: rec.MSPID, Block: t.Block}
	}
	if len(vt.Args) != 2 {
		return
	}
	var req api.BatchRequest
	if vt.Function == api.ContractTelemetry+":Submit" {
		// One reading: the argument is its envelope.
		env, err := reading.ParseEnvelope(vt.Args[1])
		if err != nil {
			f.log.Warn("undecodable reading", "tx", vt.TxID, "err", err)
			return
		}
		req.Readings = []reading.Envelope{env}
	} else if err := reading.DecodeStrict(vt.Args[1], &req); err != nil {
		f.log.Warn("undecodable batch", "tx", vt.TxID, "err", err)
		return
	}
	for i, env := range req.Readings {
		r, err := env.Decode()
		if err != nil {
			f.log.Warn("undecodable reading in a committed batch", "tx", vt.TxID, "index", i, "err", err)
			continue
		}
		values, err := json.Marshal(r.Values)
		if err != nil {
			continue
		}
		t.Readings = append(t.Readings, Reading{
			Device: r.Device, Seq: r.Seq, Timestamp: r.Timestamp, Values: values,
			Payload: env.Payload, Signature: env.Signature, BatchTx: vt.TxID, Index: i, Block: t.Block,
		})
		t.Devices = append(t.Devices, r.Device)
	}
}

// CaughtUp waits until the store has applied every block below height (a
// peer's chain height), polling its checkpoint, or ctx ends.
func CaughtUp(ctx context.Context, st Store, height uint64) error {
	for {
		next, _, err := st.Checkpoint(ctx)
		if err != nil {
			return err
		}
		if next >= height {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("index: at block %d of %d: %w", next, height, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// privateBatch indexes a private batch: for the own org, its readings,
// fetched from the org's collection and checked against the hash in the
// block; for another org, the fact of the batch alone.
func (f *Follower) privateBatch(ctx context.Context, t *Transaction, vt *receipt.VerifiedTx) error {
	for coll, writes := range vt.PrivateWrites {
		owner, ok := strings.CutPrefix(coll, "_implicit_org_")
		if !ok {
			continue
		}
		t.Batch = &Batch{TxID: vt.TxID, MSPID: owner, Block: t.Block, Private: true}
		if f.private == nil || owner != f.mspID {
			return nil
		}
		keyHash := sha256.Sum256([]byte("\x00pbatch\x00" + vt.TxID + "\x00"))
		want, ok := writes[hex.EncodeToString(keyHash[:])]
		if !ok {
			return fmt.Errorf("index: private batch %s wrote no readings to %s", vt.TxID, coll)
		}
		raw, err := f.fetchPrivate(ctx, vt.TxID)
		if err != nil {
			return err
		}
		if got := sha256.Sum256(raw); !bytes.Equal(got[:], want) {
			return fmt.Errorf("index: the peer's private batch %s does not hash to what block %d holds", vt.TxID, t.Block)
		}
		var req api.BatchRequest
		if err := reading.DecodeStrict(raw, &req); err != nil {
			return fmt.Errorf("index: private batch %s: %w", vt.TxID, err)
		}
		leaves := make([][32]byte, 0, len(req.Readings))
		for i, env := range req.Readings {
			r, err := env.Decode()
			if err != nil {
				return fmt.Errorf("index: private batch %s reading %d: %w", vt.TxID, i, err)
			}
			values, err := json.Marshal(r.Values)
			if err != nil {
				return err
			}
			t.Readings = append(t.Readings, Reading{
				Device: r.Device, Seq: r.Seq, Timestamp: r.Timestamp, Values: values,
				Payload: env.Payload, Signature: env.Signature, BatchTx: vt.TxID, Index: i, Block: t.Block, Private: true,
			})
			t.Devices = append(t.Devices, r.Device)
			leaves = append(leaves, r.LeafHash())
		}
		root, err := reading.MerkleRoot(leaves)
		if err != nil {
			return err
		}
		t.Batch.Root, t.Batch.Size = root[:], len(leaves)
		return nil
	}
	return nil
}

// fetchPrivate asks the org's peer for a private batch, a few times: a
// peer may still be fetching private data from another peer of its org.
func (f *Follower) fetchPrivate(ctx context.Context, txID string) ([]byte, error) {
	var last error
	for attempt := range 10 {
		raw, err := f.private.PrivateBatchRaw(ctx, txID)
		if err == nil {
			return raw, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("index: private batch %s from the org's peer: %w", txID, last)
}
