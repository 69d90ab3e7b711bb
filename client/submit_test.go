package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/gateway"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/iotledger/iotledger/chaincode/api"
)

// outcome is what the fake gateway does with one submitted transaction.
type outcome struct {
	submitErr   error  // endorse/submit refused
	statusErrs  int    // commit status lookups that fail before one succeeds
	code        string // validation code once known
	result      string // transaction result
	evaluateErr error  // for evaluate calls
}

// scriptedTransport plays one outcome per submitted transaction.
type scriptedTransport struct {
	mu       sync.Mutex
	script   []outcome
	submits  int
	lookups  int
	lastArgs []string
	lastOpts submitOptions
	orgsSeen [][]string // each submit's endorsing orgs, in order
	// systemCalls answers system chaincode calls by "<chaincode>:<tx>".
	systemCalls map[string][]byte
	systemArgs  []string
	systemN     int
}

func (s *scriptedTransport) system(_ context.Context, chaincode, tx string, args []string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.systemN++
	s.systemArgs = args
	b, ok := s.systemCalls[chaincode+":"+tx]
	if !ok {
		return nil, status.Error(codes.PermissionDenied, "access denied")
	}
	return b, nil
}

func (s *scriptedTransport) next() outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.script[min(s.submits, len(s.script)-1)]
	s.submits++
	return o
}

func (s *scriptedTransport) evaluate(_ context.Context, _, _ string, args []string) ([]byte, error) {
	o := s.next()
	s.lastArgs = args
	if o.evaluateErr != nil {
		return nil, o.evaluateErr
	}
	return []byte(o.result), nil
}

func (s *scriptedTransport) submit(_ context.Context, _, _ string, args []string, opts submitOptions) (*pending, error) {
	n := s.submits
	o := s.next()
	s.lastArgs = args
	s.lastOpts = opts
	s.mu.Lock()
	s.orgsSeen = append(s.orgsSeen, opts.endorsingOrgs)
	s.mu.Unlock()
	txID := fmt.Sprintf("tx%d", n)
	if o.submitErr != nil {
		return nil, &stageError{stage: StageEndorse, txID: txID, err: o.submitErr}
	}
	failures := o.statusErrs
	return &pending{txID: txID, result: []byte(o.result), status: func(context.Context) (commitStatus, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.lookups++
		if failures > 0 {
			failures--
			return commitStatus{}, status.Error(codes.Unavailable, "connection refused")
		}
		return commitStatus{valid: o.code == "VALID", code: o.code}, nil
	}}, nil
}

func endorseError(t *testing.T, details ...*gateway.ErrorDetail) error {
	st := status.New(codes.Aborted, "failed to endorse transaction, see attached details for more info")
	var v1 []protoadapt.MessageV1
	for _, d := range details {
		v1 = append(v1, protoadapt.MessageV1Of(d))
	}
	withDetails, err := st.WithDetails(v1...)
	require.NoError(t, err)
	return withDetails.Err()
}

const deviceJSON = `{"id":"d1","owner":"Org1MSP","status":"active"}`

func fastClient(tr transport) *Client {
	return newClientWithTransport(tr, "Org1MSP", WithRetry(5, time.Millisecond))
}

func TestReadConflictsAreSubmittedAgainAsNewTransactions(t *testing.T) {
	for _, code := range []string{"MVCC_READ_CONFLICT", "PHANTOM_READ_CONFLICT"} {
		t.Run(code, func(t *testing.T) {
			tr := &scriptedTransport{script: []outcome{{code: code}, {code: code}, {code: "VALID", result: deviceJSON}}}
			d, err := fastClient(tr).UpdateDevice(t.Context(), api.DeviceUpdate{ID: "d1"})
			require.NoError(t, err)
			require.Equal(t, "d1", d.ID)
			require.Equal(t, 3, tr.submits, "two conflicts, then a third transaction that commits")
		})
	}
}

func TestReadConflictRetriesAreBounded(t *testing.T) {
	tr := &scriptedTransport{script: []outcome{{code: "MVCC_READ_CONFLICT"}}}
	_, err := fastClient(tr).UpdateDevice(t.Context(), api.DeviceUpdate{ID: "d1"})
	var te *TransactionError
	require.ErrorAs(t, err, &te)
	require.Equal(t, 5, tr.submits)
	require.Equal(t, 5, te.Attempts)
	require.Equal(t, "MVCC_READ_CONFLICT", te.ValidationCode)
	require.Equal(t, StageCommit, te.Stage)
	require.True(t, IsConflict(err))
	require.Contains(t, err.Error(), "MVCC_READ_CONFLICT after 5 attempts")
}

