package condition

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/stretchr/testify/require"
)

func newCompiler(t testing.TB) *Compiler {
	t.Helper()
	c, err := NewCompiler(Variable{Name: "v"})
	require.NoError(t, err)
	return c
}

func eval(t *testing.T, c *Compiler, expr string, in any) (bool, error) {
	t.Helper()
	prg, err := c.Compile(expr)
	require.NoError(t, err)
	v, err := Value(in)
	require.NoError(t, err)
	return prg.Eval(map[string]any{"v": v}, nil)
}

func TestCompileRefusesWhatCannotBeEvaluatedSafely(t *testing.T) {
	c := newCompiler(t)
	deep := strings.Repeat("(", 40) + "true" + strings.Repeat(")", 40)
	cases := []struct {
		name, expr, reason string
	}{
		{"empty", "  ", "expression is empty"},
		{"invalid utf-8", "v.a == \"\xff\"", "not valid UTF-8"},
		{"too long", "true ||" + strings.Repeat(" ", MaxLength), "more than the limit of 1024"},
		{"syntax", "v.a ==", "Syntax error"},
		{"undeclared", "other.a == 1", "undeclared reference to 'other'"},
		{"not bool", "v.a", "yields dyn, not bool"},
		{"int", "1 + 2", "yields int, not bool"},
		{"map literal", `{"b": 1, "a": 2}.map(k, k)[0] == "a"`, "map literals are not allowed"},
		{"message literal", `google.protobuf.Timestamp{seconds: 1} > timestamp("2020-01-01T00:00:00Z")`, "message literals are not allowed"},
		{"zone name", `v.t.getHours("America/New_York") == 1`, "fixed UTC offset"},
		{"zone from input", `v.t.getHours(v.zone) == 1`, "fixed UTC offset"},
		{"too deep", deep, "recursion"},
		{"too many nodes", strings.Repeat("v.l.all(a,a)&&", 70) + "true", "exceeds"},
		{"certainly too costly", "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1].map(a, [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1].map(b, [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1].map(c, a+b+c))).size() > 0", "costs at least"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prg, err := c.Compile(tc.expr)
			require.Nil(t, prg)
			var ce *CompileError
			require.True(t, errors.As(err, &ce), "%v", err)
			require.Contains(t, ce.Error(), tc.reason)
			require.NotContains(t, ce.Error(), "\n")
		})
	}
}

func TestFixedOffsetsAndUTCAreAccepted(t *testing.T) {
	c := newCompiler(t)
	at := time.Date(2025, 1, 2, 23, 30, 0, 0, time.UTC)
	in := map[string]any{"t": at}
	for expr, want := range map[string]bool{
		`v.t.getHours() == 23`:                    true,
		`v.t.getHours("UTC") == 23`:               true,
		`v.t.getHours("+02:00") == 1`:             true,
		`v.t.getDayOfMonth("-01:00") == 1`:        true,
		`v.t.getFullYear() == 2025`:               true,
		`v.t > timestamp("2025-01-01T00:00:00Z")`: true,
	} {
		got, err := eval(t, c, expr, in)
		require.NoError(t, err, expr)
		require.Equal(t, want, got, expr)
	}
}

func TestMapsIterateInSortedKeyOrder(t *testing.T) {
	c := newCompiler(t)
	m := map[string]any{}
	for i := range 300 {
		m[fmt.Sprintf("key-%03d", i)] = float64(i)
	}
	in := map[string]any{"m": m, "s": map[string]string{"b": "2", "a": "1", "c": "3"}}

	cm, err := Value(m)
	require.NoError(t, err)
	it := cm.(*sortedMap).Iterator()
	for i := 0; it.HasNext() == types.True; i++ {
		require.Equal(t, types.String(fmt.Sprintf("key-%03d", i)), it.Next())
	}

	for range 50 {
		for _, expr := range []string{`v.m.map(k, k)[0] == "key-000"`, `v.m.map(k, k)[150] == "key-150"`, `v.m.map(k, k)[299] == "key-299"`, `v.s.map(k, v.s[k]) == ["1", "2", "3"]`, `v.m.all(k, v.m[k] >= 0)`, `v.m.exists(k, k == "key-150")`, `v.m.exists_one(k, v.m[k] == 7.0)`, `v.m.filter(k, v.m[k] < 2.0) == ["key-000", "key-001"]`} {
			got, err := eval(t, c, expr, in)
			require.NoError(t, err, expr)
			require.True(t, got, expr)
		}
	}
}

func TestSortedMapBehavesLikeAMap(t *testing.T) {
	c := newCompiler(t)
	in := map[string]any{"m": map[string]any{"a": 1.0, "b": "x"}, "e": map[string]any{}}
	got, err := eval(t, c, `size(v.m) == 2 && "a" in v.m && !("z" in v.m) && v.m.a == 1 && v.m == v.m && v.e.map(k, k) == [] && has(v.m.b) && !has(v.m.c)`, in)
	require.NoError(t, err)
	require.True(t, got)

	it := Map(map[string]ref.Val{"a": types.True}).(*sortedMap).Iterator()
	require.Equal(t, types.String("a"), it.Next())
	require.Nil(t, it.Next())
	require.Equal(t, types.False, it.HasNext())
	require.Equal(t, types.IteratorType, it.Type())
	require.Nil(t, it.Value())
	require.True(t, types.IsError(it.Equal(types.True)))
	require.True(t, types.IsError(it.ConvertToType(types.StringType)))
	_, err = it.ConvertToNative(nil)
	require.Error(t, err)
}

