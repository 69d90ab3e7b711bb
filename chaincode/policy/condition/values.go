package condition

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// MaxValueDepth bounds the nesting of values converted by Value.
const MaxValueDepth = 16

// Map builds a CEL map whose keys iterate in sorted order, whatever Go's map
// order is, so that comprehensions over it are deterministic.
func Map(m map[string]ref.Val) ref.Val {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	entries := make(map[ref.Val]ref.Val, len(m))
	sortedKeys := make([]ref.Val, len(keys))
	for i, k := range keys {
		sortedKeys[i] = types.String(k)
		entries[sortedKeys[i]] = m[k]
	}
	return &sortedMap{Mapper: types.NewRefValMap(types.DefaultTypeAdapter, entries), keys: sortedKeys}
}

// StringMap builds a sorted CEL map of strings.
func StringMap(m map[string]string) ref.Val {
	vals := make(map[string]ref.Val, len(m))
	for k, v := range m {
		vals[k] = types.String(v)
	}
	return Map(vals)
}

// Strings builds a CEL list of strings (nil becomes the empty list).
func Strings(s []string) ref.Val {
	vals := make([]ref.Val, len(s))
	for i, v := range s {
		vals[i] = types.String(v)
	}
	return types.NewRefValList(types.DefaultTypeAdapter, vals)
}

// Value converts a JSON-like Go value into a CEL value: nil, bool, string,
// numbers (all become double except Go integers, which stay int), time.Time,
// time.Duration, json.Number, slices and string-keyed maps of those, and
// ref.Val as is. Maps become sorted maps (see Map).
func Value(v any) (ref.Val, error) {
	return value(v, 0)
}

func value(v any, depth int) (ref.Val, error) {
	if depth > MaxValueDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d levels", errUnsupported, MaxValueDepth)
	}
	switch x := v.(type) {
	case nil:
		return types.NullValue, nil
	case ref.Val:
		return x, nil
	case bool:
		return types.Bool(x), nil
	case string:
		return types.String(x), nil
	case int:
		return types.Int(x), nil
	case int32:
		return types.Int(x), nil
	case int64:
		return types.Int(x), nil
	case uint32:
		return types.Uint(x), nil
	case uint64:
		return types.Uint(x), nil
	case float32:
		return types.Double(x), nil
	case float64:
		return types.Double(x), nil
	case json.Number:
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%w: number %q", errUnsupported, string(x))
		}
		return types.Double(f), nil
	case time.Time:
		return types.Timestamp{Time: x.UTC()}, nil
	case time.Duration:
		return types.Duration{Duration: x}, nil
	case []string:
		return Strings(x), nil
	case map[string]string:
		return StringMap(x), nil
	case []any:
		vals := make([]ref.Val, len(x))
		for i, e := range x {
			cv, err := value(e, depth+1)
			if err != nil {
				return nil, err
			}
			vals[i] = cv
		}
		return types.NewRefValList(types.DefaultTypeAdapter, vals), nil
	case map[string]any:
		vals := make(map[string]ref.Val, len(x))
		for k, e := range x {
			cv, err := value(e, depth+1)
			if err != nil {
				return nil, err
			}
			vals[k] = cv
		}
		return Map(vals), nil
	default:
		return nil, fmt.Errorf("%w: %T", errUnsupported, v)
	}
}

// sortedMap is an immutable CEL map that iterates its keys in sorted order.
// Lookups are served by the embedded map; only iteration is replaced.
type sortedMap struct {
	traits.Mapper
	keys []ref.Val
}

// Iterator implements traits.Iterable with sorted keys.
func (m *sortedMap) Iterator() traits.Iterator {
	return &keyIterator{keys: m.keys}
}

type keyIterator struct {
	keys []ref.Val
	next int
}

func (it *keyIterator) HasNext() ref.Val { return types.Bool(it.next < len(it.keys)) }

func (it *keyIterator) Next() ref.Val {
	if it.next >= len(it.keys) {
		return nil
	}
	k := it.keys[it.next]
	it.next++
	return k
}

func (it *keyIterator) ConvertToNative(reflect.Type) (any, error) {
	return nil, fmt.Errorf("type conversion on iterators not supported")
}

func (it *keyIterator) ConvertToType(ref.Type) ref.Val {
	return types.NewErr("no such overload")
}

func (it *keyIterator) Equal(ref.Val) ref.Val { return types.NewErr("no such overload") }

func (it *keyIterator) Type() ref.Type { return types.IteratorType }

func (it *keyIterator) Value() any { return nil }
