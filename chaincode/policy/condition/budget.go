package condition

import (
	"errors"
	"fmt"
	"math"
)

// ErrBudgetExhausted is matched (errors.Is) by the error of an evaluation
// that ran past its Budget.
var ErrBudgetExhausted = errors.New("evaluation budget exhausted")

// Budget is the evaluation cost that several evaluations draw on together —
// in the chaincode, every condition of one transaction. Each evaluation is
// charged its actual cost, as cel-go measures it, once it is done: cel-go
// (v0.31) fixes a program's cost limit when the program is built and gives
// an evaluation no limit of its own, so an evaluation still runs to at most
// MaxCost, and the evaluation that overdraws the budget ends it. The work
// done is therefore at most the limit plus MaxCost.
//
// The cost of an evaluation depends only on the expression and its inputs,
// so every endorser runs out at the same evaluation. A Budget is not safe
// for concurrent use; a transaction is one goroutine.
type Budget struct {
	limit uint64
	spent uint64
}

// NewBudget returns a budget of limit cost units.
func NewBudget(limit uint64) *Budget { return &Budget{limit: limit} }

// Limit is the cost units the budget started with.
func (b *Budget) Limit() uint64 { return b.limit }

// Spent is the cost charged so far; it exceeds Limit once exhausted.
func (b *Budget) Spent() uint64 { return b.spent }

// Remaining is the cost units left.
func (b *Budget) Remaining() uint64 {
	if b.spent >= b.limit {
		return 0
	}
	return b.limit - b.spent
}

// Exhausted reports whether an evaluation overdrew the budget.
func (b *Budget) Exhausted() bool { return b.spent > b.limit }

// charge draws cost from the budget; it fails once the budget is overdrawn,
// and for every evaluation after that.
func (b *Budget) charge(cost uint64) error {
	if !b.Exhausted() {
		b.spent += cost
		if b.spent < cost { // saturate rather than wrap around
			b.spent = math.MaxUint64
		}
	}
	if b.Exhausted() {
		return &BudgetError{Limit: b.limit, Spent: b.spent}
	}
	return nil
}

// BudgetError says that an evaluation ran past its budget.
type BudgetError struct {
	Limit, Spent uint64
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("evaluation budget of %d cost units exhausted (%d spent)", e.Limit, e.Spent)
}

// Is makes errors.Is(err, ErrBudgetExhausted) hold.
func (e *BudgetError) Is(target error) bool { return target == ErrBudgetExhausted }
