// Package condition compiles and evaluates the CEL conditions of access-policy
// statements and automation rules under the constraints of chaincode: every
// endorser must reach the same result, and no expression may exhaust a peer.
//
// Determinism is obtained by construction:
//   - input maps handed to an expression iterate their keys in sorted order
//     (see Map), so comprehensions such as m.map(k, k) or m.exists(k, …) behave
//     and cost the same on every peer;
//   - map and message literals are refused, because their iteration order would
//     be Go's randomised map order;
//   - timestamp accessors take only fixed UTC offsets ("+02:00", "UTC"), never
//     IANA zone names whose meaning depends on the tz database of the host;
//   - there is no clock and no random source in the environment.
//
// Bounds: an expression is at most MaxLength characters, nests at most
// MaxNesting levels, and is stopped once its evaluation cost reaches MaxCost.
// Check, for expressions about to be stored, also refuses one whose
// worst-case cost over the largest inputs the variables' Bounds allow exceeds
// MaxCost, as Kubernetes does for CEL validation rules; a Budget bounds the
// total cost of many evaluations. Compiled programs are cached by expression
// text in a bounded LRU that is safe for concurrent use.
package condition

import (
	"container/list"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// Limits on a condition.
const (
	// MaxLength is the longest accepted expression, in characters.
	MaxLength = 1024
	// MaxCost is the evaluation cost at which an expression is stopped. One
	// unit is roughly one operation; a typical condition costs less than 50.
	MaxCost uint64 = 10000
	// MaxNesting bounds the depth of the parsed expression.
	MaxNesting = 32
	// MaxNodes bounds the number of nodes after macro expansion.
	MaxNodes = 512
	// CacheSize is the number of compiled programs kept per Compiler.
	CacheSize = 1024
)

// CompileError says why an expression was refused.
type CompileError struct {
	Reason string
}

func (e *CompileError) Error() string { return e.Reason }

// EvalError says why an evaluation produced no boolean result.
type EvalError struct {
	Reason       string
	CostExceeded bool
}

func (e *EvalError) Error() string { return e.Reason }

// Compiler turns expression text into cost-limited programs over a fixed set
// of variables. It is safe for concurrent use.
type Compiler struct {
	env     *cel.Env
	sizes   boundedSizes
	bounded bool // every variable has a Bound: Check can bound the worst case

	mu    sync.Mutex
	order *list.List               // front = most recently used
	index map[string]*list.Element // expression text → element holding *cacheEntry
	size  int
}

type cacheEntry struct {
	expr string
	prg  *Program
	err  error
}

// Variable is an input of the expressions, declared as map(string, dyn).
// Bound is the largest value it can hold; nil means unknown, and then Check
// refuses only what Compile refuses.
type Variable struct {
	Name  string
	Bound *Bound
}

// NewCompiler builds a compiler whose expressions see the variables.
func NewCompiler(variables ...Variable) (*Compiler, error) {
	opts := []cel.EnvOption{
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		cel.ParserExpressionSizeLimit(MaxLength),
		cel.ParserRecursionLimit(MaxNesting),
		cel.ExpressionNodeLimit(MaxNodes),
		cel.RegexProgramSizeLimit(256),
	}
	sizes := boundedSizes{}
	bounded := true
	for _, v := range variables {
		opts = append(opts, cel.Variable(v.Name, cel.MapType(cel.StringType, cel.DynType)))
		sizes[v.Name] = v.Bound
		bounded = bounded && v.Bound != nil
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("condition: building CEL environment: %w", err)
	}
	return &Compiler{env: env, sizes: sizes, bounded: bounded, order: list.New(), index: make(map[string]*list.Element), size: CacheSize}, nil
}

// Check compiles an expression about to be stored. Beyond Compile, it
// refuses an expression whose estimated worst-case cost over the largest
// inputs the variables' Bounds allow exceeds MaxCost: such an expression
// could be stopped at the limit by a valid input. Compile alone keeps
// accepting it, so that a stored expression keeps evaluating the same way.
func (c *Compiler) Check(expr string) (*Program, error) {
	prg, err := c.Compile(expr)
	if err != nil {
		return nil, err
	}
	if !c.bounded {
		return prg, nil
	}
	switch worst := prg.WorstCaseCost(); {
	case worst == math.MaxUint64:
		return nil, &CompileError{Reason: fmt.Sprintf("expression's worst-case cost cannot be estimated (it depends on the size of a value derived by a conversion or a function), and the limit is %d per condition", MaxCost)}
	case worst > MaxCost:
		return nil, &CompileError{Reason: fmt.Sprintf("expression may cost up to %d on the largest inputs, more than the limit of %d per condition", worst, MaxCost)}
	}
	return prg, nil
}

// Compile returns the program of a boolean expression, from the cache when
// the same text was compiled before. The error, if any, is a *CompileError.
func (c *Compiler) Compile(expr string) (*Program, error) {
	c.mu.Lock()
	if el, ok := c.index[expr]; ok {
		c.order.MoveToFront(el)
		ent := el.Value.(*cacheEntry)
		c.mu.Unlock()
		return ent.prg, ent.err
	}
	c.mu.Unlock()

	prg, err := c.compile(expr)

	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.index[expr]; ok { // compiled concurrently by another caller
		c.order.MoveToFront(el)
		ent := el.Value.(*cacheEntry)
		return ent.prg, ent.err
	}
	c.index[expr] = c.order.PushFront(&cacheEntry{expr: expr, prg: prg, err: err})
	for c.order.Len() > c.size {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.index, last.Value.(*cacheEntry).expr)
	}
	return prg, err
}

