package chaincode

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/automation"
	"github.com/iotledger/iotledger/chaincode/policy"
	"github.com/iotledger/iotledger/chaincode/policy/condition"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// Bounded work per transaction (docs/decisions.md): per-org caps on rules
// and policies, the static cost check, and the evaluation budget.

func TestConditionBoundsMirrorTheDeviceRecordLimits(t *testing.T) {
	require.Equal(t, maxGroups, policy.MaxDeviceGroups)
	require.Equal(t, maxAttributes, policy.MaxDeviceAttributes)
	require.Equal(t, maxAttributeValue, policy.MaxAttributeValue)
	require.Equal(t, maxFirmware, policy.MaxFirmware)
	require.Equal(t, uint64(1_920_000), TxEvalBudget)
}

func alertRule(id, cond string) api.Rule {
	return api.Rule{ID: id, Condition: cond, Actions: []api.RuleAction{{Type: api.ActionTypeAlert, Severity: api.SeverityInfo}}}
}

// heaviestCondition chains comprehensions onto tail while the result still
// passes the static check of validate, and returns the longest such chain.
func heaviestCondition(t *testing.T, term func(i int) string, tail string, validate func(cond string) error) string {
	t.Helper()
	best := ""
	cond := tail
	for i := 0; ; i++ {
		cond = term(i) + " || " + cond
		if validate(cond) != nil {
			require.NotEmpty(t, best, "not even one term fits")
			return best
		}
		best = cond
	}
}

// writeDirectly stores a document under an org's key the way a member
// running a modified chaincode behind its own peer can: no validation. A
// policy goes into the org's policy set, where the chaincode keeps them.
func (w *world) writeDirectly(kind, owner, id string, doc any) {
	w.t.Helper()
	if p, ok := doc.(api.Policy); ok && kind == kindPolicy {
		w.writePolicyIntoSet(owner, p)
		return
	}
	b, err := json.Marshal(doc)
	require.NoError(w.t, err)
	w.state[ckey(w.t, kind, owner, id)] = b
}

// wideReading signs the device's next reading with reading.MaxValues values.
func (d *testDevice) wideReading(t *testing.T) reading.Envelope {
	t.Helper()
	d.seq++
	values := make([]reading.Value, reading.MaxValues)
	for i := range values {
		v := float64(i)
		values[i] = reading.Value{Name: fmt.Sprintf("v%02d", i), Number: &v}
	}
	env, err := d.signer.SignReading(reading.Payload{Device: d.id, Seq: d.seq, Timestamp: 1_700_000_000_000 + int64(d.seq), Values: values})
	require.NoError(t, err)
	return env
}

func TestTheRuleBeyondTheLimitOfAnOrgIsRefused(t *testing.T) {
	w := newWorld(t)
	for i := range automation.MaxRulesPerOrg {
		_, err := w.putRule(org1Operator, alertRule(fmt.Sprintf("r%02d", i), "true"))
		require.NoError(t, err)
	}
	refused(t, w, org1Operator, api.CodeResourceExhausted, "Org1MSP has 64 rules, the limit per org", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Rule.Put(ctx, jsonArg(t, alertRule("one-more", "true")))
	})
	// Replacing a rule is fine, and so is another org's first rule.
	got, err := w.putRule(org1Operator, alertRule("r07", "false"))
	require.NoError(t, err)
	require.Equal(t, 2, got.Version)
	_, err = w.putRule(org2Operator, alertRule("one-more", "true"))
	require.NoError(t, err)
	// Deleting one makes room again.
	_, err = w.invoke(org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return "", w.c.Rule.Delete(ctx, "r00")
	})
	require.NoError(t, err)
	_, err = w.putRule(org1Operator, alertRule("one-more", "true"))
	require.NoError(t, err)
}

func TestThePolicyBeyondTheLimitOfAnOrgIsRefused(t *testing.T) {
	w := newWorld(t)
	for i := range policy.MaxPoliciesPerOrg {
		_, err := w.putPolicy(org1Operator, grant(fmt.Sprintf("p%02d", i), []string{"msp:Org2MSP"}, []string{api.ActionDeviceRead}, []string{"*"}))
		require.NoError(t, err)
	}
	refused(t, w, org1Operator, api.CodeResourceExhausted, "Org1MSP has 64 policies, the limit per org", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Policy.Put(ctx, jsonArg(t, grant("one-more", []string{"*"}, []string{api.ActionDeviceRead}, []string{"*"})))
	})
	got, err := w.putPolicy(org1Operator, grant("p63", []string{"*"}, []string{api.ActionDeviceRead}, []string{"*"}))
	require.NoError(t, err)
	require.Equal(t, 2, got.Version)
}

