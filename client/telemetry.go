package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	mspproto "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// SubmitReading submits one device-signed reading.
func (c *Client) SubmitReading(ctx context.Context, env reading.Envelope) (*api.BatchReceipt, error) {
	var out api.BatchReceipt
	if err := c.submit(ctx, api.ContractTelemetry, "Submit", &out, string(env.Encode())); err != nil {
		return nil, err
	}
	return &out, nil
}

// SubmitBatch submits many signed readings in one transaction; the batch is
// accepted or refused whole.
func (c *Client) SubmitBatch(ctx context.Context, b api.BatchRequest) (*api.BatchReceipt, error) {
	arg, err := mustJSON(b)
	if err != nil {
		return nil, err
	}
	var out api.BatchReceipt
	if err := c.submit(ctx, api.ContractTelemetry, "SubmitBatch", &out, arg); err != nil {
		return nil, err
	}
	return &out, nil
}

// Seen asks the ledger which of a device's sequence numbers (1..500 of
// them) its replay state has: accepted, not seen, or below the replay
// window (refused whatever it was). The answer lists them in the order
// asked. A private device's replay state is in its owner's collection:
// ask as a member of the owner org. The readings themselves are served by
// an org's index; the chaincode keeps none.
func (c *Client) Seen(ctx context.Context, device string, seqs []uint64) (*api.SeenAnswer, error) {
	arg, err := mustJSON(seqs)
	if err != nil {
		return nil, err
	}
	var out api.SeenAnswer
	if err := c.evaluate(ctx, api.ContractTelemetry, "Seen", &out, device, arg); err != nil {
		return nil, err
	}
	return &out, nil
}

// Batch reads what the ledger keeps of a batch.
func (c *Client) Batch(ctx context.Context, id string) (*api.BatchRecord, error) {
	var out api.BatchRecord
	if err := c.evaluate(ctx, api.ContractTelemetry, "GetBatch", &out, id); err != nil {
		return nil, err
	}
	return &out, nil
}

// PrivateBatch is a private batch's readings as its owner's collection
// holds them.
type PrivateBatch struct {
	// Raw is the stored value, byte for byte: its SHA-256 is the value hash
	// of key pbatch~<txid> in the private write set of the transaction's
	// block, which is how an index checks it.
	Raw      []byte
	Readings []reading.Envelope // in batch order: the Merkle leaves
}

// PrivateBatch fetches the readings of a private batch of this client's
// org (telemetry:PrivateBatch). Only the org whose devices the batch
// carried has them; the caller needs telemetry:read on each of them.
func (c *Client) PrivateBatch(ctx context.Context, txID string) (*PrivateBatch, error) {
	const name = api.ContractTelemetry + ":PrivateBatch"
	raw, err := c.tr.evaluate(ctx, api.ContractTelemetry, "PrivateBatch", []string{txID})
	if err != nil {
		return nil, newCallError(name, "", StageEvaluate, err)
	}
	var req api.BatchRequest
	if err := reading.DecodeStrict(raw, &req); err != nil {
		return nil, fmt.Errorf("%s: decoding private batch %s: %w", name, txID, err)
	}
	return &PrivateBatch{Raw: raw, Readings: req.Readings}, nil
}

// SubmitPrivateBatch submits a batch of readings of this client's own
// org's private devices (api.Device.Private); SubmitPrivateBatchFor names
// another owner org.
func (c *Client) SubmitPrivateBatch(ctx context.Context, b api.BatchRequest) (*api.BatchReceipt, error) {
	return c.SubmitPrivateBatchFor(ctx, c.mspID, b)
}

