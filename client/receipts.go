package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	gw "github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/receipt"
)

// BlockByNumber returns block n as the channel keeps it.
func (c *Client) BlockByNumber(ctx context.Context, n uint64) (*common.Block, error) {
	num := strconv.FormatUint(n, 10)
	b, err := c.tr.system(ctx, "qscc", "GetBlockByNumber", []string{c.channel, num})
	if err != nil {
		return nil, newCallError("qscc:GetBlockByNumber", num, StageEvaluate, err)
	}
	var block common.Block
	if err := proto.Unmarshal(b, &block); err != nil {
		return nil, fmt.Errorf("decoding block %d: %w", n, err)
	}
	return &block, nil
}

// TrustAnchor reads the channel's genesis block from the peer and returns
// the anchor receipts are verified with (docs/receipts.md §1), and the block.
func (c *Client) TrustAnchor(ctx context.Context) (receipt.Anchor, *common.Block, error) {
	b, err := c.BlockByNumber(ctx, 0)
	if err != nil {
		return receipt.Anchor{}, nil, err
	}
	a, err := receipt.AnchorOf(b)
	if err != nil {
		return receipt.Anchor{}, nil, err
	}
	if a.Channel != c.channel {
		return receipt.Anchor{}, nil, fmt.Errorf("the peer's genesis block is of channel %q, not %q", a.Channel, c.channel)
	}
	return a, b, nil
}

func (c *Client) receiptRequest(kind receipt.Kind, device, txID string) receipt.Request {
	return receipt.Request{Kind: kind, Channel: c.channel, Chaincode: c.chain, Device: device, TxID: txID}
}

// ReadingReceipt builds the receipt of a committed reading from the
// reading and its Merkle path in its batch (a reading.Proof: batch
// transaction, index, size, path, payload and signature), as an org's index
// gives them: the chaincode keeps no readings. Nothing in p is trusted;
// the receipt proves it or fails to verify. Readings of private devices get
// none: their batches are endorsed by the owner alone (docs/receipts.md §8).
func (c *Client) ReadingReceipt(ctx context.Context, p *reading.Proof) (*receipt.Receipt, error) {
	if p == nil {
		return nil, errors.New("a reading receipt needs the reading and its Merkle path")
	}
	payload, err := reading.ParsePayload(p.Payload)
	if err != nil {
		return nil, fmt.Errorf("the reading to make a receipt of: %w", err)
	}
	// A private device's reading has no public batch: Build and Verify
	// refuse it (docs/receipts.md §8). No device read is needed, so any
	// member builds the receipt of any public reading from its own index.
	device := payload.Device
	req := c.receiptRequest(receipt.KindReading, device, p.BatchID)
	req.Reading = p
	return receipt.Build(ctx, c.blocks(), req)
}

// CommandAckReceipt builds the receipt of a command's device-signed ack.
func (c *Client) CommandAckReceipt(ctx context.Context, id string) (*receipt.Receipt, error) {
	cmd, err := c.Command(ctx, id)
	if err != nil {
		return nil, err
	}
	if cmd.Status != api.CommandAcked && cmd.Status != api.CommandFailed {
		return nil, fmt.Errorf("command %s is %s: only a command its device acked (acked or failed) has an ack receipt", id, cmd.Status)
	}
	if cmd.CompletedByTx == "" {
		return nil, fmt.Errorf("command %s names no transaction that acked it (acked before the ledger kept it)", id)
	}
	req := c.receiptRequest(receipt.KindCommandAck, cmd.Device, cmd.CompletedByTx)
	req.Command = id
	return receipt.Build(ctx, c.blocks(), req)
}

// DeviceReceipt builds the receipt of a device record as the transaction
// txID wrote it; with txID empty, of the record in force now (after a
// revocation: the revocation).
func (c *Client) DeviceReceipt(ctx context.Context, device, txID string) (*receipt.Receipt, error) {
	if txID == "" {
		d, err := c.Device(ctx, device)
		if err != nil {
			return nil, err
		}
		txID = d.UpdatedByTx
	}
	return receipt.Build(ctx, c.blocks(), c.receiptRequest(receipt.KindDeviceStatus, device, txID))
}

