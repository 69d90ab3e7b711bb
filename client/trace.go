package client

import (
	"context"
	"time"
)

// SubmitTrace is told how long each stage of a submitted transaction took,
// in the manner of net/http/httptrace: put it in the context of a call with
// WithSubmitTrace. A hub uses it to say where the time from a reading to its
// commit goes (docs/performance.md, "Latency").
type SubmitTrace struct {
	// StageDone is called once per stage a transaction attempt went
	// through, with the stage's duration and its error (nil if it ended
	// well): StageEndorse (proposal to endorsed transaction), StageSubmit
	// (to the orderer's acceptance) and StageCommitStatus (from the
	// orderer's acceptance until the peer says the transaction is
	// committed, including every repeated lookup: ordering, block
	// delivery, validation and commit). tx is "<contract>:<transaction>".
	// It is called on the submitting goroutine and must not block.
	StageDone func(tx string, stage Stage, d time.Duration, err error)
}

type submitTraceKey struct{}

// WithSubmitTrace returns a context whose submits report their stages to t.
func WithSubmitTrace(ctx context.Context, t *SubmitTrace) context.Context {
	return context.WithValue(ctx, submitTraceKey{}, t)
}

// traceStage reports one stage to the context's SubmitTrace, if any.
func traceStage(ctx context.Context, tx string, stage Stage, d time.Duration, err error) {
	if t, ok := ctx.Value(submitTraceKey{}).(*SubmitTrace); ok && t != nil && t.StageDone != nil {
		t.StageDone(tx, stage, d, err)
	}
}