// SubmitPrivateBatchFor submits a batch of readings of owner's private
// devices through telemetry:SubmitPrivateBatch. The batch travels as
// transient data, which is never written into a block, and only owner's
// peers endorse it: no other org's peer or chaincode ever receives the
// readings. The chaincode keeps what the batch creates in owner's implicit
// private data collection (only hashes reach the channel), which Fabric
// validates against owner's endorsement policy alone. A batch holds the
// private devices of one org only.
func (c *Client) SubmitPrivateBatchFor(ctx context.Context, owner string, b api.BatchRequest) (*api.BatchReceipt, error) {
	if len(b.Readings) == 0 {
		return nil, errors.New("telemetry:SubmitPrivateBatch: the batch has no readings")
	}
	if owner == "" {
		return nil, errors.New("telemetry:SubmitPrivateBatch: name the org that owns the batch's private devices")
	}
	arg, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encoding the batch: %w", err)
	}
	opts := submitOptions{transient: map[string][]byte{api.TransientBatchKey: arg}, endorsingOrgs: []string{owner}}
	var out api.BatchReceipt
	if err := c.submitWith(ctx, opts, api.ContractTelemetry, "SubmitPrivateBatch", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ChannelOrgs returns the MSP IDs of the channel's application orgs, sorted,
// read from the channel configuration through the peer's configuration
// system chaincode (any channel member may read it). The answer is kept for
// the client's lifetime.
func (c *Client) ChannelOrgs(ctx context.Context) ([]string, error) {
	c.orgsMu.Lock()
	defer c.orgsMu.Unlock()
	if c.orgs != nil {
		return slices.Clone(c.orgs), nil
	}
	b, err := c.tr.system(ctx, "cscc", "GetChannelConfig", []string{c.channel})
	if err != nil {
		return nil, newCallError("cscc:GetChannelConfig", "", StageEvaluate, err)
	}
	orgs, err := applicationOrgs(b)
	if err != nil {
		return nil, err
	}
	c.orgs = orgs
	return slices.Clone(orgs), nil
}

// applicationOrgs lists the MSP IDs of a channel configuration's
// application orgs.
func applicationOrgs(configBytes []byte) ([]string, error) {
	var cfg common.Config
	if err := proto.Unmarshal(configBytes, &cfg); err != nil {
		return nil, fmt.Errorf("decoding the channel configuration: %w", err)
	}
	app, ok := cfg.GetChannelGroup().GetGroups()["Application"]
	if !ok {
		return nil, errors.New("the channel configuration has no Application group")
	}
	names := make([]string, 0, len(app.GetGroups()))
	for name := range app.GetGroups() {
		names = append(names, name)
	}
	slices.Sort(names)
	orgs := make([]string, 0, len(names))
	for _, name := range names {
		v, ok := app.GetGroups()[name].GetValues()["MSP"]
		if !ok {
			return nil, fmt.Errorf("application org %s has no MSP in the channel configuration", name)
		}
		var mc mspproto.MSPConfig
		if err := proto.Unmarshal(v.GetValue(), &mc); err != nil {
			return nil, fmt.Errorf("decoding the MSP of application org %s: %w", name, err)
		}
		var fc mspproto.FabricMSPConfig
		if err := proto.Unmarshal(mc.GetConfig(), &fc); err != nil {
			return nil, fmt.Errorf("decoding the MSP of application org %s: %w", name, err)
		}
		if fc.GetName() == "" {
			return nil, fmt.Errorf("application org %s has an MSP without an ID", name)
		}
		orgs = append(orgs, fc.GetName())
	}
	if len(orgs) == 0 {
		return nil, errors.New("the channel configuration lists no application orgs")
	}
	slices.Sort(orgs)
	return orgs, nil
}

// BlockByTxID returns the block that holds a transaction, as the channel
// keeps it (every member's peer holds the same bytes). Auditors use it to
// see exactly what a transaction put on the channel.
func (c *Client) BlockByTxID(ctx context.Context, txID string) (*common.Block, error) {
	b, err := c.tr.system(ctx, "qscc", "GetBlockByTxID", []string{c.channel, txID})
	if err != nil {
		return nil, newCallError("qscc:GetBlockByTxID", txID, StageEvaluate, err)
	}
	var block common.Block
	if err := proto.Unmarshal(b, &block); err != nil {
		return nil, fmt.Errorf("decoding the block of transaction %s: %w", txID, err)
	}
	return &block, nil
}
