// Package policy is the access-policy engine of iotledger: it validates
// policies and decides whether a principal may perform an action on a
// resource. It is pure Go plus CEL, with no Fabric dependency, so the
// chaincode enforces it inside every transaction and a hub can run the very
// same code for a local pre-check.
//
// Decision order:
//  1. A policy applies only to resources owned by its owner org, and only
//     while the request time is inside its validity window [NotBefore, NotAfter).
//  2. A matching deny statement denies, whatever else matches (including the
//     owner-org defaults).
//  3. Otherwise the owner-org default of the principal's role, or a matching
//     allow statement, allows.
//  4. Otherwise the request is denied.
//
// A statement matches when one of its principals, one of its actions and one
// of its resources match and its condition is true. A condition that cannot be
// evaluated (error, cost limit, non-boolean) is false for an allow statement
// and true for a deny statement: the engine fails closed.
//
// Conditions draw on the caller's condition.Budget. A decision the budget
// cannot pay for is no decision: Decide and Explain return a
// RESOURCE_EXHAUSTED error naming the owner org, as they do for a stored
// policy beyond the limits Validate enforces (which a member can write by
// running another chaincode behind its own peer).
//
// Everything is deterministic: time comes from the request (the transaction
// timestamp), policies are considered in ID order, and CEL maps iterate in
// sorted key order.
package policy

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/policy/condition"
)

const timeLayout = time.RFC3339Nano

// Engine validates policies and decides access. It holds the CEL environment
// and a bounded cache of compiled conditions, and is safe for concurrent use.
type Engine struct {
	conditions *condition.Compiler
}

// NewEngine builds an engine. Conditions see the variables principal,
// resource and request.
func NewEngine() (*Engine, error) {
	c, err := condition.NewCompiler(variables()...)
	if err != nil {
		return nil, err
	}
	return &Engine{conditions: c}, nil
}