func TestInvalidTransactionsOtherThanConflictsAreNotRetried(t *testing.T) {
	tr := &scriptedTransport{script: []outcome{{code: "ENDORSEMENT_POLICY_FAILURE"}, {code: "VALID", result: deviceJSON}}}
	_, err := fastClient(tr).UpdateDevice(t.Context(), api.DeviceUpdate{ID: "d1"})
	var te *TransactionError
	require.ErrorAs(t, err, &te)
	require.Equal(t, 1, tr.submits)
	require.Equal(t, "ENDORSEMENT_POLICY_FAILURE", te.ValidationCode)
	require.False(t, IsConflict(err))
}

func TestChaincodeRefusalSurfacesItsCodeAndIsNotRetried(t *testing.T) {
	refusal := endorseError(t, &gateway.ErrorDetail{
		Address: "peer0.org1.example.com:7051", MspId: "Org1MSP",
		Message: `chaincode response 500, NOT_FOUND: no device "d9"`,
	})
	tr := &scriptedTransport{script: []outcome{{submitErr: refusal}, {code: "VALID", result: deviceJSON}}}
	_, err := fastClient(tr).UpdateDevice(t.Context(), api.DeviceUpdate{ID: "d9"})
	require.Error(t, err)
	require.Equal(t, 1, tr.submits)
	require.Equal(t, api.CodeNotFound, api.CodeOf(err))

	var te *TransactionError
	require.ErrorAs(t, err, &te)
	require.Equal(t, "device:Update", te.Tx)
	require.Equal(t, "tx0", te.TxID)
	require.Equal(t, StageEndorse, te.Stage)
	require.Equal(t, `no device "d9"`, te.Message)
	require.Equal(t, codes.Aborted, te.GRPCCode)
	require.Equal(t, []EndorserDetail{{Address: "peer0.org1.example.com:7051", MSPID: "Org1MSP", Message: `chaincode response 500, NOT_FOUND: no device "d9"`}}, te.Endorsers)

	var ae *api.Error
	require.ErrorAs(t, err, &ae)
	require.Equal(t, api.CodeNotFound, ae.Code)
}

func TestCommitStatusErrorIsLookedUpAgainNotResubmitted(t *testing.T) {
	tr := &scriptedTransport{script: []outcome{{statusErrs: 2, code: "VALID", result: deviceJSON}}}
	d, err := fastClient(tr).UpdateDevice(t.Context(), api.DeviceUpdate{ID: "d1"})
	require.NoError(t, err)
	require.Equal(t, "d1", d.ID)
	require.Equal(t, 1, tr.submits, "one transaction only")
	require.Equal(t, 3, tr.lookups)
}

func TestCommitStatusThatNeverArrivesSaysTheTransactionMayStillCommit(t *testing.T) {
	tr := &scriptedTransport{script: []outcome{{statusErrs: 100, code: "VALID"}}}
	_, err := fastClient(tr).UpdateDevice(t.Context(), api.DeviceUpdate{ID: "d1"})
	var te *TransactionError
	require.ErrorAs(t, err, &te)
	require.Equal(t, StageCommitStatus, te.Stage)
	require.Equal(t, "tx0", te.TxID)
	require.True(t, te.Unavailable())
	require.Contains(t, te.Error(), "may still commit")
	require.Equal(t, 1, tr.submits)
}

func TestEvaluateRefusalIsClassified(t *testing.T) {
	tr := &scriptedTransport{script: []outcome{{evaluateErr: status.Error(codes.Unknown,
		`evaluate call to endorser returned error: chaincode response 500, ACCESS_DENIED: Org2MSP may not device:read d1`)}}}
	_, err := fastClient(tr).Device(t.Context(), "d1")
	require.Equal(t, api.CodeAccessDenied, api.CodeOf(err))
	var te *TransactionError
	require.ErrorAs(t, err, &te)
	require.Equal(t, StageEvaluate, te.Stage)
	require.Equal(t, "Org2MSP may not device:read d1", te.Message)
	require.Equal(t, []string{"d1"}, tr.lastArgs)
}

