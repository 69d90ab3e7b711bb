package chaincode

import (
	"encoding/json"
	"testing"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
)

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func (w *world) putRule(c caller, r api.Rule) (api.Rule, error) {
	out, err := w.invoke(c, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Rule.Put(ctx, jsonArg(w.t, r))
	})
	if err != nil {
		return api.Rule{}, err
	}
	var got api.Rule
	require.NoError(w.t, jsonUnmarshal(out, &got))
	return got, nil
}

func hotRule(id string, actions ...api.RuleAction) api.Rule {
	return api.Rule{ID: id, Selector: api.DeviceSelector{Types: []string{"fridge"}}, Condition: "reading.values.temperature > 8.0", Actions: actions}
}

func TestRuleCRUD(t *testing.T) {
	w := newWorld(t)
	r := hotRule("too-warm", api.RuleAction{Type: api.ActionTypeAlert, Severity: api.SeverityWarning, Message: "warm"})
	r.Owner = "Org2MSP"
	got, err := w.putRule(org1Operator, r)
	require.NoError(t, err)
	require.Equal(t, "Org1MSP", got.Owner)
	require.Equal(t, 1, got.Version)
	require.Equal(t, api.EventRuleChanged, w.lastEvent.Type)
	require.Equal(t, "too-warm", w.lastEvent.RuleID)
	require.Equal(t, []string{"Org1MSP"}, w.endorsers(ckey(t, kindRule, "Org1MSP", "too-warm")))
	got, err = w.putRule(org1Operator, r)
	require.NoError(t, err)
	require.Equal(t, 2, got.Version)

	g := must[api.Rule](w, org2Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Rule.Get(ctx, "Org1MSP/too-warm")
	})
	require.Equal(t, got, g)
	page := must[api.RulePage](w, org1Auditor, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Rule.List(ctx, `{"pageSize":10}`)
	})
	require.Equal(t, []api.Rule{got}, page.Rules)

	refused(t, w, org2Operator, api.CodeAccessDenied, "rule:manage", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return "", w.c.Rule.Delete(ctx, "Org1MSP/too-warm")
	})
	_, err = w.invoke(org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return "", w.c.Rule.Delete(ctx, "too-warm")
	})
	require.NoError(t, err)
	require.Equal(t, api.EventRuleChanged, w.lastEvent.Type)
	refused(t, w, org1Operator, api.CodeNotFound, "does not exist", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Rule.Get(ctx, "too-warm")
	})
}

func TestRulePutRefusesInvalidRulesAndCallers(t *testing.T) {
	w := newWorld(t)
	ok := hotRule("r", api.RuleAction{Type: api.ActionTypeAlert, Severity: api.SeverityInfo})
	bad := func(mut func(*api.Rule)) string {
		r := ok
		mut(&r)
		return jsonArg(t, r)
	}
	cases := []struct {
		name     string
		who      caller
		arg      string
		code     api.Code
		contains string
	}{
		{"not JSON", org1Operator, "x", api.CodeInvalidArgument, "rule is not valid JSON"},
		{"bad condition", org1Operator, bad(func(r *api.Rule) { r.Condition = "reading.values.temperature >" }), api.CodeInvalidArgument, "condition"},
		{"no actions", org1Operator, bad(func(r *api.Rule) { r.Actions = nil }), api.CodeInvalidArgument, "actions"},
		{"bad severity", org1Operator, bad(func(r *api.Rule) { r.Actions = []api.RuleAction{{Type: api.ActionTypeAlert, Severity: "meh"}} }), api.CodeInvalidArgument, "severity"},
		{"negative cooldown", org1Operator, bad(func(r *api.Rule) { r.CooldownSeconds = -1 }), api.CodeInvalidArgument, "cooldownSeconds"},
		{"hub may not manage rules", org1Hub, jsonArg(t, ok), api.CodeAccessDenied, "rule:manage"},
		{"auditor may not manage rules", org1Auditor, jsonArg(t, ok), api.CodeAccessDenied, "rule:manage"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			refused(t, w, tc.who, tc.code, tc.contains, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Rule.Put(ctx, tc.arg)
			})
		})
	}
	refused(t, w, org1Operator, api.CodeInvalidArgument, "unknown field", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Rule.List(ctx, `{"nope":true}`)
	})
	refused(t, w, org1Operator, api.CodeInvalidArgument, "owner", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Rule.List(ctx, `{"owner":"?"}`)
	})
	refused(t, w, org1Operator, api.CodeInvalidArgument, "pageSize", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Rule.List(ctx, `{"pageSize":-5}`)
	})
	refused(t, w, org1Operator, api.CodeInvalidArgument, "rule id", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return "", w.c.Rule.Delete(ctx, "")
	})
}
