package policy

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/policy/condition"
)

func TestValidateRefusesConditionsWhoseWorstCaseExceedsTheLimit(t *testing.T) {
	e := newEngine(t)
	for _, cond := range []string{
		`principal.attrs.exists(k, resource.attributes.exists(j, principal.attrs[k] == resource.attributes[j]))`,
		`request.context.all(a, request.context.all(b, a != b))`,
		`resource.groups.all(a, resource.groups.all(b, resource.groups.all(c, a + b + c != "")))`,
	} {
		p := validPolicy()
		p.Statements[0].Condition = cond
		err := e.Validate(p)
		var ve *ValidationError
		require.True(t, errors.As(err, &ve), "%v", err)
		require.Equal(t, "statements[0].condition", ve.Field)
		require.Regexp(t, `^expression may cost up to [0-9]+ on the largest inputs, more than the limit of 10000 per condition$`, ve.Reason)
	}
	p := validPolicy()
	p.Statements[0].Condition = `request.context.exists(k, request.context[k] == "audit") && "cold-chain" in resource.groups`
	require.NoError(t, e.Validate(p))
}

// costly is a condition that runs to the per-condition limit over a
// principal with 200 groups (beyond what the static check assumes).
const costly = `principal.groups.all(a, principal.groups.all(b, principal.groups.all(c, a + b + c != "")))`

func manyGroups() api.Principal {
	p := client(org2, api.RoleAuditor)
	p.Groups = make([]string, 200)
	for i := range p.Groups {
		p.Groups[i] = fmt.Sprintf("g%03d", i)
	}
	return p
}

func TestDecisionThatRunsOutOfBudgetIsNoDecision(t *testing.T) {
	e := newEngine(t)
	sts := make([]api.Statement, 8)
	for i := range sts {
		sts[i] = stmt(api.Allow, ss("*"), ss("*"), ss("*"), costly)
		sts[i].Sid = fmt.Sprintf("s%d", i)
	}
	policies := []api.Policy{pol("hog", org1, sts...)}
	r := req(manyGroups(), api.ActionTelemetryRead)

	// Without a budget, each condition stops at its limit and fails closed.
	d, err := e.Decide(r, policies, nil)
	require.NoError(t, err)
	require.False(t, d.Allowed)

	// With room for three evaluations, the fourth ends the decision.
	b := condition.NewBudget(3*condition.MaxCost + 3*100)
	_, err = e.Decide(r, policies, b)
	require.Equal(t, api.CodeResourceExhausted, api.CodeOf(err), "%v", err)
	require.Contains(t, err.Error(), "evaluating the access policies of Org1MSP (policy hog statement s3): evaluation budget of 30300 cost units exhausted")
	require.True(t, b.Exhausted())

	_, err = e.Explain(r, policies, condition.NewBudget(condition.MaxCost))
	require.Equal(t, api.CodeResourceExhausted, api.CodeOf(err), "%v", err)
	require.Contains(t, err.Error(), "statement s0")
	err = e.Authorize(r, policies, condition.NewBudget(condition.MaxCost))
	require.Equal(t, api.CodeResourceExhausted, api.CodeOf(err), "%v", err)

	// A budget that suffices is charged what the conditions cost.
	b = condition.NewBudget(math.MaxUint64)
	_, err = e.Decide(r, policies, b)
	require.NoError(t, err)
	require.Greater(t, b.Spent(), 8*condition.MaxCost)
}