// blockSource gives receipt.Build the channel's blocks through this client.
type blockSource struct{ c *Client }

func (c *Client) blocks() blockSource { return blockSource{c} }

func (s blockSource) BlockByNumber(ctx context.Context, n uint64) (*common.Block, error) {
	return s.c.BlockByNumber(ctx, n)
}

func (s blockSource) BlockByTxID(ctx context.Context, txID string) (*common.Block, error) {
	return s.c.BlockByTxID(ctx, txID)
}

// CrossCheck is what a member's peer says of a verified receipt's
// transactions: the part a receipt cannot prove offline (docs/receipts.md §7).
type CrossCheck struct {
	Org          string            `json:"org"`          // whose gateway peer answered
	Transactions map[string]string `json:"transactions"` // ID → validation code
	Blocks       []uint64          `json:"blocks"`       // whose headers the peer has as the receipt does
}

// CheckReceipt asks this client's peer about a receipt that verified: each
// transaction the result relies on must be VALID there with the same bytes,
// and each block of the receipt must have the same header.
func (c *Client) CheckReceipt(ctx context.Context, r *receipt.Receipt, res *receipt.Result) (*CrossCheck, error) {
	out := &CrossCheck{Org: c.mspID, Transactions: map[string]string{}}
	blocks, err := r.DecodeBlocks()
	if err != nil {
		return nil, err
	}
	for _, b := range blocks {
		have, err := c.BlockByNumber(ctx, b.GetHeader().GetNumber())
		if err != nil {
			return nil, err
		}
		if !proto.Equal(have.GetHeader(), b.GetHeader()) {
			return nil, fmt.Errorf("the peer's block %d has another header than the receipt's: the receipt is not of this ledger", b.GetHeader().GetNumber())
		}
		out.Blocks = append(out.Blocks, b.GetHeader().GetNumber())
	}
	for _, txID := range []string{res.TxID, res.RecordTx} {
		if _, done := out.Transactions[txID]; done || txID == "" {
			continue
		}
		raw, err := c.tr.system(ctx, "qscc", "GetTransactionByID", []string{c.channel, txID})
		if err != nil {
			return nil, newCallError("qscc:GetTransactionByID", txID, StageEvaluate, err)
		}
		var pt peer.ProcessedTransaction
		if err := proto.Unmarshal(raw, &pt); err != nil {
			return nil, fmt.Errorf("decoding transaction %s: %w", txID, err)
		}
		code := peer.TxValidationCode(pt.GetValidationCode()).String()
		out.Transactions[txID] = code
		env, err := r.Envelope(txID)
		if err != nil {
			return nil, err
		}
		if !proto.Equal(pt.GetTransactionEnvelope(), env) {
			return nil, fmt.Errorf("the peer's transaction %s is not the receipt's", txID)
		}
		if pt.GetValidationCode() != int32(peer.TxValidationCode_VALID) {
			return out, fmt.Errorf("the peer marked transaction %s %s: it did not take effect", txID, code)
		}
	}
	return out, nil
}

// Blocks streams the channel's blocks from number from on, in order, as
// this client's peer delivers them, until ctx ends. The stream carries the
// peer's validation flags (unsigned metadata): a consumer verifies what it
// can (receipt.Chain).
func (c *Client) Blocks(ctx context.Context, from uint64) (<-chan *common.Block, error) {
	ch, err := c.network.BlockEvents(ctx, gw.WithStartBlock(from))
	if err != nil {
		return nil, newCallError("deliver", "", StageEvaluate, err)
	}
	return ch, nil
}

// Height is the number of blocks this client's peer has committed.
func (c *Client) Height(ctx context.Context) (uint64, error) {
	h, err := c.chainHeight(ctx)
	if err != nil {
		return 0, newCallError("qscc:GetChainInfo", "", StageEvaluate, err)
	}
	return h, nil
}

// PrivateBatchRaw is PrivateBatch's stored bytes: what an org's index
// checks against the hash in the block (index.PrivateSource).
func (c *Client) PrivateBatchRaw(ctx context.Context, txID string) ([]byte, error) {
	pb, err := c.PrivateBatch(ctx, txID)
	if err != nil {
		return nil, err
	}
	return pb.Raw, nil
}