// cached reports how many programs the cache holds.
func (c *Compiler) cached() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

func (c *Compiler) compile(expr string) (*Program, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, &CompileError{Reason: "expression is empty"}
	}
	if !utf8.ValidString(expr) {
		return nil, &CompileError{Reason: "expression is not valid UTF-8"}
	}
	if n := utf8.RuneCountInString(expr); n > MaxLength {
		return nil, &CompileError{Reason: fmt.Sprintf("expression has %d characters, more than the limit of %d", n, MaxLength)}
	}
	checked, iss := c.env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		return nil, &CompileError{Reason: describeIssues(iss)}
	}
	if !checked.OutputType().IsExactType(types.BoolType) {
		return nil, &CompileError{Reason: fmt.Sprintf("expression yields %s, not bool", cel.FormatCELType(checked.OutputType()))}
	}
	if err := deterministic(checked.NativeRep()); err != nil {
		return nil, err
	}
	est, err := c.env.EstimateCost(checked, c.sizes)
	if err != nil {
		return nil, &CompileError{Reason: "estimating cost: " + oneLine(err.Error())}
	}
	if est.Min > MaxCost {
		return nil, &CompileError{Reason: fmt.Sprintf("expression costs at least %d, more than the limit of %d", est.Min, MaxCost)}
	}
	prg, err := c.env.Program(checked,
		cel.EvalOptions(cel.OptTrackCost),
		cel.CostTracking(dynamicCallCost{}),
		cel.CostLimit(MaxCost),
	)
	if err != nil {
		return nil, &CompileError{Reason: oneLine(err.Error())}
	}
	return &Program{prg: prg, worst: est.Max}, nil
}

// timestampAccessors are the functions that accept a time zone argument.
var timestampAccessors = map[string]bool{
	"getFullYear": true, "getMonth": true, "getDayOfYear": true, "getDayOfMonth": true,
	"getDate": true, "getDayOfWeek": true, "getHours": true, "getMinutes": true,
	"getSeconds": true, "getMilliseconds": true,
}

var fixedOffset = regexp.MustCompile(`^(UTC|[+-][0-9]{2}:[0-9]{2})$`)

// deterministic refuses constructs whose result could differ between peers.
func deterministic(a *celast.AST) error {
	var problem error
	celast.PreOrderVisit(a.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if problem != nil {
			return
		}
		switch e.Kind() {
		case celast.MapKind:
			problem = &CompileError{Reason: "map literals are not allowed (their iteration order is not deterministic)"}
		case celast.StructKind:
			problem = &CompileError{Reason: "message literals are not allowed"}
		case celast.CallKind:
			call := e.AsCall()
			if !timestampAccessors[call.FunctionName()] || !call.IsMemberFunction() || len(call.Args()) != 1 {
				return
			}
			arg := call.Args()[0]
			if arg.Kind() == celast.LiteralKind {
				if s, ok := arg.AsLiteral().(types.String); ok && fixedOffset.MatchString(string(s)) {
					return
				}
			}
			problem = &CompileError{Reason: fmt.Sprintf(`%s takes only a fixed UTC offset literal such as "+02:00" or "UTC": zone names depend on the host's tz database`, call.FunctionName())}
		}
	}))
	return problem
}

