package chaincode

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/mocks"
)

func TestChaincodeServesEveryTransactionByContractName(t *testing.T) {
	cc, err := NewChaincode()
	require.NoError(t, err)
	stub := &mocks.ChaincodeStub{}
	stub.GetFunctionAndParametersReturns("org.hyperledger.fabric:GetMetadata", nil)
	resp := cc.Invoke(stub)
	require.EqualValues(t, 200, resp.GetStatus(), resp.GetMessage())
	var meta struct {
		Contracts map[string]struct {
			Transactions []struct {
				Name string   `json:"name"`
				Tag  []string `json:"tag"`
			} `json:"transactions"`
		} `json:"contracts"`
	}
	require.NoError(t, json.Unmarshal(resp.GetPayload(), &meta))
	want := map[string][]string{
		"device":    {"Enroll", "Get", "List", "Update", "RotateKey", "Activate", "Suspend", "Revoke", "Decommission", "OfferTransfer", "AcceptTransfer", "CancelTransfer", "History"},
		"policy":    {"Put", "Get", "Delete", "List", "CheckAccess", "Explain"},
		"rule":      {"Put", "Get", "Delete", "List"},
		"telemetry": {"Submit", "SubmitBatch", "SubmitPrivateBatch", "Seen", "GetBatch", "PrivateBatch"},
		"command":   {"Send", "Get", "List", "MarkDelivered", "Ack", "Expire"},
	}
	evaluates := map[string][]string{
		"device": {"Get", "List", "History"}, "policy": {"Get", "List", "CheckAccess", "Explain"},
		"rule": {"Get", "List"}, "telemetry": {"Seen", "GetBatch", "PrivateBatch"}, "command": {"Get", "List"},
	}
	for name, txs := range want {
		c, ok := meta.Contracts[name]
		require.True(t, ok, "contract %s", name)
		var got, evaluated []string
		for _, tx := range c.Transactions {
			got = append(got, tx.Name)
			if slices.Contains(tx.Tag, "EVALUATE") || slices.Contains(tx.Tag, "evaluate") {
				evaluated = append(evaluated, tx.Name)
			}
		}
		require.ElementsMatch(t, txs, got, "transactions of %s", name)
		require.ElementsMatch(t, evaluates[name], evaluated, "evaluate transactions of %s", name)
	}
}

func TestChaincodeRoutesContractTransactionAndReturnsCodedErrors(t *testing.T) {
	cc, err := NewChaincode()
	require.NoError(t, err)
	stub := &mocks.ChaincodeStub{}
	stub.GetFunctionAndParametersReturns("device:Enroll", []string{`{"id":"x"`})
	resp := cc.Invoke(stub)
	require.EqualValues(t, 500, resp.GetStatus())
	require.Contains(t, resp.GetMessage(), "INVALID_ARGUMENT: enroll request is not valid JSON")
}