func TestStatementConditionsBeyondTheStaticCheckAreRefused(t *testing.T) {
	w := newWorld(t)
	p := grant("p", []string{"*"}, []string{api.ActionDeviceRead}, []string{"*"})
	p.Statements[0].Condition = `resource.attributes.all(a, resource.attributes.all(b, resource.attributes.all(c, a + b + c != "")))`
	refused(t, w, org1Operator, api.CodeInvalidArgument, "statements[0].condition: expression may cost up to", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Policy.Put(ctx, jsonArg(t, p))
	})
	r := alertRule("r", `reading.values.all(a, reading.values.all(b, reading.values[a] != reading.values[b] || a == b))`)
	refused(t, w, org1Operator, api.CodeInvalidArgument, "condition: expression may cost up to", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Rule.Put(ctx, jsonArg(t, r))
	})
	_, err := w.putRule(org1Operator, r)
	require.Regexp(t, `^INVALID_ARGUMENT: invalid rule: condition: expression may cost up to [0-9]+ on the largest inputs, more than the limit of 10000 per condition$`, err.Error())
}

// worstCaseDevice enrolls an active device of org1 with the most and
// longest attributes enrolment accepts.
func (w *world) worstCaseDevice(id string) *testDevice {
	w.t.Helper()
	s := newKey(w.t, reading.ECDSAP256)
	attrs := make(map[string]string, policy.MaxDeviceAttributes)
	for i := range policy.MaxDeviceAttributes {
		attrs[fmt.Sprintf("a%02d", i)] = strings.Repeat("v", policy.MaxAttributeValue)
	}
	req := api.EnrollRequest{ID: id, Type: "fridge", PublicKey: s.Public().PEM(), Activate: true, Attributes: attrs}
	must[api.Device](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Enroll(ctx, jsonArg(w.t, req))
	})
	return &testDevice{id: id, signer: s}
}

// fillPolicies stores policies of org1 whose conditions (all evaluated by
// every telemetry:write decision on org1's devices) are as costly as fits in
// one expression, until the next one would take the org's policies past
// MaxDecisionCost; it returns how many conditions it stored.
func fillPolicies(t *testing.T, w *world, ev *policy.Engine) int {
	t.Helper()
	term := func(i int) string {
		return fmt.Sprintf(`resource.attributes.exists(k, resource.attributes[k] == "x%d")`, i)
	}
	validate := func(cond string) error {
		p := grant("probe", []string{"*"}, []string{api.ActionTelemetryWrite}, []string{"*"})
		p.Statements[0].Condition = cond
		return ev.Validate(p)
	}
	cond := heaviestCondition(t, term, "false", validate)
	n := 0
	for i := 0; ; i++ {
		p := api.Policy{ID: fmt.Sprintf("costly-%02d", i)}
		for j := range policy.MaxStatements {
			p.Statements = append(p.Statements, api.Statement{Sid: fmt.Sprintf("s%02d", j), Effect: api.Allow,
				Principals: []string{"*"}, Actions: []string{api.ActionTelemetryWrite}, Resources: []string{"*"}, Condition: cond})
		}
		_, err := w.putPolicy(org1Operator, p)
		if err != nil {
			require.Equal(t, api.CodeResourceExhausted, api.CodeOf(err), "%v", err)
			require.Regexp(t, `with policy costly-[0-9]+, the conditions of the policies of Org1MSP may cost up to [0-9]+ per access decision, the limit per org is 640000`, err.Error())
			// Fill the rest with single statements.
			for j := range policy.MaxStatements {
				p.Statements = p.Statements[:len(p.Statements)-1]
				if _, err := w.putPolicy(org1Operator, p); err == nil {
					return n + policy.MaxStatements - 1 - j
				}
			}
			return n
		}
		n += policy.MaxStatements
	}
}

func TestOneReadingAgainstFullRuleAndPolicySetsAtTheLimitIsAccepted(t *testing.T) {
	w := newWorld(t)
	d := w.worstCaseDevice("d1")
	pe, err := policy.NewEngine()
	require.NoError(t, err)
	conditions := fillPolicies(t, w, pe)
	require.Greater(t, conditions, 100, "costly policy conditions of org1")

	re, err := automation.NewEvaluator()
	require.NoError(t, err)
	// Every rule runs its whole chain over all 64 values, then fires.
	term := func(i int) string { return fmt.Sprintf(`reading.values.exists(k, reading.values[k] == "x%d")`, i) }
	cond := heaviestCondition(t, term, "true", func(c string) error { return re.Validate(alertRule("probe", c)) })
	for i := range automation.MaxRulesPerOrg {
		_, err := w.putRule(org1Operator, alertRule(fmt.Sprintf("heavy-%02d", i), cond))
		require.NoError(t, err)
	}

	receipt := must[api.BatchReceipt](w, org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: []reading.Envelope{d.wideReading(t)}}))
	})
	require.Equal(t, automation.MaxRulesPerOrg, receipt.Alerts, "every rule was evaluated")

	// The same against three readings is more than one transaction may
	// evaluate: refused whole, for the hub to split.
	refused(t, w, org1Hub, api.CodeResourceExhausted, "the rules of Org1MSP exhausted the transaction's evaluation budget at rule heavy-", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: []reading.Envelope{d.wideReading(t), d.wideReading(t), d.wideReading(t)}}))
	})
}

