package client

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/gateway"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// grpcError is a gateway error as the peer sends it, with endorser details.
func grpcError(t *testing.T, code codes.Code, msg string, details ...string) error {
	t.Helper()
	st := status.New(code, msg)
	for _, d := range details {
		var err error
		st, err = st.WithDetails(&gateway.ErrorDetail{Address: "127.0.0.1:7051", MspId: "Org1MSP", Message: d})
		require.NoError(t, err)
	}
	return st.Err()
}

// The messages are those a Fabric v2.5 peer returned for a certificate its
// org's CRL lists (test/network TestRevokedIdentityIsRefusedWhileItsOrgsOthersWork).
const denied = "error validating proposal: access denied: channel [iotledger] creator org [Org1MSP]"

func TestIsIdentityRefusedRecognisesThePeersRefusalOfTheCreator(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  func(t *testing.T) error
		want bool
	}{
		{"endorse: the endorser denies the creator", func(t *testing.T) error {
			return newCallError("device:Get", "tx1", StageEndorse,
				grpcError(t, codes.Aborted, "failed to endorse transaction, see attached details for more info", denied))
		}, true},
		{"evaluate: the status message carries it", func(t *testing.T) error {
			return newCallError("device:Get", "", StageEvaluate,
				grpcError(t, codes.FailedPrecondition, "evaluate call to endorser returned error: "+denied, denied))
		}, true},
		{"submit: the orderer forbids the signer", func(t *testing.T) error {
			return newCallError("telemetry:SubmitBatch", "tx2", StageSubmit,
				grpcError(t, codes.Aborted, "received unsuccessful response from orderer: status=FORBIDDEN, info=implicit policy evaluation failed - "+
					"0 sub-policies were satisfied, but this policy requires 1 of the 'Writers' sub-policies to be satisfied: permission denied"))
		}, true},
		{"wrapped by the caller", func(t *testing.T) error {
			return fmt.Errorf("health probe: %w", newCallError("device:Get", "", StageEvaluate,
				grpcError(t, codes.FailedPrecondition, "evaluate call to endorser returned error: "+denied)))
		}, true},
		{"a chaincode refusal is not", func(t *testing.T) error {
			return newCallError("device:Get", "", StageEvaluate,
				grpcError(t, codes.Unknown, `evaluate call to endorser returned error: chaincode response 500, {"code":"NOT_FOUND","message":"device x"}`))
		}, false},
		{"an unreachable peer is not", func(t *testing.T) error {
			return newCallError("device:Get", "", StageEvaluate, grpcError(t, codes.Unavailable, "connection refused"))
		}, false},
		{"endorsement policy trouble is not", func(t *testing.T) error {
			return newCallError("device:Get", "", StageEndorse,
				grpcError(t, codes.FailedPrecondition, "no combination of peers can be derived which satisfy the endorsement policy"))
		}, false},
		{"not a ledger call", func(t *testing.T) error { return errors.New(denied) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, IsIdentityRefused(tc.err(t)))
		})
	}
}
