package chaincode

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/policy"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// PolicyContract stores access policies and answers access questions with
// the same engine every transaction enforces. Transactions are addressed as
// "policy:<Tx>".
type PolicyContract struct {
	contractapi.Contract
	e *engines
}

// GetEvaluateTransactions tags the read-only transactions "evaluate" in the
// chaincode metadata.
func (c *PolicyContract) GetEvaluateTransactions() []string {
	return []string{"Get", "List", "CheckAccess", "Explain"}
}

// Put creates or replaces a policy of the caller's org.
func (c *PolicyContract) Put(ctx contractapi.TransactionContextInterface, policyJSON string) (string, error) {
	var p api.Policy
	if err := decodeArg("policy", policyJSON, &p); err != nil {
		return "", err
	}
	return submit(c.e, ctx, func(t *txn) (*api.Policy, *api.Event, error) { return t.putPolicy(p) })
}

// Get returns a policy: "<id>" of the caller's org or "<MSP ID>/<id>".
func (c *PolicyContract) Get(ctx contractapi.TransactionContextInterface, id string) (string, error) {
	return evaluate(c.e, ctx, func(t *txn) (*api.Policy, error) {
		return t.loadPolicy(id)
	})
}

// Delete removes a policy of the caller's org ("<id>" or "<MSP ID>/<id>").
func (c *PolicyContract) Delete(ctx contractapi.TransactionContextInterface, id string) error {
	_, err := submit(c.e, ctx, func(t *txn) (struct{}, *api.Event, error) { return t.deletePolicy(id) })
	return err
}

// List returns one page of an org's policies (default: the caller's org).
func (c *PolicyContract) List(ctx contractapi.TransactionContextInterface, query string) (string, error) {
	var q api.PolicyQuery
	if err := decodeArg("policy query", query, &q); err != nil {
		return "", err
	}
	return evaluate(c.e, ctx, func(t *txn) (*api.PolicyPage, error) { return t.listPolicies(q) })
}

// CheckAccess says whether the caller (or a device) may do an action on a device.
func (c *PolicyContract) CheckAccess(ctx contractapi.TransactionContextInterface, request string) (string, error) {
	var r api.AccessRequest
	if err := decodeArg("access request", request, &r); err != nil {
		return "", err
	}
	return evaluate(c.e, ctx, func(t *txn) (*api.Decision, error) {
		x, err := t.explainAccess(r)
		if err != nil {
			return nil, err
		}
		return &x.Decision, nil
	})
}

// Explain is CheckAccess with the evaluation of every statement.
func (c *PolicyContract) Explain(ctx contractapi.TransactionContextInterface, request string) (string, error) {
	var r api.AccessRequest
	if err := decodeArg("access request", request, &r); err != nil {
		return "", err
	}
	return evaluate(c.e, ctx, func(t *txn) (*api.Explanation, error) { return t.explainAccess(r) })
}

// splitRef reads "<id>" (the caller's org) or "<owner MSP ID>/<id>". Ids
// never contain "/", so the form is unambiguous.
func (t *txn) splitRef(what, ref string) (owner, id string, err error) {
	owner, id = t.caller.MSPID, ref
	if i := strings.IndexByte(ref, '/'); i >= 0 {
		owner, id = ref[:i], ref[i+1:]
		if err := reading.ValidateID(what+" owner", owner); err != nil {
			return "", "", invalidArg(err)
		}
	}
	if err := reading.ValidateID(what+" id", id); err != nil {
		return "", "", invalidArg(err)
	}
	return owner, id, nil
}

func (t *txn) putPolicy(p api.Policy) (*api.Policy, *api.Event, error) {
	p.Owner = t.caller.MSPID
	p.Version = 0
	p.UpdatedAt = t.now
	if err := t.eng.policies.Validate(p); err != nil {
		return nil, nil, invalidArg(err)
	}
	if err := t.authorize(api.ActionPolicyManage, orgResource(p.Owner, "policy", p.ID)); err != nil {
		return nil, nil, err
	}
	if err := t.policyFits(p); err != nil {
		return nil, nil, err
	}
	set, err := t.orgPolicySet(p.Owner)
	if err != nil {
		return nil, nil, err
	}
	old, _ := set.find(p.ID)
	p.Version = old.Version + 1
	next := slices.DeleteFunc(slices.Clone(set.policies), func(q api.Policy) bool { return q.ID == p.ID })
	i, _ := slices.BinarySearchFunc(next, p.ID, func(q api.Policy, id string) int { return strings.Compare(q.ID, id) })
	next = slices.Insert(next, i, p)
	if err := t.savePolicySet(set, next, true); err != nil {
		return nil, nil, err
	}
	return &p, &api.Event{Type: api.EventPolicyChanged, PolicyID: p.ID}, nil
}

