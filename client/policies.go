package client

import (
	"context"

	"github.com/iotledger/iotledger/chaincode/api"
)

// PutPolicy creates or replaces a policy of the caller's org.
func (c *Client) PutPolicy(ctx context.Context, p api.Policy) (*api.Policy, error) {
	arg, err := mustJSON(p)
	if err != nil {
		return nil, err
	}
	var out api.Policy
	if err := c.submit(ctx, api.ContractPolicy, "Put", &out, arg); err != nil {
		return nil, err
	}
	return &out, nil
}

// Policy reads one policy.
func (c *Client) Policy(ctx context.Context, id string) (*api.Policy, error) {
	var out api.Policy
	if err := c.evaluate(ctx, api.ContractPolicy, "Get", &out, id); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListPolicies reads one page of policies.
func (c *Client) ListPolicies(ctx context.Context, q api.PolicyQuery) (*api.PolicyPage, error) {
	arg, err := mustJSON(q)
	if err != nil {
		return nil, err
	}
	var out api.PolicyPage
	if err := c.evaluate(ctx, api.ContractPolicy, "List", &out, arg); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeletePolicy removes a policy of the caller's org.
func (c *Client) DeletePolicy(ctx context.Context, id string) error {
	return c.submit(ctx, api.ContractPolicy, "Delete", nil, id)
}

// CheckAccess asks the ledger whether the caller (or req.Device) may do
// req.Action on req.Resource now.
func (c *Client) CheckAccess(ctx context.Context, req api.AccessRequest) (*api.Decision, error) {
	arg, err := mustJSON(req)
	if err != nil {
		return nil, err
	}
	var out api.Decision
	if err := c.evaluate(ctx, api.ContractPolicy, "CheckAccess", &out, arg); err != nil {
		return nil, err
	}
	return &out, nil
}

// Explain is CheckAccess with the reasoning: which statements matched and why.
func (c *Client) Explain(ctx context.Context, req api.AccessRequest) (*api.Explanation, error) {
	arg, err := mustJSON(req)
	if err != nil {
		return nil, err
	}
	var out api.Explanation
	if err := c.evaluate(ctx, api.ContractPolicy, "Explain", &out, arg); err != nil {
		return nil, err
	}
	return &out, nil
}
