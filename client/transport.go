package client

import (
	"context"
	"errors"
	"time"

	gw "github.com/hyperledger/fabric-gateway/pkg/client"
)

// transport is what a Client needs from the gateway: it keeps the retry and
// error rules of the Client testable without a network.
type transport interface {
	evaluate(ctx context.Context, contract, tx string, args []string) ([]byte, error)
	// submit endorses and orders a transaction; errors are *stageError.
	submit(ctx context.Context, contract, tx string, args []string, opts submitOptions) (*pending, error)
	// system evaluates a transaction of a peer system chaincode (cscc, qscc).
	system(ctx context.Context, chaincode, tx string, args []string) ([]byte, error)
}

// submitOptions are per-transaction settings of a submit.
type submitOptions struct {
	// transient is proposal data the endorsers see but the block never holds.
	transient map[string][]byte
	// endorsingOrgs, when set, replaces the client's endorsing orgs.
	endorsingOrgs []string
}

// pending is a transaction sent to the orderer.
type pending struct {
	txID   string
	result []byte
	status func(ctx context.Context) (commitStatus, error)
	// How long endorsement and the orderer's acceptance took (for
	// SubmitTrace).
	endorsed, submitted time.Duration
}

type commitStatus struct {
	valid bool
	code  string // peer validation code name, e.g. "VALID", "MVCC_READ_CONFLICT"
	block uint64
}

// stageError says at which stage a submit failed.
type stageError struct {
	stage Stage
	txID  string
	err   error
	// How long endorsement took, and the failed stage (for SubmitTrace).
	endorsed, took time.Duration
}

func (e *stageError) Error() string { return string(e.stage) + ": " + e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

// gatewayTransport drives the Fabric Gateway step by step (endorse, submit,
// commit status) so each step gets its own timeout and the caller's context.
type gatewayTransport struct {
	network       *gw.Network
	chaincode     string
	timeouts      Timeouts
	endorsingOrgs []string
}

func (t *gatewayTransport) evaluate(ctx context.Context, contract, tx string, args []string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeouts.Evaluate)
	defer cancel()
	proposal, err := t.network.GetContractWithName(t.chaincode, contract).NewProposal(tx, gw.WithArguments(args...))
	if err != nil {
		return nil, err
	}
	return proposal.EvaluateWithContext(ctx)
}

func (t *gatewayTransport) system(ctx context.Context, chaincode, tx string, args []string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeouts.Evaluate)
	defer cancel()
	proposal, err := t.network.GetContract(chaincode).NewProposal(tx, gw.WithArguments(args...))
	if err != nil {
		return nil, err
	}
	return proposal.EvaluateWithContext(ctx)
}

func (t *gatewayTransport) submit(ctx context.Context, contract, tx string, args []string, so submitOptions) (*pending, error) {
	opts := []gw.ProposalOption{gw.WithArguments(args...)}
	orgs := t.endorsingOrgs
	if len(so.endorsingOrgs) > 0 {
		orgs = so.endorsingOrgs
	}
	if len(orgs) > 0 {
		opts = append(opts, gw.WithEndorsingOrganizations(orgs...))
	}
	if len(so.transient) > 0 {
		opts = append(opts, gw.WithTransient(so.transient))
	}
	proposal, err := t.network.GetContractWithName(t.chaincode, contract).NewProposal(tx, opts...)
	if err != nil {
		return nil, &stageError{stage: StageEndorse, err: err}
	}
	txID := proposal.TransactionID()

	endorseCtx, cancel := context.WithTimeout(ctx, t.timeouts.Endorse)
	start := time.Now()
	transaction, err := proposal.EndorseWithContext(endorseCtx)
	endorsed := time.Since(start)
	cancel()
	if err != nil {
		return nil, &stageError{stage: StageEndorse, txID: txID, err: err, took: endorsed}
	}

	submitCtx, cancel := context.WithTimeout(ctx, t.timeouts.Submit)
	start = time.Now()
	commit, err := transaction.SubmitWithContext(submitCtx)
	submitted := time.Since(start)
	cancel()
	if err != nil {
		return nil, &stageError{stage: StageSubmit, txID: txID, err: err, endorsed: endorsed, took: submitted}
	}

	return &pending{
		txID:      txID,
		endorsed:  endorsed,
		submitted: submitted,
		result:    transaction.Result(),
		status: func(ctx context.Context) (commitStatus, error) {
			// The caller bounds all lookups of a transaction together
			// (awaitCommit); this bounds a lookup made without a deadline.
			ctx, cancel := context.WithTimeout(ctx, t.timeouts.CommitStatus)
			defer cancel()
			st, err := commit.StatusWithContext(ctx)
			if err != nil {
				var cse *gw.CommitStatusError
				if errors.As(err, &cse) {
					return commitStatus{}, cse.TransactionError
				}
				return commitStatus{}, err
			}
			return commitStatus{valid: st.Successful, code: st.Code.String(), block: st.BlockNumber}, nil
		},
	}, nil
}