// Resource is what an action is performed on: a device, described by the
// fields of its ledger record. Owner is the MSP ID of the owning org; with an
// empty Owner no policy and no default applies.
type Resource struct {
	ID         string            `json:"id"`
	Owner      string            `json:"owner"`
	Type       string            `json:"type,omitempty"`
	Status     string            `json:"status,omitempty"`
	Groups     []string          `json:"groups,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// ResourceOf describes a device as a resource.
func ResourceOf(d api.Device) Resource {
	return Resource{
		ID: d.ID, Owner: d.Owner, Type: d.Type, Status: string(d.Status),
		Groups: d.Groups, Attributes: d.Attributes,
	}
}

// DevicePrincipal describes a device acting as principal (for example the
// sender of a device-to-device message). Its MSPID is the device's owner org.
func DevicePrincipal(d api.Device) api.Principal {
	return api.Principal{MSPID: d.Owner, Device: d.ID, Groups: d.Groups, Attrs: d.Attributes}
}

// Request is one access question.
type Request struct {
	Principal api.Principal  // from the caller's certificate, or a device principal
	Action    string         // e.g. api.ActionTelemetryRead
	Resource  Resource       // the device acted on
	Time      time.Time      // the transaction timestamp
	Context   map[string]any // extra request attributes visible to conditions
}

// Decide answers a request. It is exactly the decision of Explain.
// Conditions draw on budget (nil: no budget beyond each condition's limit).
func (e *Engine) Decide(req Request, policies []api.Policy, budget *condition.Budget) (api.Decision, error) {
	x, err := e.evaluate(req, policies, budget)
	return x.Decision, err
}

// Explain answers a request and says how every statement of every policy was
// evaluated and which default, if any, applied.
func (e *Engine) Explain(req Request, policies []api.Policy, budget *condition.Budget) (api.Explanation, error) {
	return e.evaluate(req, policies, budget)
}

// Authorize returns nil when Decide allows the request, an ACCESS_DENIED
// error carrying the decision's reason when it does not, and Decide's error
// when there is no decision.
func (e *Engine) Authorize(req Request, policies []api.Policy, budget *condition.Budget) error {
	d, err := e.Decide(req, policies, budget)
	if err != nil {
		return err
	}
	if d.Allowed {
		return nil
	}
	return api.Errorf(api.CodeAccessDenied, d.Reason)
}

// evaluate is the one code path behind Decide and Explain.
func (e *Engine) evaluate(req Request, policies []api.Policy, budget *condition.Budget) (api.Explanation, error) {
	owner := req.Resource.Owner
	exp := api.Explanation{
		Principal:  req.Principal,
		Owner:      owner,
		Default:    defaultGrant(req.Principal, owner, req.Action),
		Statements: []api.StatementResult{},
	}
	vars := &conditionVars{req: req}

	ordered := make([]api.Policy, len(policies))
	copy(ordered, policies)
	sort.SliceStable(ordered, func(i, j int) bool { return ordered[i].ID < ordered[j].ID })

	for _, p := range ordered {
		if err := withinLimits(p); err != nil {
			return api.Explanation{}, err
		}
	}

	var deny, allow *api.StatementResult
	for _, p := range ordered {
		skip := ""
		switch {
		case owner == "" || p.Owner != owner:
			skip = fmt.Sprintf("not the owner's policy: owned by %s, the resource is owned by %s", orNone(p.Owner), orNone(owner))
		case p.NotBefore != nil && req.Time.Before(*p.NotBefore):
			skip = fmt.Sprintf("policy not yet in force at %s: valid from %s", req.Time.UTC().Format(timeLayout), p.NotBefore.UTC().Format(timeLayout))
		case p.NotAfter != nil && !req.Time.Before(*p.NotAfter):
			skip = fmt.Sprintf("policy no longer in force at %s: valid until %s", req.Time.UTC().Format(timeLayout), p.NotAfter.UTC().Format(timeLayout))
		}
		for i, st := range p.Statements {
			r := api.StatementResult{PolicyID: p.ID, Sid: st.Sid, Index: i, Effect: st.Effect}
			if skip != "" {
				r.Why = skip
			} else {
				var err error
				r.Matched, r.Why, err = e.matchStatement(st, req, vars, budget)
				if err != nil {
					return api.Explanation{}, api.Errorf(api.CodeResourceExhausted, fmt.Sprintf(
						"evaluating the access policies of %s (policy %s statement %s): %v", owner, p.ID, statementName(r), err))
				}
			}
			exp.Statements = append(exp.Statements, r)
			if r.Matched {
				switch {
				case st.Effect == api.Deny && deny == nil:
					deny = &api.StatementResult{PolicyID: r.PolicyID, Sid: r.Sid, Index: r.Index, Effect: r.Effect, Why: r.Why}
				case st.Effect == api.Allow && allow == nil:
					allow = &api.StatementResult{PolicyID: r.PolicyID, Sid: r.Sid, Index: r.Index, Effect: r.Effect, Why: r.Why}
				}
			}
		}
	}

	switch {
	case deny != nil:
		exp.Decision = api.Decision{
			Allowed: false, Effect: api.Deny, PolicyID: deny.PolicyID, Sid: deny.Sid,
			Reason: fmt.Sprintf("denied by policy %s statement %s: %s", deny.PolicyID, statementName(*deny), deny.Why),
		}
	case exp.Default != "":
		exp.Decision = api.Decision{Allowed: true, Effect: api.Allow, Reason: "allowed by the owner-org default: " + exp.Default}
	case allow != nil:
		exp.Decision = api.Decision{
			Allowed: true, Effect: api.Allow, PolicyID: allow.PolicyID, Sid: allow.Sid,
			Reason: fmt.Sprintf("allowed by policy %s statement %s: %s", allow.PolicyID, statementName(*allow), allow.Why),
		}
	default:
		exp.Decision = api.Decision{
			Allowed: false, Effect: api.Deny,
			Reason: fmt.Sprintf("no statement allows %s on %s for %s; default deny outside the owner org",
				orNone(req.Action), describeResource(req.Resource), describePrincipal(req.Principal)),
		}
	}
	return exp, nil
}

// withinLimits refuses a stored policy with more statements or entries than
// Validate accepts: matching them is work no budget counts.
func withinLimits(p api.Policy) error {
	tooMany := func(what string, n, limit int) error {
		return api.Errorf(api.CodeResourceExhausted, fmt.Sprintf(
			"policy %s of %s has %d %s, more than the limit of %d: this chaincode did not store it", p.ID, orNone(p.Owner), n, what, limit))
	}
	if len(p.Statements) > MaxStatements {
		return tooMany("statements", len(p.Statements), MaxStatements)
	}
	for i, st := range p.Statements {
		for _, l := range [][]string{st.Principals, st.Actions, st.Resources} {
			if len(l) > MaxEntries {
				return tooMany(fmt.Sprintf("entries in a list of statements[%d]", i), len(l), MaxEntries)
			}
		}
	}
	return nil
}

// matchStatement reports whether a statement applies to the request, and
// why. Its error is the budget's: the statement's condition could not be paid for.
func (e *Engine) matchStatement(st api.Statement, req Request, vars *conditionVars, budget *condition.Budget) (bool, string, error) {
	if st.Effect != api.Allow && st.Effect != api.Deny {
		return false, fmt.Sprintf("effect %q is neither allow nor deny; statement ignored", st.Effect), nil
	}
	var why []string
	pm, ok := firstMatch(st.Principals, func(s string) bool { return principalMatches(s, req.Principal, req.Resource.Owner) })
	if !ok {
		return false, fmt.Sprintf("no principal matched %s", describePrincipal(req.Principal)), nil
	}
	why = append(why, "principal "+pm+" matched")
	am, ok := firstMatch(st.Actions, func(s string) bool { return actionMatches(s, req.Action) })
	if !ok {
		return false, strings.Join(append(why, "no action matched "+orNone(req.Action)), "; "), nil
	}
	why = append(why, "action "+am+" matched")
	rm, ok := firstMatch(st.Resources, func(s string) bool { return resourceMatches(s, req.Resource) })
	if !ok {
		return false, strings.Join(append(why, "no resource matched "+orNone(req.Resource.ID)), "; "), nil
	}
	why = append(why, "resource "+rm+" matched")
	if st.Condition == "" {
		return true, strings.Join(why, "; "), nil
	}
	holds, err := e.holds(st.Condition, vars, budget)
	switch {
	case errors.Is(err, condition.ErrBudgetExhausted):
		return false, "", err
	case err != nil && st.Effect == api.Deny:
		return true, strings.Join(append(why, "condition failed to evaluate ("+err.Error()+"); a deny statement fails closed, so it applies"), "; "), nil
	case err != nil:
		// The evaluation error is the statement's answer (it does not
		// apply), not a failure of the decision.
		return false, strings.Join(append(why, "condition failed to evaluate ("+err.Error()+"); an allow statement fails closed, so it does not apply"), "; "), nil //nolint:nilerr // see above
	case holds:
		return true, strings.Join(append(why, "condition true"), "; "), nil
	default:
		return false, strings.Join(append(why, "condition false"), "; "), nil
	}
}

func (e *Engine) holds(expr string, vars *conditionVars, budget *condition.Budget) (bool, error) {
	prg, err := e.conditions.Compile(expr)
	if err != nil {
		return false, fmt.Errorf("does not compile: %w", err)
	}
	activation, err := vars.activation()
	if err != nil {
		return false, err
	}
	return prg.Eval(activation, budget)
}

// DecisionCost is the most the conditions of policies can cost one access
// decision: the sum of their worst-case costs (a condition whose worst case
// is beyond the per-condition limit, which only a policy stored before its
// check can have, counts as the limit; one that does not compile, as 0).
func (e *Engine) DecisionCost(policies []api.Policy) uint64 {
	var sum uint64
	for _, p := range policies {
		for _, st := range p.Statements {
			if st.Condition == "" {
				continue
			}
			prg, err := e.conditions.Compile(st.Condition)
			if err != nil {
				continue
			}
			sum += min(prg.WorstCaseCost(), condition.MaxCost)
		}
	}
	return sum
}

func firstMatch(patterns []string, match func(string) bool) (string, bool) {
	for _, p := range patterns {
		if match(p) {
			return p, true
		}
	}
	return "", false
}

func statementName(r api.StatementResult) string {
	if r.Sid != "" {
		return r.Sid
	}
	return fmt.Sprintf("#%d", r.Index)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func describePrincipal(p api.Principal) string {
	if p.Device != "" {
		return fmt.Sprintf("device %s of %s", p.Device, orNone(p.MSPID))
	}
	s := "client " + orNone(api.ClientName(p.ClientID)) + " of " + orNone(p.MSPID)
	if p.Role != "" {
		s += " with role " + p.Role
	}
	return s
}

func describeResource(r Resource) string {
	return fmt.Sprintf("%s owned by %s", orNone(r.ID), orNone(r.Owner))
}
