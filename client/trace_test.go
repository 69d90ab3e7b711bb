package client

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type tracedStage struct {
	tx    string
	stage Stage
	err   bool
}

// stageRecorder is a SubmitTrace that keeps what it was told.
type stageRecorder struct {
	mu     sync.Mutex
	stages []tracedStage
}

func (r *stageRecorder) trace() *SubmitTrace {
	return &SubmitTrace{StageDone: func(tx string, stage Stage, d time.Duration, err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if d < 0 {
			panic("negative stage duration")
		}
		r.stages = append(r.stages, tracedStage{tx: tx, stage: stage, err: err != nil})
	}}
}

func TestSubmitTraceIsToldEachStageOfEachAttempt(t *testing.T) {
	const tx = "telemetry:SubmitBatch"
	ok := func(s Stage) tracedStage { return tracedStage{tx: tx, stage: s} }
	failed := func(s Stage) tracedStage { return tracedStage{tx: tx, stage: s, err: true} }
	tests := []struct {
		name    string
		script  []outcome
		wantErr bool
		want    []tracedStage
	}{
		{
			name:   "committed",
			script: []outcome{{code: "VALID", result: `{}`}},
			want:   []tracedStage{ok(StageEndorse), ok(StageSubmit), ok(StageCommitStatus)},
		},
		{
			name:   "commit status looked up again: still one stage",
			script: []outcome{{code: "VALID", statusErrs: 2, result: `{}`}},
			want:   []tracedStage{ok(StageEndorse), ok(StageSubmit), ok(StageCommitStatus)},
		},
		{
			name:    "endorsement refused",
			script:  []outcome{{submitErr: errors.New("chaincode refused")}},
			wantErr: true,
			want:    []tracedStage{failed(StageEndorse)},
		},
		{
			name:   "read conflict, then committed: two attempts",
			script: []outcome{{code: "MVCC_READ_CONFLICT"}, {code: "VALID", result: `{}`}},
			want: []tracedStage{
				ok(StageEndorse), ok(StageSubmit), ok(StageCommitStatus),
				ok(StageEndorse), ok(StageSubmit), ok(StageCommitStatus),
			},
		},
		{
			name:    "commit status never known",
			script:  []outcome{{code: "VALID", statusErrs: 100}},
			wantErr: true,
			want:    []tracedStage{ok(StageEndorse), ok(StageSubmit), failed(StageCommitStatus)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fastClient(&scriptedTransport{script: tt.script})
			var rec stageRecorder
			ctx := WithSubmitTrace(context.Background(), rec.trace())
			err := c.submitWith(ctx, submitOptions{}, "telemetry", "SubmitBatch", nil)
			if tt.wantErr {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tt.want, rec.stages)
		})
	}
}
