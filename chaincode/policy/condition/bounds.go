package condition

import (
	"github.com/google/cel-go/checker"
)

// Bound is the largest input an expression can meet at one place of a
// variable, for the worst-case cost estimate of Check. Variables are declared
// as map(string, dyn), so the type checker cannot tell a string from a list
// there: Size is the most characters of a string, or the most entries of a
// list or map, at that place (1 for a number, bool or timestamp).
//
// Fields bounds the named fields of a record-like map (reading.values is not
// one: its keys are the reading's); Elem bounds every other value below it —
// the values of a map, the items of a list, and fields not in Fields; Key
// bounds the keys of a map.
type Bound struct {
	Size   uint64
	Fields map[string]*Bound
	Elem   *Bound
	Key    *Bound
}

// ScalarBound bounds a number, bool, timestamp or duration.
func ScalarBound() *Bound { return &Bound{Size: 1} }

// StringBound bounds a string of at most n characters.
func StringBound(n uint64) *Bound { return &Bound{Size: n} }

// ListBound bounds a list of at most n items, each within item.
func ListBound(n uint64, item *Bound) *Bound { return &Bound{Size: n, Elem: item} }

// MapBound bounds a map of at most n entries with keys within key and values
// within value.
func MapBound(n uint64, key, value *Bound) *Bound { return &Bound{Size: n, Key: key, Elem: value} }

// RecordBound bounds a map with exactly the given fields.
func RecordBound(fields map[string]*Bound) *Bound {
	return &Bound{Size: uint64(len(fields)), Fields: fields, Key: StringBound(maxFieldName(fields))}
}

func maxFieldName(fields map[string]*Bound) uint64 {
	var n uint64
	for k := range fields {
		n = max(n, uint64(len([]rune(k))))
	}
	return n
}

// nothing is what an expression meets where an input has no value (a field a
// record does not have, a member of a scalar): evaluating it is an error, so
// it costs nothing beyond reaching it.
var nothing = &Bound{}

// at follows one element of a cost estimator path (a field name, "@items",
// "@values", "@keys" or "@indices") from b.
func (b *Bound) at(elem string) *Bound {
	switch elem {
	case "@items", "@values":
		return orNothing(b.Elem)
	case "@indices":
		return ScalarBound()
	case "@keys":
		// A one-variable comprehension over a dyn value is estimated with
		// "@keys" even when the value is a list, whose variable is an item:
		// bound both.
		switch {
		case b.Key == nil:
			return orNothing(b.Elem)
		case b.Elem == nil:
			return b.Key
		}
		u := *b.Elem
		u.Size = max(b.Key.Size, b.Elem.Size)
		return &u
	}
	if f, ok := b.Fields[elem]; ok {
		return f
	}
	if b.Fields != nil {
		return nothing
	}
	return orNothing(b.Elem)
}

func orNothing(b *Bound) *Bound {
	if b == nil {
		return nothing
	}
	return b
}

// boundedSizes is the cost estimator's view of the variables' bounds. A node
// that no path of a variable reaches (the result of a conversion, say) has
// no size the estimator can know, and the estimate's maximum becomes
// unbounded if the cost depends on it.
type boundedSizes map[string]*Bound

func (s boundedSizes) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	path := n.Path()
	if len(path) == 0 {
		return nil
	}
	b, ok := s[path[0]]
	if !ok || b == nil {
		return nil
	}
	for _, elem := range path[1:] {
		b = b.at(elem)
	}
	return &checker.SizeEstimate{Min: 0, Max: b.Size}
}

func (boundedSizes) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}
