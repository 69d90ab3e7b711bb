package client

import (
	"context"
	"strconv"

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

// Reading reads one stored reading.
func (c *Client) Reading(ctx context.Context, device string, seq uint64) (*api.StoredReading, error) {
	var out api.StoredReading
	if err := c.evaluate(ctx, api.ContractTelemetry, "Get", &out, device, strconv.FormatUint(seq, 10)); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListReadings reads one page of a device's readings.
func (c *Client) ListReadings(ctx context.Context, q api.ReadingQuery) (*api.ReadingPage, error) {
	arg, err := mustJSON(q)
	if err != nil {
		return nil, err
	}
	var out api.ReadingPage
	if err := c.evaluate(ctx, api.ContractTelemetry, "List", &out, arg); err != nil {
		return nil, err
	}
	return &out, nil
}

// ReadingProof fetches the proof that a reading is part of a committed
// batch; reading.Proof.Verify checks it offline.
func (c *Client) ReadingProof(ctx context.Context, device string, seq uint64) (*reading.Proof, error) {
	var out reading.Proof
	if err := c.evaluate(ctx, api.ContractTelemetry, "Proof", &out, device, strconv.FormatUint(seq, 10)); err != nil {
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
