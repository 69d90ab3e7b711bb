package condition

import (
	"encoding/json"
	"testing"
)

func FuzzCompileAndEval(f *testing.F) {
	f.Add(`v.a > 1 && v.m.exists(k, k == "x")`, []byte(`{"a": 2, "m": {"x": 1, "y": [1, 2]}}`))
	f.Add(`v.m.map(k, k)[0] == "a"`, []byte(`{"m": {"b": 1, "a": 2}}`))
	f.Add(`v.t.matches("^[a-z]+$")`, []byte(`{"t": "abc"}`))
	f.Add(`{"a": 1}.size() == 1`, []byte(`{}`))
	f.Add(`v.l.all(a, v.l.all(b, a + b > 0))`, []byte(`{"l": [1, 2, 3]}`))
	c, err := NewCompiler(Variable{Name: "v"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, expr string, input []byte) {
		prg, err := c.Compile(expr)
		if err != nil {
			return
		}
		var in map[string]any
		if json.Unmarshal(input, &in) != nil {
			return
		}
		v, err := Value(in)
		if err != nil {
			return
		}
		first, err1 := prg.Eval(map[string]any{"v": v}, nil)
		second, err2 := prg.Eval(map[string]any{"v": v}, nil)
		if first != second || (err1 == nil) != (err2 == nil) || (err1 != nil && err1.Error() != err2.Error()) {
			t.Fatalf("%q: %v/%v then %v/%v", expr, first, err1, second, err2)
		}
	})
}
