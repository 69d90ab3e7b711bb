package client

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hyperledger/fabric-protos-go-apiv2/gateway"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/iotledger/iotledger/chaincode/api"
)

// Stage says where in the transaction flow a call failed.
type Stage string

// Transaction flow stages.
const (
	StageEvaluate     Stage = "evaluate"      // a query on one peer
	StageEndorse      Stage = "endorse"       // proposal sent to the endorsing peers
	StageSubmit       Stage = "submit"        // endorsed transaction sent to the orderer
	StageCommitStatus Stage = "commit-status" // asking the peer whether it committed
	StageCommit       Stage = "commit"        // the transaction committed as invalid
)

// EndorserDetail is what one peer said about a failed proposal.
type EndorserDetail struct {
	Address string `json:"address"`
	MSPID   string `json:"mspId"`
	Message string `json:"message"`
}

// TransactionError is the error of every failed ledger call. Where the
// chaincode refused the call, Code and Message are its classified error
// (api.CodeOf works on a TransactionError, and errors.As finds the
// *api.Error); otherwise Code is empty and Message is the gateway's text.
type TransactionError struct {
	TxID      string           // transaction ID, if one was made
	Tx        string           // "<contract>:<Tx>", e.g. "device:Enroll"
	Stage     Stage            // where it failed
	Code      api.Code         // chaincode error code, "" if the chaincode gave none
	Message   string           // the chaincode's message, or the gateway's
	Endorsers []EndorserDetail // per-peer details from the gateway, if any
	// ValidationCode is the peer's validation code of a transaction that
	// committed as invalid, e.g. "MVCC_READ_CONFLICT" or
	// "ENDORSEMENT_POLICY_FAILURE".
	ValidationCode string
	GRPCCode       codes.Code // gRPC status of the failed call (codes.OK if none)
	Attempts       int        // transactions submitted (>1 after MVCC retries)
	cause          error
}

func (e *TransactionError) Error() string {
	var b strings.Builder
	b.WriteString(e.Tx)
	if e.TxID != "" {
		fmt.Fprintf(&b, " (tx %s)", e.TxID)
	}
	switch {
	case e.Code != "":
		fmt.Fprintf(&b, ": %s: %s", e.Code, e.Message)
	case e.ValidationCode != "":
		fmt.Fprintf(&b, ": committed as invalid: %s", e.ValidationCode)
		if e.Attempts > 1 {
			fmt.Fprintf(&b, " after %d attempts", e.Attempts)
		}
	default:
		fmt.Fprintf(&b, ": %s failed: %s", e.Stage, e.Message)
		for _, d := range e.Endorsers {
			fmt.Fprintf(&b, "; %s (%s): %s", d.Address, d.MSPID, d.Message)
		}
	}
	return b.String()
}

// Unwrap exposes the chaincode's classified error (if any) and the
// underlying gateway or gRPC error.
func (e *TransactionError) Unwrap() []error {
	var errs []error
	if e.Code != "" {
		errs = append(errs, &api.Error{Code: e.Code, Message: e.Message})
	}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

// Unavailable reports whether the peer could not be reached at all.
func (e *TransactionError) Unavailable() bool { return e.GRPCCode == codes.Unavailable }

// IsConflict reports whether err is a transaction that committed as invalid
// because of a read conflict (and so may succeed if submitted again).
func IsConflict(err error) bool {
	var te *TransactionError
	return errors.As(err, &te) && retryableValidation(te.ValidationCode)
}

// newCallError classifies an error returned by the gateway for a call of tx
// at stage.
// payloadMismatch is the gateway's word for endorsers whose responses differ.
const payloadMismatch = "ProposalResponsePayloads do not match"

// endorsersDisagreed reports an endorsement that failed only because the
// endorsers' responses differ (no chaincode refusal among them).
func (e *TransactionError) endorsersDisagreed() bool {
	if e.Stage != StageEndorse || e.Code != "" {
		return false
	}
	for _, d := range e.Endorsers {
		if strings.Contains(d.Message, payloadMismatch) {
			return true
		}
	}
	return false
}

func newCallError(tx, txID string, stage Stage, err error) *TransactionError {
	te := &TransactionError{Tx: tx, TxID: txID, Stage: stage, cause: err, Message: err.Error()}
	if st, ok := status.FromError(err); ok {
		te.GRPCCode = st.Code()
		te.Message = st.Message()
		for _, d := range st.Details() {
			if ed, ok := d.(*gateway.ErrorDetail); ok {
				te.Endorsers = append(te.Endorsers, EndorserDetail{
					Address: ed.GetAddress(), MSPID: ed.GetMspId(), Message: ed.GetMessage(),
				})
			}
		}
	}
	// The chaincode's own error travels in the endorsers' messages (and,
	// for evaluate, in the status message).
	for _, d := range te.Endorsers {
		if ae := api.ParseError(d.Message); ae != nil {
			te.Code, te.Message = ae.Code, ae.Message
			return te
		}
	}
	if ae := api.ParseError(te.Message); ae != nil {
		te.Code, te.Message = ae.Code, ae.Message
	}
	return te
}
