package client

import (
	"context"

	"github.com/iotledger/iotledger/chaincode/api"
)

// PutRule creates or replaces an automation rule of the caller's org.
func (c *Client) PutRule(ctx context.Context, r api.Rule) (*api.Rule, error) {
	arg, err := mustJSON(r)
	if err != nil {
		return nil, err
	}
	var out api.Rule
	if err := c.submit(ctx, api.ContractRule, "Put", &out, arg); err != nil {
		return nil, err
	}
	return &out, nil
}

// Rule reads one rule.
func (c *Client) Rule(ctx context.Context, id string) (*api.Rule, error) {
	var out api.Rule
	if err := c.evaluate(ctx, api.ContractRule, "Get", &out, id); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListRules reads one page of rules.
func (c *Client) ListRules(ctx context.Context, q api.RuleQuery) (*api.RulePage, error) {
	arg, err := mustJSON(q)
	if err != nil {
		return nil, err
	}
	var out api.RulePage
	if err := c.evaluate(ctx, api.ContractRule, "List", &out, arg); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteRule removes a rule of the caller's org.
func (c *Client) DeleteRule(ctx context.Context, id string) error {
	return c.submit(ctx, api.ContractRule, "Delete", nil, id)
}
