package client

import (
	"context"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// SendMessage relays a device's signed message (reading.MessagePayload in a
// reading.Envelope) through the ledger to its recipient's hub, which may be
// of another org; the ledger keeps it until it is delivered or expires.
func (c *Client) SendMessage(ctx context.Context, env reading.Envelope) (*api.StoredMessage, error) {
	var out api.StoredMessage
	if err := c.submit(ctx, api.ContractMessage, "Send", &out, string(env.Encode())); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListMessages reads one page of the messages waiting for a device of this
// client's org.
func (c *Client) ListMessages(ctx context.Context, q api.MessageQuery) (*api.MessagePage, error) {
	arg, err := mustJSON(q)
	if err != nil {
		return nil, err
	}
	var out api.MessagePage
	if err := c.evaluate(ctx, api.ContractMessage, "List", &out, arg); err != nil {
		return nil, err
	}
	return &out, nil
}

// MarkMessageDelivered records that a waiting message reached its recipient.
func (c *Client) MarkMessageDelivered(ctx context.Context, to, from, id string) (*api.StoredMessage, error) {
	var out api.StoredMessage
	if err := c.submit(ctx, api.ContractMessage, "MarkDelivered", &out, to, from, id); err != nil {
		return nil, err
	}
	return &out, nil
}

// ExpireMessage forgets a waiting message whose time has passed.
func (c *Client) ExpireMessage(ctx context.Context, to, from, id string) (*api.StoredMessage, error) {
	var out api.StoredMessage
	if err := c.submit(ctx, api.ContractMessage, "Expire", &out, to, from, id); err != nil {
		return nil, err
	}
	return &out, nil
}
