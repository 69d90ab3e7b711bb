package automation

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/policy/condition"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// heaviestValidCondition is a condition whose worst-case cost is as close to
// the per-condition limit as a chain of comprehensions over reading.values
// gets, for tests of full rule sets at the limit.
func heaviestValidCondition(t testing.TB, e *Evaluator) string {
	t.Helper()
	term := func(i int) string { return fmt.Sprintf(`reading.values.exists(k, reading.values[k] == "x%d")`, i) }
	cond := term(0)
	for i := 1; ; i++ {
		next := cond + " || " + term(i)
		if _, err := e.conditions.Check(next); err != nil {
			return cond
		}
		cond = next
	}
}

// largestReading carries reading.MaxValues numbers, the most a reading
// carries (64 strings of the longest length would not fit MaxPayloadBytes).
func largestReading() Input {
	values := make([]reading.Value, reading.MaxValues)
	for i := range values {
		values[i] = num(fmt.Sprintf("v%02d", i), float64(i), "")
	}
	return input(values...)
}

func TestValidateRefusesConditionsWhoseWorstCaseExceedsTheLimit(t *testing.T) {
	e := newEvaluator(t)
	cases := []struct{ name, cond string }{
		{"quadratic over reading.values", `reading.values.all(a, reading.values.all(b, a == b || reading.values[a] != reading.values[b]))`},
		{"cubic over reading.values", `reading.values.all(a, reading.values.all(b, reading.values.all(c, a + b + c != "")))`},
		{"quadratic over units and attributes", `reading.units.exists(u, device.attributes.exists(k, device.attributes[k].contains(reading.units[u])))`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := e.Validate(rule(tc.cond))
			var ve *ValidationError
			require.True(t, errors.As(err, &ve), "%v", err)
			require.Equal(t, "condition", ve.Field)
			require.Regexp(t, `^expression may cost up to [0-9]+ on the largest inputs, more than the limit of 10000 per condition$`, ve.Reason)
		})
	}
	// A single comprehension over the reading fits easily.
	require.NoError(t, e.Validate(rule(`reading.values.exists(k, reading.values[k] == 1.0)`)))
	require.NoError(t, e.Validate(rule(heaviestValidCondition(t, e))))
}

func TestHeaviestValidConditionStaysWithinItsEstimate(t *testing.T) {
	e := newEvaluator(t)
	cond := heaviestValidCondition(t, e)
	prg, err := e.conditions.Check(cond)
	require.NoError(t, err)
	require.LessOrEqual(t, prg.WorstCaseCost(), condition.MaxCost)
	require.Greater(t, prg.WorstCaseCost(), condition.MaxCost*9/10)

	b := condition.NewBudget(math.MaxUint64)
	holds, err := e.Holds(rule(cond), largestReading(), b)
	require.NoError(t, err)
	require.False(t, holds)
	require.Positive(t, b.Spent())
	require.LessOrEqual(t, b.Spent(), prg.WorstCaseCost())
}

func TestHoldsChargesTheBudgetAndFailsWhenItRunsOut(t *testing.T) {
	e := newEvaluator(t)
	r := rule(`reading.values.exists(k, reading.values[k] > 100.0)`)
	in := largestReading()

	probe := condition.NewBudget(math.MaxUint64)
	_, err := e.Holds(r, in, probe)
	require.NoError(t, err)
	cost := probe.Spent()

	b := condition.NewBudget(2 * cost)
	for range 2 {
		holds, err := e.Holds(r, in, b)
		require.NoError(t, err)
		require.False(t, holds)
	}
	_, err = e.Holds(r, in, b)
	require.ErrorIs(t, err, condition.ErrBudgetExhausted)
	require.True(t, strings.HasPrefix(err.Error(), "rule cold-chain-breach: evaluation budget of"), err.Error())

	// A condition that fails on its own is an ordinary error, charged what it ran.
	b = condition.NewBudget(math.MaxUint64)
	_, err = e.Holds(rule(`reading.values.nope > 1.0`), in, b)
	require.Error(t, err)
	require.NotErrorIs(t, err, condition.ErrBudgetExhausted)
	require.Positive(t, b.Spent())
}

func TestStoredConditionBeyondTheCheckStillEvaluatesUpToItsLimit(t *testing.T) {
	// A member running a modified chaincode can store a rule Validate
	// refuses. Holds evaluates it all the same, stops it at the
	// per-condition limit, and charges the budget what it ran.
	e := newEvaluator(t)
	hostile := api.Rule{ID: "hog", Owner: org1, Condition: `reading.values.all(a, reading.values.all(b, reading.values.all(c, a + b + c != "")))`}
	require.Error(t, e.Validate(hostile))
	b := condition.NewBudget(math.MaxUint64)
	_, err := e.Holds(hostile, largestReading(), b)
	var ee *condition.EvalError
	require.True(t, errors.As(err, &ee), "%v", err)
	require.True(t, ee.CostExceeded)
	require.Greater(t, b.Spent(), condition.MaxCost)
}