// dynamicCallCost charges, at evaluation, the operators whose overload is
// chosen by the operands' runtime types. Variables are map(string, dyn), so
// "reading.values.a + reading.values.b" has no overload at check time, and
// cel-go then charges 1 for it, whatever it does; the worst-case estimate
// assumed string concatenation. This charges what cel-go charges for the
// overload the operands select: concatenating or comparing strings and
// bytes costs with their length.
type dynamicCallCost struct{}

func (dynamicCallCost) CallCost(function, overloadID string, args []ref.Val, _ ref.Val) *uint64 {
	if overloadID != "" || len(args) != 2 || !sized(args[0]) || !sized(args[1]) {
		return nil
	}
	size := func(v ref.Val) float64 { return float64(v.(traits.Sizer).Size().(types.Int)) }
	var n float64
	switch function {
	case operators.Add:
		n = size(args[0]) + size(args[1])
	case operators.Less, operators.LessEquals, operators.Greater, operators.GreaterEquals:
		n = min(size(args[0]), size(args[1]))
	default:
		return nil
	}
	cost := uint64(math.Ceil(n * common.StringTraversalCostFactor))
	return &cost
}

// sized reports whether v is a string or bytes, whose operators cost with
// their length (lists concatenate in constant time).
func sized(v ref.Val) bool {
	switch v.(type) {
	case types.String, types.Bytes:
		return true
	}
	return false
}

// Program is a compiled, cost-limited boolean expression.
type Program struct {
	prg   cel.Program
	worst uint64 // estimated worst-case cost; math.MaxUint64 when unbounded
}

// WorstCaseCost is the estimated most an evaluation can cost with inputs
// within the variables' Bounds (math.MaxUint64 when some size is unknown).
// An evaluation never costs more than MaxCost and a little, whatever it is.
func (p *Program) WorstCaseCost() uint64 { return p.worst }

// Eval runs the program over the variables (values built with Value, Map...
// or plain Go values of the kinds Value accepts) and charges its cost to
// budget (nil: no budget beyond MaxCost). It returns the boolean result, an
// *EvalError when the evaluation fails, exceeds MaxCost or does not yield a
// bool, or a *BudgetError when the budget is overdrawn — whatever the
// evaluation yielded, as the result of an evaluation the budget could not pay
// for must not count.
func (p *Program) Eval(vars map[string]any, budget *Budget) (result bool, err error) {
	defer func() {
		// cel-go reports most failures as error values; a panic in an
		// extension must not take the peer down either. Its cost is unknown:
		// charge the most an evaluation may cost.
		if r := recover(); r != nil {
			result, err = false, &EvalError{Reason: fmt.Sprintf("evaluation failed: %v", r)}
			if budget != nil {
				if berr := budget.charge(MaxCost); berr != nil {
					err = berr
				}
			}
		}
	}()
	out, det, evalErr := p.prg.Eval(vars)
	if budget != nil {
		cost := MaxCost
		if c := det.ActualCost(); c != nil {
			cost = *c
		}
		if err := budget.charge(cost); err != nil {
			return false, err
		}
	}
	if evalErr != nil {
		msg := oneLine(evalErr.Error())
		return false, &EvalError{Reason: msg, CostExceeded: strings.Contains(msg, "cost limit exceeded")}
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, &EvalError{Reason: fmt.Sprintf("expression yielded %s, not bool", out.Type().TypeName())}
	}
	return bool(b), nil
}

// describeIssues renders the first compile issue on one line, with its
// position, without the source excerpt cel-go appends.
func describeIssues(iss *cel.Issues) string {
	errs := iss.Errors()
	if len(errs) == 0 {
		return oneLine(iss.Err().Error())
	}
	first := errs[0]
	msg := oneLine(first.Message)
	if loc := first.Location; loc != nil && loc.Line() > 0 {
		msg = fmt.Sprintf("%d:%d: %s", loc.Line(), loc.Column()+1, msg)
	}
	if len(errs) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(errs)-1)
	}
	return msg
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.Join(strings.Fields(s), " ")
}

// errUnsupported is wrapped by Value for values it cannot convert.
var errUnsupported = errors.New("unsupported value")
