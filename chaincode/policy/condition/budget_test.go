package condition

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// boundedCompiler sees one variable v holding at most a list l of 64
// strings, a map m of 64 strings and a string s, each string of at most 256
// characters.
func boundedCompiler(t testing.TB) *Compiler {
	t.Helper()
	str := StringBound(256)
	c, err := NewCompiler(Variable{Name: "v", Bound: RecordBound(map[string]*Bound{
		"l": ListBound(64, str),
		"m": MapBound(64, StringBound(64), str),
		"s": str,
		"n": ScalarBound(),
	})})
	require.NoError(t, err)
	return c
}

// largest is an input at the bounds of boundedCompiler.
func largest() map[string]any {
	l := make([]any, 64)
	m := make(map[string]any, 64)
	for i := range l {
		l[i] = fmt.Sprintf("%0256d", i)
		m[fmt.Sprintf("%064d", i)] = fmt.Sprintf("%0256d", i)
	}
	return map[string]any{"l": l, "m": m, "s": strings.Repeat("s", 256), "n": 1.0}
}

func TestCheckRefusesConditionsWhoseWorstCaseExceedsTheLimit(t *testing.T) {
	c := boundedCompiler(t)
	cases := []struct{ name, expr string }{
		{"quadratic over a map", `v.m.all(a, v.m.all(b, a == b || v.m[a] != v.m[b]))`},
		{"cubic over a list", `v.l.all(a, v.l.all(b, v.l.all(c, a + b + c != "")))`},
		{"quadratic substring search", `v.l.exists(a, v.l.exists(b, a.contains(b)))`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prg, err := c.Compile(tc.expr)
			require.NoError(t, err, "Compile keeps accepting what a stored condition may hold")
			require.Greater(t, prg.WorstCaseCost(), MaxCost)

			_, err = c.Check(tc.expr)
			var ce *CompileError
			require.True(t, errors.As(err, &ce), "%v", err)
			require.Equal(t, fmt.Sprintf("expression may cost up to %d on the largest inputs, more than the limit of %d per condition", prg.WorstCaseCost(), MaxCost), ce.Error())
		})
	}
}

func TestCheckAcceptsBoundedConditionsThatFitTheLimit(t *testing.T) {
	c := boundedCompiler(t)
	in, err := Value(largest())
	require.NoError(t, err)
	for _, expr := range []string{
		`v.n > 3`,
		`v.s.startsWith("ss") && size(v.s) == 256`,
		`v.m.exists(k, v.m[k] == "x")`,
		`v.l.all(a, a.contains("1"))`,
		`"x" in v.l`,
		`string(v.n) == "1"`,
	} {
		prg, err := c.Check(expr)
		require.NoError(t, err, expr)
		require.LessOrEqual(t, prg.WorstCaseCost(), MaxCost, expr)
		// The estimate bounds what the largest input actually costs.
		b := NewBudget(math.MaxUint64)
		_, err = prg.Eval(map[string]any{"v": in}, b)
		require.NoError(t, err, expr)
		require.LessOrEqual(t, b.Spent(), prg.WorstCaseCost(), expr)
	}
}

func TestCheckRefusesWhatItCannotBound(t *testing.T) {
	c := boundedCompiler(t)
	_, err := c.Check(`v.l.map(a, string(size(a))).exists(x, x.contains(v.s))`)
	require.ErrorContains(t, err, "worst-case cost cannot be estimated")
	require.ErrorContains(t, err, "the limit is 10000 per condition")

	// Without bounds, Check refuses only what Compile refuses.
	u := newCompiler(t)
	_, err = u.Check(`v.l.all(a, v.l.all(b, a != b))`)
	require.NoError(t, err)
}

func TestEvalChargesTheBudgetItsActualCost(t *testing.T) {
	c := boundedCompiler(t)
	in, err := Value(largest())
	require.NoError(t, err)
	vars := map[string]any{"v": in}
	prg, err := c.Compile(`v.m.exists(k, v.m[k] == "x")`)
	require.NoError(t, err)

	unlimited := NewBudget(math.MaxUint64)
	_, err = prg.Eval(vars, unlimited)
	require.NoError(t, err)
	cost := unlimited.Spent()
	require.Positive(t, cost)

	b := NewBudget(3*cost + cost/2)
	for range 3 {
		ok, err := prg.Eval(vars, b)
		require.NoError(t, err)
		require.False(t, ok)
	}
	require.Equal(t, 3*cost, b.Spent())
	require.Equal(t, cost/2, b.Remaining())
	require.False(t, b.Exhausted())

	// The fourth evaluation runs, but the budget cannot pay for it: no result.
	_, err = prg.Eval(vars, b)
	require.ErrorIs(t, err, ErrBudgetExhausted)
	var be *BudgetError
	require.True(t, errors.As(err, &be))
	require.Equal(t, b.Limit(), be.Limit)
	require.Equal(t, 4*cost, be.Spent)
	require.Equal(t, fmt.Sprintf("evaluation budget of %d cost units exhausted (%d spent)", b.Limit(), 4*cost), err.Error())
	require.True(t, b.Exhausted())
	require.Zero(t, b.Remaining())

	// Once exhausted, every later evaluation fails too, even a free one.
	free, err := c.Compile(`true`)
	require.NoError(t, err)
	_, err = free.Eval(vars, b)
	require.ErrorIs(t, err, ErrBudgetExhausted)

	// Without a budget only the per-condition limit applies.
	_, err = prg.Eval(vars, nil)
	require.NoError(t, err)
}