func TestValueConvertsJSONLikeInput(t *testing.T) {
	c := newCompiler(t)
	var decoded map[string]any
	require.NoError(t, json.Unmarshal([]byte(`{"n": 2, "f": 2.5, "s": "x", "b": true, "z": null, "l": [1, "a", {"k": false}], "o": {"p": {"q": 1}}}`), &decoded))
	in := map[string]any{
		"json": decoded, "i": 3, "i32": int32(4), "i64": int64(5), "u32": uint32(6), "u64": uint64(7),
		"f32": float32(1.5), "num": json.Number("8.5"), "d": 90 * time.Second, "ss": []string{"a", "b"},
		"sm": map[string]string{"k": "v"}, "v": types.String("ref"),
	}
	got, err := eval(t, c, `v.json.n == 2 && v.json.f > 2 && v.json.s == "x" && v.json.b && v.json.z == null && v.json.l[2].k == false && v.json.o.p.q == 1 &&
		v.i == 3 && v.i32 == 4 && v.i64 == 5 && v.u32 == 6u && v.u64 == 7u && v.f32 == 1.5 && v.num == 8.5 && v.d == duration("90s") &&
		v.ss == ["a", "b"] && v.sm.k == "v" && v.v == "ref"`, in)
	require.NoError(t, err)
	require.True(t, got)

	_, err = Value(struct{}{})
	require.ErrorIs(t, err, errUnsupported)
	_, err = Value(json.Number("1e999"))
	require.ErrorIs(t, err, errUnsupported)
	_, err = Value([]any{make(chan int)})
	require.ErrorIs(t, err, errUnsupported)
	_, err = Value(map[string]any{"x": func() {}})
	require.ErrorIs(t, err, errUnsupported)
	var nested any = "leaf"
	for range MaxValueDepth + 2 {
		nested = []any{nested}
	}
	_, err = Value(nested)
	require.ErrorContains(t, err, "nested deeper than 16 levels")
}

func TestEvaluationErrorsAndCostLimit(t *testing.T) {
	c := newCompiler(t)
	_, err := eval(t, c, `v.missing == 1`, map[string]any{})
	var ee *EvalError
	require.True(t, errors.As(err, &ee))
	require.Equal(t, "no such key: missing", ee.Error())
	require.False(t, ee.CostExceeded)

	_, err = eval(t, c, `1 / v.zero == 1`, map[string]any{"zero": 0})
	require.ErrorContains(t, err, "division by zero")

	list := make([]any, 100)
	for i := range list {
		list[i] = fmt.Sprint(i)
	}
	_, err = eval(t, c, `v.l.all(a, v.l.all(b, v.l.all(c, a + b + c != "")))`, map[string]any{"l": list})
	require.True(t, errors.As(err, &ee))
	require.True(t, ee.CostExceeded, ee.Error())
	require.Contains(t, ee.Error(), "cost limit exceeded")

	// The same expression over a small input stays within the limit.
	got, err := eval(t, c, `v.l.all(a, v.l.all(b, v.l.all(c, a + b + c != "")))`, map[string]any{"l": list[:5]})
	require.NoError(t, err)
	require.True(t, got)
}

func TestCompileCacheIsSharedAndBounded(t *testing.T) {
	c := newCompiler(t)
	p1, err := c.Compile(`v.a == 1`)
	require.NoError(t, err)
	p2, err := c.Compile(`v.a == 1`)
	require.NoError(t, err)
	require.Same(t, p1, p2)
	_, err1 := c.Compile(`v.a ==`)
	_, err2 := c.Compile(`v.a ==`)
	require.Error(t, err1)
	require.Same(t, err1, err2)

	for i := range CacheSize + 10 {
		_, err := c.Compile(fmt.Sprintf("v.a == %d", i))
		require.NoError(t, err)
	}
	require.Equal(t, CacheSize, c.cached())
	// The most recently used entries survive; the oldest were evicted.
	p3, err := c.Compile(`v.a == 1`)
	require.NoError(t, err)
	require.NotSame(t, p1, p3, "entry should have been evicted and recompiled")
}

func TestCompilerIsSafeForConcurrentUse(t *testing.T) {
	c := newCompiler(t)
	var wg sync.WaitGroup
	failures := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				prg, err := c.Compile(fmt.Sprintf("v.n == %d", (i+g)%50))
				if err != nil {
					failures <- err
					return
				}
				in, _ := Value(map[string]any{"n": (i + g) % 50})
				ok, err := prg.Eval(map[string]any{"v": in}, nil)
				if err != nil || !ok {
					failures <- fmt.Errorf("v.n == %d: %v %w", (i+g)%50, ok, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Error(err)
	}
}
