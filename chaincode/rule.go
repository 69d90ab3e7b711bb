package chaincode

import (
	"encoding/json"
	"fmt"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
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
	k, err := compositeKey(kindRule, r.Owner, r.ID)
	if err != nil {
		return nil, nil, err
	}
	var old api.Rule
	if _, err := getJSON(t.l, k, &old); err != nil {
		return nil, nil, err
	}
	r.Version = old.Version + 1
	if err := putJSON(t.l, k, r); err != nil {
		return nil, nil, err
	}
	if err := restrictTo(t.l, []string{r.Owner}, k); err != nil {
		return nil, nil, err
	}
	return &r, &api.Event{Type: api.EventRuleChanged, RuleID: r.ID}, nil
}

// loadRule reads a rule; like policies, rules are readable by every member.
func (t *txn) loadRule(ref string) (*api.Rule, string, error) {
	owner, id, err := t.splitRef("rule", ref)
	if err != nil {
		return nil, "", err
	}
	k, err := compositeKey(kindRule, owner, id)
	if err != nil {
		return nil, "", err
	}
	var r api.Rule
	ok, err := getJSON(t.l, k, &r)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return nil, "", api.Errorf(api.CodeNotFound, fmt.Sprintf("rule %q of %s does not exist", id, owner))
	}
	return &r, k, nil
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
	size, err := pageSize(q.PageSize)
	if err != nil {
		return nil, err
	}
	owner := q.Owner
	if owner == "" {
		owner = t.caller.MSPID
	}
	if err := reading.ValidateID("owner", owner); err != nil {
		return nil, invalidArg(err)
	}
	kvs, bookmark, err := scanPage(t.l, kindRule, []string{owner}, size, q.Bookmark)
	if err != nil {
		return nil, err
	}
	page := &api.RulePage{Rules: make([]api.Rule, 0, len(kvs)), Bookmark: bookmark}
	for _, e := range kvs {
		var r api.Rule
		if err := json.Unmarshal(e.Value, &r); err != nil {
			return nil, internal("decoding stored rule", err)
		}
		page.Rules = append(page.Rules, r)
	}
	return page, nil
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
	rs := make([]api.Rule, 0, len(kvs))
	for _, e := range kvs {
		var r api.Rule
		if err := json.Unmarshal(e.Value, &r); err != nil {
			return nil, internal("decoding stored rule", err)
		}
		if !r.Disabled {
			rs = append(rs, r)
		}
	}
	cache[owner] = rs
	return rs, nil
}
