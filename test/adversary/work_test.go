package adversary_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/test/adversary/rawgw"
)

// Under MAJORITY every org's peer runs every other org's transactions, so
// one org's rules are work done by all. What one transaction may cost is
// bounded, whoever wrote the rules and however.

// A condition whose worst case (three nested loops over up to 64 values)
// is far beyond the evaluation limit.
func TestRuleConditionWithHugeWorstCaseCostIsRefusedWhenStored(t *testing.T) {
	e := env(t)
	ctx := e.ctx(t)
	id := "cost-" + unique()
	_, err := e.org2Operator.PutRule(ctx, api.Rule{ID: id, Selector: api.DeviceSelector{Devices: []string{"cost-dev-" + id}},
		Condition: `reading.values.all(a, reading.values.all(b, reading.values.all(c, a != b || b != c)))`,
		Actions:   []api.RuleAction{{Type: api.ActionTypeAlert, Severity: api.SeverityInfo, Message: "never"}}})
	requireRefused(t, err, api.CodeInvalidArgument, "cost")
	_, err = e.org2Operator.Rule(ctx, id)
	requireRefused(t, err, api.CodeNotFound)
}

// heavyCondition is cheap to write and stopped by the evaluation limit
// (about 10,000 units) on a reading with 24 values: 24³ string
// concatenations.
const heavyCondition = `reading.values.all(a, reading.values.all(b, reading.values.all(c, a + b + c != "")))`

// Org2 plants 40 rules whose conditions each run to the evaluation limit,
// rewriting its own rule records past the contracts' checks, and then
// submits a batch of 100 readings: Org1's honest peer must not do
// 40 × 100 evaluations to the limit.
func TestHeavyRulesWrittenBehindTheChaincodesBackCannotExhaustEndorsers(t *testing.T) {
	e := env(t)
	ctx := e.ctx(t)
	sfx := unique()
	h := newDevice(t, "heavy")
	e.enroll(ctx, t, e.org2Operator, h, api.EnrollRequest{Type: "meter"})

	// New keys need both orgs' endorsement, so the rules are created
	// honestly (with a harmless condition) and then rewritten: a change of
	// an existing Org2 key needs only Org2's peer.
	const rules = 40
	ids := make([]string, rules)
	for i := range ids {
		ids[i] = fmt.Sprintf("heavy-%s-%02d", sfx, i)
	}
	// One at a time, each on every peer before the next: a rule:Put reads
	// the org's rules, so concurrent puts fail as phantom reads, and an
	// endorser that lags a block reads a different set (the endorsements
	// would not match).
	for _, id := range ids {
		_, err := e.org2Operator.PutRule(ctx, api.Rule{ID: id, Selector: api.DeviceSelector{Devices: []string{h.id}},
			Condition: "reading.seq < 0",
			Actions:   []api.RuleAction{{Type: api.ActionTypeAlert, Severity: api.SeverityInfo, Message: "planted"}}})
		require.NoError(t, err, "rule %s", id)
		e.settle(t)
	}
	heavy := make(map[string]string, rules)
	for _, id := range ids {
		heavy[id] = string(withField(t, e.hostileGet(t, ruleKey(t, "Org2MSP", id)), "condition", heavyCondition))
	}
	attacker := e.raw(t, "Org2", "operator")
	inParallel(t, ids, func(id string) error {
		key, err := shim.CreateCompositeKey("rule", []string{"Org2MSP", id})
		if err != nil {
			return err
		}
		_, code, _, err := attacker.Invoke(ctx, rawgw.Proposal{Function: "hostile:Put", Args: []string{key, heavy[id]}}, "Org2MSP")
		if err == nil && code != peer.TxValidationCode_VALID {
			err = fmt.Errorf("rewriting rule %s committed as %s", id, code)
		}
		return err
	})
	e.settle(t)
	planted, err := e.org1Operator.Rule(ctx, "Org2MSP/"+ids[0])
	require.NoError(t, err)
	require.Equal(t, heavyCondition, planted.Condition, "Org1's peer holds the rewritten rule")

	values := make([]reading.Value, 24)
	for i := range values {
		values[i] = num(fmt.Sprintf("v%02d", i), float64(i))
	}
	batch := make([]reading.Envelope, 100)
	for i := range batch {
		batch[i] = h.reading(t, values...)
	}
	hub := e.connect(t, "Org2", "hub", client.WithTimeouts(client.Timeouts{Endorse: 5 * time.Minute}))
	_, err = hub.SubmitBatch(ctx, api.BatchRequest{Readings: batch})
	requireRefused(t, err, api.CodeResourceExhausted)
	e.settle(t)
	require.Empty(t, e.hostileGet(t, replayKey(t, h.id)), "no reading accepted")
}

// inParallel runs f for every item, a few at a time, and fails the test
// with every error.
func inParallel(t *testing.T, items []string, f func(item string) error) {
	t.Helper()
	sem := make(chan struct{}, 4)
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = f(it)
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
}