func TestUnclassifiedFailureKeepsTheGatewayMessage(t *testing.T) {
	tr := &scriptedTransport{script: []outcome{{submitErr: status.Error(codes.Unavailable, "connection refused")}}}
	_, err := fastClient(tr).EnrollDevice(t.Context(), api.EnrollRequest{ID: "d1"})
	var te *TransactionError
	require.ErrorAs(t, err, &te)
	require.Equal(t, api.Code(""), api.CodeOf(err))
	require.True(t, te.Unavailable())
	require.Contains(t, err.Error(), "device:Enroll (tx tx0): endorse failed: connection refused")
}

func TestSetDeviceStatusRefusesStatesWithoutATransaction(t *testing.T) {
	tr := &scriptedTransport{script: []outcome{{code: "VALID", result: deviceJSON}}}
	_, err := fastClient(tr).SetDeviceStatus(t.Context(), "d1", api.StatusProvisioned, "")
	require.ErrorContains(t, err, `cannot set a device to status "provisioned"`)
	require.Zero(t, tr.submits)

	_, err = fastClient(tr).SetDeviceStatus(t.Context(), "d1", api.StatusSuspended, "maintenance")
	require.NoError(t, err)
	require.Equal(t, []string{"d1", "maintenance"}, tr.lastArgs)
}

func TestCancelledContextStopsRetrying(t *testing.T) {
	tr := &scriptedTransport{script: []outcome{{code: "MVCC_READ_CONFLICT"}}}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	c := newClientWithTransport(tr, "Org1MSP", WithRetry(5, time.Hour))
	_, err := c.UpdateDevice(ctx, api.DeviceUpdate{ID: "d1"})
	require.True(t, IsConflict(err))
	require.Equal(t, 1, tr.submits)
}

func TestRetryDelayGrowsWithJitterAndStaysBelowTheCeiling(t *testing.T) {
	r := retryPolicy{max: 10, backoff: 100 * time.Millisecond, ceiling: time.Second}
	for n := 1; n <= 10; n++ {
		want := min(100*time.Millisecond<<(n-1), time.Second)
		for range 20 {
			d := r.delay(n)
			require.GreaterOrEqual(t, d, want/2)
			require.Less(t, d, want)
		}
	}
}

func TestTransactionErrorUnwrapsToTheCause(t *testing.T) {
	cause := errors.New("boom")
	te := &TransactionError{Tx: "policy:Put", Stage: StageSubmit, Message: "boom", cause: cause}
	require.ErrorIs(t, te, cause)
	require.Equal(t, "policy:Put: submit failed: boom", te.Error())
}

func TestEndorsersThatDisagreeAreAskedAgainAsANewTransaction(t *testing.T) {
	mismatch := endorseError(t, &gateway.ErrorDetail{Address: "peer0.org2:7051", MspId: "Org2MSP", Message: "ProposalResponsePayloads do not match"})
	tr := &scriptedTransport{script: []outcome{{submitErr: mismatch}, {code: "VALID", result: deviceJSON}}}
	d, err := fastClient(tr).EnrollDevice(t.Context(), api.EnrollRequest{ID: "d1"})
	require.NoError(t, err)
	require.Equal(t, "d1", d.ID)
	require.Equal(t, 2, tr.submits)

	// Only a disagreement is asked again; it stays bounded; a chaincode
	// refusal next to it is final.
	tr = &scriptedTransport{script: []outcome{{submitErr: mismatch}}}
	_, err = fastClient(tr).EnrollDevice(t.Context(), api.EnrollRequest{ID: "d1"})
	var te *TransactionError
	require.ErrorAs(t, err, &te)
	require.Equal(t, 5, te.Attempts)
	require.Equal(t, 5, tr.submits)
	refused := endorseError(t, &gateway.ErrorDetail{MspId: "Org1MSP", Message: "chaincode response 500, ACCESS_DENIED: no"},
		&gateway.ErrorDetail{MspId: "Org2MSP", Message: "ProposalResponsePayloads do not match"})
	tr = &scriptedTransport{script: []outcome{{submitErr: refused}}}
	_, err = fastClient(tr).EnrollDevice(t.Context(), api.EnrollRequest{ID: "d1"})
	require.Equal(t, api.CodeAccessDenied, api.CodeOf(err))
	require.Equal(t, 1, tr.submits)
}
