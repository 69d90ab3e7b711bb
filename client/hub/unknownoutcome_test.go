package hub

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/client/hub/hubtest"
	"github.com/iotledger/iotledger/client/hub/wire"
)

// Outcomes of a first submit whose commit status the SDK could not learn
// within Timeouts.CommitStatus.
const (
	outcomeCommitted = "committed"     // it had committed: only the answer was lost
	outcomeLost      = "never commits" // the orderer lost it (its leader killed)
	outcomeLate      = "commits late"  // it commits after the hub has asked the replay state, racing the resubmission
)

// unknownOutcomeLedger answers its first SubmitBatch as the SDK does when
// the commit status did not come within its bound, with the transaction
// committed, lost, or held and committed just before the next submit.
type unknownOutcomeLedger struct {
	*hubtest.Ledger
	outcome string

	mu    sync.Mutex
	calls int
	held  *api.BatchRequest
}

func (u *unknownOutcomeLedger) SubmitBatch(ctx context.Context, req api.BatchRequest) (*api.BatchReceipt, error) {
	u.mu.Lock()
	u.calls++
	call, held := u.calls, u.held
	u.held = nil
	u.mu.Unlock()
	if held != nil {
		_, _ = u.Ledger.SubmitBatch(ctx, *held) // the first transaction commits only now
	}
	if call > 1 {
		return u.Ledger.SubmitBatch(ctx, req)
	}
	switch u.outcome {
	case outcomeCommitted:
		_, _ = u.Ledger.SubmitBatch(ctx, req)
	case outcomeLate:
		u.mu.Lock()
		u.held = &req
		u.mu.Unlock()
	}
	return nil, &client.TransactionError{Tx: "telemetry:SubmitBatch", TxID: "tx-unknown", Stage: client.StageCommitStatus,
		Message: "commit status unknown, the transaction may still commit: no commit status within 20s (context deadline exceeded)"}
}

func (u *unknownOutcomeLedger) submits() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls
}

func TestBatchWithAnUnknownCommitOutcomeIsCommittedExactlyOnce(t *testing.T) {
	for _, outcome := range []string{outcomeCommitted, outcomeLost, outcomeLate} {
		t.Run(outcome, func(t *testing.T) {
			fx := &fixture{ledger: hubtest.NewLedger(), dir: t.TempDir()}
			ul := &unknownOutcomeLedger{Ledger: fx.ledger, outcome: outcome}
			fx.start(t, func(c *Config) { c.Ledger = ul; c.BatchSize = 5; c.BatchWait = time.Hour }) // one full batch
			d := fx.enroll(t, "cold-1", api.StatusActive)
			m := fx.connect(t, d)
			for seq := uint64(1); seq <= 5; seq++ {
				_, err := m.publish(t, wire.Topic(d.id, wire.KindTelemetry), d.reading(t, seq, 1))
				require.NoError(t, err)
			}
			// Resolved at all, within a generous bound: the SDK's bound has
			// passed already (the error above), then the backoff and one
			// replay-state lookup.
			eventually(t, func() bool { return fx.hub.Outbox().Depth() == 0 }, "batch never resolved (depth %d)", fx.hub.Outbox().Depth())
			requireExactlyOnce(t, fx.ledger, keys(d.id, 1, 2, 3, 4, 5))
			switch outcome {
			case outcomeCommitted:
				require.Equal(t, 5.0, testutil.ToFloat64(fx.hub.metrics.alreadyOnLedger), "found by the replay state, not submitted again")
				require.Equal(t, 1, ul.submits())
			case outcomeLost:
				require.Zero(t, testutil.ToFloat64(fx.hub.metrics.alreadyOnLedger))
				require.Equal(t, 2, ul.submits(), "submitted again once, as nothing of it was on the ledger")
			case outcomeLate:
				// The resubmission lost the race: the ledger refused it
				// (REPLAY), and the replay state said why.
				require.Equal(t, 5.0, testutil.ToFloat64(fx.hub.metrics.alreadyOnLedger))
				require.Equal(t, 1, fx.ledger.Refused())
			}
		})
	}
}