// policyFits refuses a new policy of an org that has MaxPoliciesPerOrg
// policies already (replacing one of them is fine), and a policy with which
// the conditions of the org's policies could cost one access decision more
// than MaxDecisionCost (their worst cases add up: every statement may match).
func (t *txn) policyFits(p api.Policy) error {
	ps, err := t.policies(p.Owner)
	if err != nil {
		return err
	}
	others := slices.DeleteFunc(slices.Clone(ps), func(q api.Policy) bool { return q.ID == p.ID })
	if len(others) >= policy.MaxPoliciesPerOrg {
		return api.Errorf(api.CodeResourceExhausted, fmt.Sprintf("%s has %d policies, the limit per org", p.Owner, len(others)))
	}
	if cost := t.eng.policies.DecisionCost(append(others, p)); cost > policy.MaxDecisionCost {
		return api.Errorf(api.CodeResourceExhausted, fmt.Sprintf(
			"with policy %s, the conditions of the policies of %s may cost up to %d per access decision, the limit per org is %d",
			p.ID, p.Owner, cost, policy.MaxDecisionCost))
	}
	return nil
}

// loadPolicy reads a policy. Policies are readable by every channel member:
// the world state is replicated to every member's peer anyway, and knowing
// who has been granted what is what an audit needs.
func (t *txn) loadPolicy(ref string) (*api.Policy, error) {
	owner, id, err := t.splitRef("policy", ref)
	if err != nil {
		return nil, err
	}
	set, ok, err := t.storedPolicySet(owner)
	if err != nil {
		return nil, err
	}
	if !ok {
		p, _, err := loadOrgDoc[api.Policy](t, kindPolicy, "policy", ref)
		return p, err
	}
	p, ok := set.find(id)
	if !ok {
		return nil, api.Errorf(api.CodeNotFound, fmt.Sprintf("policy %q of %s does not exist", id, owner))
	}
	return &p, nil
}

func (t *txn) deletePolicy(ref string) (struct{}, *api.Event, error) {
	p, err := t.loadPolicy(ref)
	if err != nil {
		return struct{}{}, nil, err
	}
	if err := t.authorize(api.ActionPolicyManage, orgResource(p.Owner, "policy", p.ID)); err != nil {
		return struct{}{}, nil, err
	}
	set, err := t.orgPolicySet(p.Owner)
	if err != nil {
		return struct{}{}, nil, err
	}
	next := slices.DeleteFunc(slices.Clone(set.policies), func(q api.Policy) bool { return q.ID == p.ID })
	if err := t.savePolicySet(set, next, true); err != nil {
		return struct{}{}, nil, err
	}
	return struct{}{}, &api.Event{Type: api.EventPolicyChanged, PolicyID: p.ID}, nil
}

// listPolicies reads one page of an org's policies in ID order. The
// bookmark of a policy set's listing is the ID the next page starts at.
func (t *txn) listPolicies(q api.PolicyQuery) (*api.PolicyPage, error) {
	owner := q.Owner
	if owner == "" {
		owner = t.caller.MSPID
	}
	if err := reading.ValidateID("owner", owner); err != nil {
		return nil, invalidArg(err)
	}
	set, ok, err := t.storedPolicySet(owner)
	if err != nil {
		return nil, err
	}
	if !ok {
		ps, bookmark, err := listOrgDocs[api.Policy](t, kindPolicy, "policy", owner, q.PageSize, q.Bookmark)
		if err != nil {
			return nil, err
		}
		return &api.PolicyPage{Policies: ps, Bookmark: bookmark}, nil
	}
	size, err := pageSize(q.PageSize)
	if err != nil {
		return nil, err
	}
	if q.Bookmark != "" {
		if err := reading.ValidateID("bookmark", q.Bookmark); err != nil {
			return nil, api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("cannot list policies: %v (is the bookmark from an earlier page of the same listing?)", err))
		}
	}
	from, _ := slices.BinarySearchFunc(set.policies, q.Bookmark, func(p api.Policy, id string) int { return strings.Compare(p.ID, id) })
	to := min(from+int(size), len(set.policies))
	page := &api.PolicyPage{Policies: slices.Clone(set.policies[from:to])}
	if to < len(set.policies) {
		page.Bookmark = set.policies[to].ID
	}
	return page, nil
}

// explainAccess evaluates an access request about an enrolled device. The
// principal is the caller (from its certificate) or, with r.Device, that
// enrolled device.
func (t *txn) explainAccess(r api.AccessRequest) (*api.Explanation, error) {
	if r.Action == "" {
		return nil, api.Errorf(api.CodeInvalidArgument, "action is required, e.g. \""+api.ActionTelemetryRead+"\"")
	}
	if len(r.Action) > reading.MaxNameLength {
		return nil, api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("action is longer than %d bytes", reading.MaxNameLength))
	}
	if err := reading.ValidateID("resource", r.Resource); err != nil {
		return nil, invalidArg(err)
	}
	if err := policy.CheckContext(r.Context); err != nil {
		return nil, invalidArg(err)
	}
	principal := t.caller
	if r.Device != "" {
		pd, err := t.device(r.Device)
		if err != nil {
			return nil, err
		}
		principal = policy.DevicePrincipal(*pd)
	}
	d, err := t.device(r.Resource)
	if err != nil {
		return nil, err
	}
	ps, err := t.policies(d.Owner)
	if err != nil {
		return nil, err
	}
	x, err := t.eng.policies.Explain(t.request(principal, r.Action, deviceResource(d), r.Context), ps, t.budget)
	if err != nil {
		return nil, err
	}
	return &x, nil
}
