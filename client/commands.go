package client

import (
	"context"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// SendCommand issues a command to a device or to every device of a group.
func (c *Client) SendCommand(ctx context.Context, req api.CommandRequest) ([]api.Command, error) {
	arg, err := mustJSON(req)
	if err != nil {
		return nil, err
	}
	var out []api.Command
	if err := c.submit(ctx, api.ContractCommand, "Send", &out, arg); err != nil {
		return nil, err
	}
	return out, nil
}

// Command reads one command.
func (c *Client) Command(ctx context.Context, id string) (*api.Command, error) {
	var out api.Command
	if err := c.evaluate(ctx, api.ContractCommand, "Get", &out, id); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListCommands reads one page of a device's commands.
func (c *Client) ListCommands(ctx context.Context, q api.CommandQuery) (*api.CommandPage, error) {
	arg, err := mustJSON(q)
	if err != nil {
		return nil, err
	}
	var out api.CommandPage
	if err := c.evaluate(ctx, api.ContractCommand, "List", &out, arg); err != nil {
		return nil, err
	}
	return &out, nil
}

// MarkCommandDelivered records that a hub delivered a command.
func (c *Client) MarkCommandDelivered(ctx context.Context, id string) (*api.Command, error) {
	var out api.Command
	if err := c.submit(ctx, api.ContractCommand, "MarkDelivered", &out, id); err != nil {
		return nil, err
	}
	return &out, nil
}

// AckCommand submits a device's signed acknowledgement (an api.AckPayload
// signed in domain reading.DomainAck).
func (c *Client) AckCommand(ctx context.Context, env reading.Envelope) (*api.Command, error) {
	var out api.Command
	if err := c.submit(ctx, api.ContractCommand, "Ack", &out, string(env.Encode())); err != nil {
		return nil, err
	}
	return &out, nil
}

// ExpireCommand marks a command whose time has passed as expired.
func (c *Client) ExpireCommand(ctx context.Context, id string) (*api.Command, error) {
	var out api.Command
	if err := c.submit(ctx, api.ContractCommand, "Expire", &out, id); err != nil {
		return nil, err
	}
	return &out, nil
}
