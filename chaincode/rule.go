package chaincode

import (
	"slices"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/iotledger/iotledger/chaincode/api"
)

// RuleContract stores automation rules; the telemetry contract evaluates
// them. Transactions are addressed as "rule:<Tx>".
type RuleContract struct {
	contractapi.Contract
	e *engines
}

// GetEvaluateTransactions tags the read-only transactions "evaluate" in the
// chaincode metadata.
func (c *RuleContract) GetEvaluateTransactions() []string {
	return []string{"Get", "List"}
}

// Put creates or replaces a rule of the caller's org.
func (c *RuleContract) Put(ctx contractapi.TransactionContextInterface, ruleJSON string) (string, error) {
	var r api.Rule
	if err := decodeArg("rule", ruleJSON, &r); err != nil {
		return "", err
	}
	return submit(c.e, ctx, func(t *txn) (*api.Rule, *api.Event, error) { return t.putRule(r) })
}

// Get returns a rule: "<id>" of the caller's org or "<MSP ID>/<id>".
func (c *RuleContract) Get(ctx contractapi.TransactionContextInterface, id string) (string, error) {
	return evaluate(c.e, ctx, func(t *txn) (*api.Rule, error) {
		r, _, err := t.loadRule(id)
		return r, err
	})
}

// Delete removes a rule of the caller's org.
func (c *RuleContract) Delete(ctx contractapi.TransactionContextInterface, id string) error {
	_, err := submit(c.e, ctx, func(t *txn) (struct{}, *api.Event, error) { return t.deleteRule(id) })
	return err
}

// List returns one page of an org's rules (default: the caller's org).
func (c *RuleContract) List(ctx contractapi.TransactionContextInterface, query string) (string, error) {
	var q api.RuleQuery
	if err := decodeArg("rule query", query, &q); err != nil {
		return "", err
	}
	return evaluate(c.e, ctx, func(t *txn) (*api.RulePage, error) { return t.listRules(q) })
}

func (t *txn) putRule(r api.Rule) (*api.Rule, *api.Event, error) {
	r.Owner = t.caller.MSPID
	r.Version = 0
	r.UpdatedAt = t.now
	if err := t.eng.rules.Validate(r); err != nil {
		return nil, nil, invalidArg(err)
	}
	if err := t.authorize(api.ActionRuleManage, orgResource(r.Owner, "rule", r.ID)); err != nil {
		return nil, nil, err
	}
	if err := putOrgDoc(t, kindRule, r.Owner, r.ID, &r, func(r *api.Rule) *int { return &r.Version }); err != nil {
		return nil, nil, err
	}
	return &r, &api.Event{Type: api.EventRuleChanged, RuleID: r.ID}, nil
}

// loadRule reads a rule; like policies, rules are readable by every member.
func (t *txn) loadRule(ref string) (*api.Rule, string, error) {
	return loadOrgDoc[api.Rule](t, kindRule, "rule", ref)
}

func (t *txn) deleteRule(ref string) (struct{}, *api.Event, error) {
	r, k, err := t.loadRule(ref)
	if err != nil {
		return struct{}{}, nil, err
	}
	if err := t.authorize(api.ActionRuleManage, orgResource(r.Owner, "rule", r.ID)); err != nil {
		return struct{}{}, nil, err
	}
	if err := del(t.l, k); err != nil {
		return struct{}{}, nil, err
	}
	return struct{}{}, &api.Event{Type: api.EventRuleChanged, RuleID: r.ID}, nil
}

func (t *txn) listRules(q api.RuleQuery) (*api.RulePage, error) {
	rs, bookmark, err := listOrgDocs[api.Rule](t, kindRule, "rule", q.Owner, q.PageSize, q.Bookmark)
	if err != nil {
		return nil, err
	}
	return &api.RulePage{Rules: rs, Bookmark: bookmark}, nil
}

// rulesOf loads an org's enabled rules once per transaction, in key order.
func (t *txn) rulesOf(owner string, cache map[string][]api.Rule) ([]api.Rule, error) {
	if rs, ok := cache[owner]; ok {
		return rs, nil
	}
	kvs, err := scanAll(t.l, kindRule, owner)
	if err != nil {
		return nil, err
	}
	all, err := decodeOrgDocs[api.Rule](kvs, "rule")
	if err != nil {
		return nil, err
	}
	rs := slices.DeleteFunc(all, func(r api.Rule) bool { return r.Disabled })
	cache[owner] = rs
	return rs, nil
}