// hog runs to the per-condition limit over any reading with a few values;
// only a modified chaincode stores it.
const hog = `reading.values.all(a, reading.values.all(b, reading.values.all(c, a + b + c != "")))`

func TestBatchWhoseRulesExhaustTheBudgetIsRefusedAndWritesNothing(t *testing.T) {
	w := newWorld(t)
	d := w.enroll(org1Operator, "d1", "fridge")
	for i := range 20 {
		w.writeDirectly(kindRule, "Org1MSP", fmt.Sprintf("hog-%02d", i), api.Rule{ID: fmt.Sprintf("hog-%02d", i), Owner: "Org1MSP", Condition: hog,
			Actions: []api.RuleAction{{Type: api.ActionTypeAlert, Severity: api.SeverityCritical}}})
	}
	wide := func() reading.Envelope { return d.wideReading(t) }
	batch := make([]reading.Envelope, 100)
	for i := range batch {
		batch[i] = wide()
	}
	// 20 rules at the limit cost about 200,000 units a reading: the budget
	// of 1,920,000 runs out at the tenth reading.
	refused(t, w, org1Hub, api.CodeResourceExhausted, "reading 9 (device d1 seq 10): the rules of Org1MSP exhausted the transaction's evaluation budget at rule hog-", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: batch}))
	})
	_, err := w.submitBatch(org1Hub, batch...)
	require.Regexp(t, `rule hog-[0-9]+ \(evaluation budget of 1920000 cost units exhausted \([0-9]+ spent\)\); submit fewer readings per batch$`, err.Error())

	// One reading is within the budget: its rules are evaluated (and fail
	// at their own limit, so they do not fire).
	receipt := must[api.BatchReceipt](w, org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: []reading.Envelope{wide()}}))
	})
	require.Equal(t, 1, receipt.Size)
	require.Zero(t, receipt.Alerts)
}

func TestRuleSetBeyondTheLimitIsRefusedWithAnEarlyStop(t *testing.T) {
	w := newWorld(t)
	d := w.enroll(org1Operator, "d1", "fridge")
	for i := range automation.MaxRulesPerOrg + 50 {
		r := alertRule(fmt.Sprintf("r%03d", i), "true")
		r.Owner = "Org1MSP"
		w.writeDirectly(kindRule, "Org1MSP", r.ID, r)
	}
	refused(t, w, org1Hub, api.CodeResourceExhausted, "Org1MSP has more than 64 rules, the limit per org", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: []reading.Envelope{d.reading(t, 1)}}))
	})
	refused(t, w, org1Operator, api.CodeResourceExhausted, "Org1MSP has more than 64 rules", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Rule.Put(ctx, jsonArg(t, alertRule("r000", "true")))
	})
	// Another org's devices are not affected.
	o := w.enroll(org2Operator, "o1", "fridge")
	_, err := w.submitBatch(org2Hub, o.reading(t, 1))
	require.NoError(t, err)
}

func TestPoliciesThatExhaustTheBudgetRefuseTheTransaction(t *testing.T) {
	w := newWorld(t)
	groups := make([]string, policy.MaxDeviceGroups)
	for i := range groups {
		groups[i] = fmt.Sprintf("g%02d", i)
	}
	d := w.enroll(org1Operator, "d1", "fridge", groups...)
	// 8 × 32 conditions that run to the limit over the device's 16 groups:
	// 2,560,000 units for any decision on it.
	for i := range 8 {
		p := api.Policy{ID: fmt.Sprintf("hog-%d", i), Owner: "Org1MSP"}
		for j := range policy.MaxStatements {
			p.Statements = append(p.Statements, api.Statement{Sid: fmt.Sprintf("s%02d", j), Effect: api.Deny, Principals: []string{"*"},
				Actions: []string{"*"}, Resources: []string{"*"}, Condition: `resource.groups.all(a, resource.groups.all(b, resource.groups.all(c, a + b + c != "")))`})
		}
		w.writeDirectly(kindPolicy, "Org1MSP", p.ID, p)
	}
	refused(t, w, org1Hub, api.CodeResourceExhausted, "reading 0 (device d1 seq 1): evaluating the access policies of Org1MSP (policy hog-5 statement s", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: []reading.Envelope{d.reading(t, 1)}}))
	})
	refused(t, w, org2Operator, api.CodeResourceExhausted, "evaluating the access policies of Org1MSP", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Policy.Explain(ctx, `{"action":"device:read","resource":"d1"}`)
	})
}