func TestStoredPolicyBeyondTheLimitsIsRefused(t *testing.T) {
	e := newEngine(t)
	many := make([]api.Statement, MaxStatements+1)
	for i := range many {
		many[i] = stmt(api.Allow, ss("*"), ss("*"), ss("*"), "")
	}
	wide := stmt(api.Allow, make([]string, MaxEntries+1), ss("*"), ss("*"), "")
	for i := range wide.Principals {
		wide.Principals[i] = fmt.Sprintf("msp:Org%dMSP", i)
	}
	for _, tc := range []struct {
		p    api.Policy
		want string
	}{
		{pol("long", org1, many...), "policy long of Org1MSP has 33 statements, more than the limit of 32: this chaincode did not store it"},
		{pol("wide", org1, wide), "policy wide of Org1MSP has 17 entries in a list of statements[0], more than the limit of 16"},
	} {
		_, err := e.Decide(req(client(org2, api.RoleAuditor), api.ActionTelemetryRead), []api.Policy{tc.p}, nil)
		require.Equal(t, api.CodeResourceExhausted, api.CodeOf(err), "%v", err)
		require.Contains(t, err.Error(), tc.want)
	}
}

func TestRequestContextIsBounded(t *testing.T) {
	nest := func(depth int) map[string]any {
		m := map[string]any{"leaf": "x"}
		for range depth - 1 {
			m = map[string]any{"k": m}
		}
		return m
	}
	wide := map[string]any{}
	for i := range MaxContextEntries + 1 {
		wide[fmt.Sprintf("k%03d", i)] = true
	}
	total := map[string]any{}
	for i := range 100 {
		total[fmt.Sprintf("k%03d", i)] = []any{1.0, 2.0, 3.0, 4.0, 5.0}
	}
	for _, tc := range []struct {
		name string
		ctx  map[string]any
		err  string
	}{
		{"nil", nil, ""},
		{"claims", map[string]any{"ticket": "INC-1", "level": 2.0, "tags": []any{"a", "b"}, "who": map[string]any{"team": "ops"}}, ""},
		{"deepest", nest(MaxContextDepth), ""},
		{"too deep", nest(MaxContextDepth + 1), "request context: context.k.k.k.k nests deeper than 4 levels"},
		{"too wide", wide, "request context: context has 129 entries, the limit is 128"},
		{"too many values", total, "request context: more than 512 values"},
		{"long string", map[string]any{"s": strings.Repeat("x", MaxContextString+1)}, "request context: context.s must be UTF-8 of at most 256 bytes"},
		{"long key", map[string]any{strings.Repeat("k", MaxContextKey+1): 1.0}, "request context: a key of context is longer than 64 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckContext(tc.ctx)
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tc.err)
		})
	}

	// A condition over a context beyond the limits fails closed.
	e := newEngine(t)
	r := req(client(org2, api.RoleAuditor), api.ActionTelemetryRead)
	r.Context = wide
	x := explain(t, e, r, []api.Policy{pol("p", org1, stmt(api.Allow, ss("*"), ss("*"), ss("*"), `true`))})
	require.False(t, x.Decision.Allowed)
	require.Contains(t, x.Statements[0].Why, "condition failed to evaluate (request context: context has 129 entries")
}

func TestDecisionCostAddsTheWorstCasesOfAllConditions(t *testing.T) {
	e := newEngine(t)
	cheap := `resource.attributes.zone == "a"`
	loop := `request.context.exists(k, request.context[k] == "x")`
	cost := func(expr string) uint64 {
		prg, err := e.conditions.Compile(expr)
		require.NoError(t, err)
		return prg.WorstCaseCost()
	}
	policies := []api.Policy{
		pol("a", org1, stmt(api.Allow, ss("*"), ss("*"), ss("*"), cheap), stmt(api.Deny, ss("*"), ss("*"), ss("*"), "")),
		pol("b", org1, stmt(api.Allow, ss("*"), ss("*"), ss("*"), loop), stmt(api.Allow, ss("*"), ss("*"), ss("*"), cheap)),
		// Stored by another chaincode: beyond the check counts as the
		// limit, a condition that does not compile never runs.
		pol("c", org1, stmt(api.Allow, ss("*"), ss("*"), ss("*"), costly), stmt(api.Allow, ss("*"), ss("*"), ss("*"), "nonsense(")),
	}
	require.Equal(t, 2*cost(cheap)+cost(loop)+condition.MaxCost, e.DecisionCost(policies))
	require.Zero(t, e.DecisionCost(nil))
}
