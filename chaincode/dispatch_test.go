package chaincode

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/mocks"
)

// metadataTransactions lists "contract:Function" for every transaction
// contract-api describes in the chaincode's metadata.
func metadataTransactions(t *testing.T, cc *Chaincode) []string {
	t.Helper()
	stub := &mocks.ChaincodeStub{}
	stub.GetFunctionAndParametersReturns("org.hyperledger.fabric:GetMetadata", nil)
	resp := cc.Invoke(stub)
	require.EqualValues(t, 200, resp.GetStatus(), resp.GetMessage())
	var meta struct {
		Contracts map[string]struct {
			Transactions []struct {
				Name string `json:"name"`
			} `json:"transactions"`
		} `json:"contracts"`
	}
	require.NoError(t, json.Unmarshal(resp.GetPayload(), &meta))
	var names []string
	for contract, c := range meta.Contracts {
		if contract == "org.hyperledger.fabric" {
			continue
		}
		for _, tx := range c.Transactions {
			names = append(names, contract+":"+tx.Name)
		}
	}
	sort.Strings(names)
	return names
}

func TestEveryTransactionIsCalledDirectly(t *testing.T) {
	cc, err := NewChaincode()
	require.NoError(t, err)
	var direct []string
	for name := range cc.direct {
		direct = append(direct, name)
	}
	sort.Strings(direct)
	require.Equal(t, metadataTransactions(t, cc), direct,
		"the direct calls must be exactly the transactions contract-api describes (a transaction with a non-string parameter or result would need contract-api's conversion)")
}

// TestDirectCallsAnswerAsContractAPIDoes calls every transaction both ways
// on identical worlds and requires the same response, byte for byte: with
// too few arguments, with malformed and wrongly shaped arguments, and with
// requests that succeed or are refused by the contracts.
func TestDirectCallsAnswerAsContractAPIDoes(t *testing.T) {
	operator := serializedIdentity(t, "Org1MSP", "operator1", api.RoleOperator)
	hub := serializedIdentity(t, "Org1MSP", "hub1", api.RoleHub)
	build := func() (*world, *Chaincode) {
		w := newWorld(t)
		d := w.enroll(org1Operator, "d0", "fridge")
		_, err := w.submitBatch(org1Hub, d.reading(t, 4))
		require.NoError(t, err)
		cc, err := contractapi.NewChaincode(w.c.Device, w.c.Policy, w.c.Rule, w.c.Telemetry, w.c.Command, w.c.Message)
		require.NoError(t, err)
		return w, newDispatcher(cc, w.c.Device, w.c.Policy, w.c.Rule, w.c.Telemetry, w.c.Command, w.c.Message)
	}
	w, b := build()
	wa, wb, a := w, w, b
	names := metadataTransactions(t, a)
	type call struct {
		name    string
		creator []byte
		params  []string
	}
	var calls []call
	for _, name := range names {
		for _, creator := range [][]byte{operator, hub} {
			calls = append(calls,
				call{name, creator, nil},
				call{name, creator, []string{`{`}},
				call{name, creator, []string{`{"id":"d0","device":"d0","deviceId":"d0"}`, `{}`, `{}`}},
				call{name, creator, []string{`[]`, `x`, `y`}},
			)
		}
	}
	calls = append(calls,
		call{"policy:CheckAccess", operator, []string{jsonArg(t, api.AccessRequest{Action: api.ActionTelemetryRead, Resource: "d0"})}},
		call{"policy:checkAccess", operator, []string{jsonArg(t, api.AccessRequest{Action: api.ActionTelemetryRead, Resource: "d0"})}},
		call{"policy:CheckAccess", hub, []string{jsonArg(t, api.AccessRequest{Action: api.ActionDeviceManage, Resource: "d0"})}},
		call{"device:Get", operator, []string{"d0"}},
		call{"device:get", hub, []string{"nope"}},
		call{"device:NoSuchFunction", operator, []string{"d0"}},
		call{"nocontract:Get", operator, []string{"d0"}},
		call{"", operator, nil},
	)
	succeeded := 0
	for i, c := range calls {
		t.Run(fmt.Sprintf("%d_%s", i, c.name), func(t *testing.T) {
			ra := &txRecord{id: fmt.Sprintf("tx%d", i), writes: map[string][]byte{}, sbe: map[string][]byte{}}
			sa := wa.stub(ra, "Org1MSP")
			sa.GetFunctionAndParametersReturns(c.name, c.params)
			sa.GetCreatorReturns(c.creator, nil)
			want := a.router.Invoke(sa)

			rb := &txRecord{id: fmt.Sprintf("tx%d", i), writes: map[string][]byte{}, sbe: map[string][]byte{}}
			sb := wb.stub(rb, "Org1MSP")
			sb.GetFunctionAndParametersReturns(c.name, c.params)
			sb.GetCreatorReturns(c.creator, nil)
			got := b.Invoke(sb)

			require.Equal(t, want.GetStatus(), got.GetStatus())
			require.Equal(t, want.GetMessage(), got.GetMessage())
			require.Equal(t, string(want.GetPayload()), string(got.GetPayload()))
			require.Equal(t, ra.writes, rb.writes, "writes")
			require.Equal(t, ra.sbe, rb.sbe, "key-level policies")
			require.Equal(t, ra.events, rb.events, "events")
			if got.GetStatus() == 200 {
				succeeded++
			}
		})
	}
	require.GreaterOrEqual(t, succeeded, 4, "the comparison covers answers that succeed, not only refusals")
	require.True(t, slices.Contains(names, "policy:CheckAccess"))
}

func TestCallerCacheIsBounded(t *testing.T) {
	var c callerCache
	for i := range maxCachedCallers + 10 {
		c.put(fmt.Appendf(nil, "creator-%d", i), api.Principal{MSPID: "Org1MSP"})
	}
	require.LessOrEqual(t, len(c.m), maxCachedCallers)
	_, ok := c.get(fmt.Appendf(nil, "creator-%d", maxCachedCallers+9))
	require.True(t, ok, "the newest caller is cached")
}