func TestPolicySetBeyondTheLimitIsRefused(t *testing.T) {
	w := newWorld(t)
	d := w.enroll(org1Operator, "d1", "fridge")
	for i := range policy.MaxPoliciesPerOrg + 1 {
		p := grant(fmt.Sprintf("p%02d", i), []string{"*"}, []string{api.ActionDeviceRead}, []string{"*"})
		p.Owner = "Org1MSP"
		w.writeDirectly(kindPolicy, "Org1MSP", p.ID, p)
	}
	refused(t, w, org1Hub, api.CodeResourceExhausted, "Org1MSP has more than 64 policies, the limit per org", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: []reading.Envelope{d.reading(t, 1)}}))
	})
}

func TestAccessRequestContextIsBounded(t *testing.T) {
	w := newWorld(t)
	w.enroll(org1Operator, "d1", "fridge")
	ctx := map[string]any{}
	for i := range policy.MaxContextEntries + 1 {
		ctx[fmt.Sprintf("k%03d", i)] = 1.0
	}
	refused(t, w, org1Operator, api.CodeInvalidArgument, "request context: context has 129 entries, the limit is 128", func(tc contractapi.TransactionContextInterface) (string, error) {
		return w.c.Policy.CheckAccess(tc, jsonArg(t, api.AccessRequest{Action: api.ActionDeviceRead, Resource: "d1", Context: ctx}))
	})
}

// BenchmarkEvaluationBudget measures, through the contract on the fake
// world, the endorsement of a one-reading batch against a full rule set at
// the per-condition limit (accepted), and of a batch whose stored rules run
// the budget out (refused): the most CEL work one transaction can make a
// peer do. See docs/decisions.md, "Bounded work per transaction".
func BenchmarkEvaluationBudget(b *testing.B) {
	b.Run("one-reading-64-rules-at-the-limit", func(b *testing.B) {
		t := &testing.T{}
		w := newWorld(t)
		d := w.enroll(org1Operator, "d1", "fridge")
		re, err := automation.NewEvaluator()
		require.NoError(b, err)
		term := func(i int) string { return fmt.Sprintf(`reading.values.exists(k, reading.values[k] == "x%d")`, i) }
		cond := heaviestCondition(t, term, "false", func(c string) error { return re.Validate(alertRule("probe", c)) })
		for i := range automation.MaxRulesPerOrg {
			_, err := w.putRule(org1Operator, alertRule(fmt.Sprintf("heavy-%02d", i), cond))
			require.NoError(b, err)
		}
		envs := make([]reading.Envelope, b.N)
		for i := range envs {
			envs[i] = d.wideReading(t)
		}
		// What the rules cost one reading, in units.
		r, err := envs[0].Decode()
		require.NoError(b, err)
		units := condition.NewBudget(math.MaxUint64)
		for range automation.MaxRulesPerOrg {
			_, err := re.Holds(alertRule("heavy", cond), automation.Input{Reading: r.Payload, Device: w.getDevice("d1")}, units)
			require.NoError(b, err)
		}
		b.ResetTimer()
		for i := range b.N {
			if _, err := w.submitBatch(org1Hub, envs[i]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(units.Spent()), "units/op")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(units.Spent()), "ns/unit")
	})
	b.Run("batch-refused-at-the-budget", func(b *testing.B) {
		t := &testing.T{}
		w := newWorld(t)
		d := w.enroll(org1Operator, "d1", "fridge")
		for i := range 20 {
			id := fmt.Sprintf("hog-%02d", i)
			w.writeDirectly(kindRule, "Org1MSP", id, api.Rule{ID: id, Owner: "Org1MSP", Condition: hog,
				Actions: []api.RuleAction{{Type: api.ActionTypeAlert, Severity: api.SeverityCritical}}})
		}
		batch := make([]reading.Envelope, 100)
		for i := range batch {
			batch[i] = d.wideReading(t)
		}
		b.ResetTimer()
		for range b.N {
			if _, err := w.submitBatch(org1Hub, batch...); api.CodeOf(err) != api.CodeResourceExhausted {
				b.Fatal(err)
			}
		}
		// The budget and the evaluation that overdrew it.
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(TxEvalBudget+condition.MaxCost), "ns/unit")
	})
}