func TestEvaluationStoppedAtTheConditionLimitIsChargedWhatItRan(t *testing.T) {
	c := newCompiler(t)
	prg, err := c.Compile(`v.l.all(a, v.l.all(b, v.l.all(c, a + b + c != "")))`)
	require.NoError(t, err)
	list := make([]any, 100)
	for i := range list {
		list[i] = fmt.Sprint(i)
	}
	in, err := Value(map[string]any{"l": list})
	require.NoError(t, err)
	b := NewBudget(math.MaxUint64)
	_, err = prg.Eval(map[string]any{"v": in}, b)
	var ee *EvalError
	require.True(t, errors.As(err, &ee))
	require.True(t, ee.CostExceeded)
	require.Greater(t, b.Spent(), MaxCost)
	require.Less(t, b.Spent(), MaxCost+100, "stopped at the first step past the limit")
}

func TestOperatorsOnDynamicOperandsAreChargedByLength(t *testing.T) {
	// The variables are map(string, dyn): which "+" or "<" runs is chosen
	// at evaluation. It is charged as the static estimate assumed, with the
	// operands' length, not as one operation.
	c := boundedCompiler(t)
	in, err := Value(largest())
	require.NoError(t, err)
	for _, tc := range []struct {
		expr string
		want uint64
	}{
		{`v.s + v.s == "x"`, 4 + 52 + 1},          // v.s twice, concatenation of 512 characters, equality
		{`v.l[0] + v.s == "x"`, 5 + 52 + 1},       // index
		{`v.l[0] < v.s`, 5 + 26},                  // comparison over the shorter operand
		{`v.n + 1.0 > 2.0`, 2 + 1 + 1},            // numbers: constant
		{`size(v.l + v.l) == 128`, 4 + 1 + 1 + 1}, // lists concatenate in constant time
	} {
		prg, err := c.Compile(tc.expr)
		require.NoError(t, err, tc.expr)
		b := NewBudget(math.MaxUint64)
		_, err = prg.Eval(map[string]any{"v": in}, b)
		require.NoError(t, err, tc.expr)
		require.Equal(t, tc.want, b.Spent(), tc.expr)
		require.LessOrEqual(t, b.Spent(), prg.WorstCaseCost(), tc.expr)
	}
}

func TestBudgetChargeSaturates(t *testing.T) {
	b := NewBudget(10)
	require.NoError(t, b.charge(10))
	require.False(t, b.Exhausted())
	require.Error(t, b.charge(math.MaxUint64))
	require.Equal(t, uint64(math.MaxUint64), b.Spent())
	require.Error(t, b.charge(0))
}

// The CPU a cost unit stands for, by the shape of the expression, over the
// largest input of boundedCompiler. ns/unit = ns/op ÷ units/op; see
// docs/decisions.md, "Bounded work per transaction", for the numbers.
func BenchmarkCostUnit(b *testing.B) {
	c := boundedCompiler(b)
	in, err := Value(largest())
	if err != nil {
		b.Fatal(err)
	}
	vars := map[string]any{"v": in}
	for _, bc := range []struct{ name, expr string }{
		{"scalar-compare", `v.n > 3.0 && v.n < 5.0 && v.n != 4.0`},
		{"map-exists", `v.m.exists(k, v.m[k] == "x")`},
		{"list-all-contains", `v.l.all(a, a.contains("1"))`},
		{"map-map-build-lists", `v.m.map(k, v.m[k]).size() == v.l.map(a, a).size() + 1`},
		{"map-filter", `v.m.filter(k, v.m[k] > "0").size() > 0`},
		{"regex", `v.l.exists(a, a.matches("^0*[1-9]+x$"))`},
		{"string-concat", `v.l.exists(a, a + v.s == "x")`},
	} {
		prg, err := c.Compile(bc.expr)
		if err != nil {
			b.Fatal(err)
		}
		probe := NewBudget(math.MaxUint64)
		if _, err := prg.Eval(vars, probe); err != nil {
			b.Fatalf("%s: %v", bc.expr, err)
		}
		units := float64(probe.Spent())
		b.Run(bc.name, func(b *testing.B) {
			budget := NewBudget(math.MaxUint64)
			for b.Loop() {
				if _, err := prg.Eval(vars, budget); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(units, "units/op")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/units, "ns/unit")
		})
	}
}
