package client

import (
	"context"
	"encoding/json"

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
	return c.commandTx(ctx, "MarkDelivered", id, id)
}

// AckCommand submits a device's signed acknowledgement (an api.AckPayload
// signed in domain reading.DomainAck).
func (c *Client) AckCommand(ctx context.Context, env reading.Envelope) (*api.Command, error) {
	var ack struct {
		Command string `json:"command"`
	}
	_ = json.Unmarshal(env.Payload, &ack) // the chaincode validates the ack; the id only routes it
	return c.commandTx(ctx, "Ack", ack.Command, string(env.Encode()))
}

// ExpireCommand marks a command whose time has passed as expired.
func (c *Client) ExpireCommand(ctx context.Context, id string) (*api.Command, error) {
	return c.commandTx(ctx, "Expire", id, id)
}

// commandTx submits a command lifecycle transaction. A command a rule
// issued in a private telemetry batch lives in its owner org's implicit
// collection, and that org alone endorses its changes: the command is read
// first (on this client's own peer), and a private one is sent to its
// owner's peers only. A command that cannot be read first is submitted as
// usual, and the chaincode's answer says what is wrong.
func (c *Client) commandTx(ctx context.Context, tx, id string, args ...string) (*api.Command, error) {
	var opts submitOptions
	if cmd, err := c.Command(ctx, id); err == nil && cmd.Private {
		opts.endorsingOrgs = []string{cmd.Owner}
	}
	var out api.Command
	if err := c.submitWith(ctx, opts, api.ContractCommand, tx, &out, args...); err != nil {
		return nil, err
	}
	return &out, nil
}
