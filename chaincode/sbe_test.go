package chaincode

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/mocks"
)

func TestKeyEndorsementPolicyIsWrittenOnlyWhenItChanges(t *testing.T) {
	org1, err := endorsementPolicy("Org1MSP")
	require.NoError(t, err)
	org2, err := endorsementPolicy("Org2MSP")
	require.NoError(t, err)

	cases := []struct {
		name    string
		current []byte
		writes  int
	}{
		{"new key", nil, 1},
		{"same owner", org1, 0},
		{"other owner", org2, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stub := &mocks.ChaincodeStub{}
			stub.GetStateValidationParameterReturns(tc.current, nil)
			require.NoError(t, restrictTo(stub, []string{"Org1MSP"}, "k"))
			require.Equal(t, tc.writes, stub.SetStateValidationParameterCallCount())
			if tc.writes == 1 {
				key, ep := stub.SetStateValidationParameterArgsForCall(0)
				require.Equal(t, "k", key)
				require.Equal(t, org1, ep)
			}
		})
	}
}

func TestKeyEndorsementPolicyReadFailureIsInternal(t *testing.T) {
	stub := &mocks.ChaincodeStub{}
	stub.GetStateValidationParameterReturns(nil, errors.New("peer gone"))
	err := restrictTo(stub, []string{"Org1MSP"}, "k")
	require.Error(t, err)
	require.Zero(t, stub.SetStateValidationParameterCallCount())
}
