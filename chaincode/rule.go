package chaincode

import (
	"fmt"
	"slices"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/automation"
	"github.com/iotledger/iotledger/chaincode/policy"
	"github.com/iotledger/iotledger/chaincode/policy/condition"
)

// TxEvalBudget is the CEL cost that all the conditions one transaction
// evaluates draw on together: every policy condition of its access
// decisions, every rule condition of every reading. It is what a
// one-reading batch needs in the worst case with valid rules and policies —
// the reading against a full rule set of its owner at the per-condition limit
// (automation.MaxRulesPerOrg × condition.MaxCost = 640,000) and its one
// access decision (at most policy.MaxDecisionCost = 640,000) — plus one more
// decision's worth of headroom (for a second decision, or client identities
// larger than the policy bounds assume): 1,920,000 units. A transaction that
// runs past it is refused with RESOURCE_EXHAUSTED; see docs/decisions.md,
// "Bounded work per transaction", for what that costs a peer.
const TxEvalBudget = automation.MaxRulesPerOrg*condition.MaxCost + 2*policy.MaxDecisionCost

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
	if err := t.ruleFits(r); err != nil {
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

// ruleFits refuses a new rule of an org that has MaxRulesPerOrg rules
// already; replacing one of them is fine.
func (t *txn) ruleFits(r api.Rule) error {
	kvs, err := scanOrgSet(t.l, kindRule, "rules", r.Owner, automation.MaxRulesPerOrg)
	if err != nil {
		return err
	}
	k, err := compositeKey(kindRule, r.Owner, r.ID)
	if err != nil {
		return err
	}
	if len(kvs) >= automation.MaxRulesPerOrg && !slices.ContainsFunc(kvs, func(e kv) bool { return e.Key == k }) {
		return api.Errorf(api.CodeResourceExhausted, fmt.Sprintf("%s has %d rules, the limit per org", r.Owner, len(kvs)))
	}
	return nil
}

// rulesOf loads an org's enabled rules once per transaction, in key order.
// An org with more than MaxRulesPerOrg rules, disabled ones included, has a
// rule set this chaincode did not write: the transaction is refused.
func (t *txn) rulesOf(owner string, cache map[string][]api.Rule) ([]api.Rule, error) {
	if rs, ok := cache[owner]; ok {
		return rs, nil
	}
	kvs, err := scanOrgSet(t.l, kindRule, "rules", owner, automation.MaxRulesPerOrg)
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

// scanOrgSet reads the documents of one kind an org owns (its rules or its
// policies), in key order, and refuses a set of more than limit with
// RESOURCE_EXHAUSTED. It reads at most limit+1 keys, however many there
// are: refusing a set that only a modified chaincode can have written costs
// no more than loading a full one. (A paginated query would say the same,
// but Fabric allows those only in read-only transactions.)
func scanOrgSet(l ledger, kind, what, owner string, limit int) ([]kv, error) {
	it, err := l.GetStateByPartialCompositeKey(kind, []string{owner})
	if err != nil {
		return nil, internal("querying "+kind, err)
	}
	defer closeQuery(it)
	var out []kv
	for it.HasNext() {
		if len(out) == limit {
			return nil, api.Errorf(api.CodeResourceExhausted, fmt.Sprintf(
				"%s has more than %d %s, the limit per org: this chaincode did not store them all", owner, limit, what))
		}
		r, err := it.Next()
		if err != nil {
			return nil, internal("iterating world state", err)
		}
		out = append(out, kv{Key: r.GetKey(), Value: r.GetValue()})
	}
	return out, nil
}
