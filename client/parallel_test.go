package client

import (
	"testing"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/gateway"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/iotledger/iotledger/chaincode/api"
)

func parallelClient(tr transport, orgs ...string) *Client {
	return newClientWithTransport(tr, "Org1MSP", WithRetry(5, time.Millisecond), WithParallelEndorsement(orgs...))
}

func TestParallelEndorsementNamesItsOrgsOrTheChannelsOnEverySubmit(t *testing.T) {
	t.Run("named", func(t *testing.T) {
		tr := &scriptedTransport{script: []outcome{{code: "VALID", result: deviceJSON}}}
		c := parallelClient(tr, "Org1MSP", "Org2MSP")
		_, err := c.UpdateDevice(t.Context(), api.DeviceUpdate{ID: "d1"})
		require.NoError(t, err)
		require.Equal(t, [][]string{{"Org1MSP", "Org2MSP"}}, tr.orgsSeen)
	})
	t.Run("the channel's orgs", func(t *testing.T) {
		tr := &scriptedTransport{
			script:      []outcome{{code: "VALID", result: deviceJSON}},
			systemCalls: map[string][]byte{"cscc:GetChannelConfig": channelConfig(t, map[string]string{"Org2": "Org2MSP", "Org1": "Org1MSP", "City": "CityMSP"})},
		}
		_, err := parallelClient(tr).UpdateDevice(t.Context(), api.DeviceUpdate{ID: "d1"})
		require.NoError(t, err)
		require.Len(t, tr.orgsSeen, 1)
		require.ElementsMatch(t, []string{"Org1MSP", "Org2MSP", "CityMSP"}, tr.orgsSeen[0])
	})
	t.Run("the channel's orgs are read again after a refusal", func(t *testing.T) {
		tr := &scriptedTransport{
			script:      []outcome{{code: "ENDORSEMENT_POLICY_FAILURE"}, {code: "VALID", result: deviceJSON}},
			systemCalls: map[string][]byte{"cscc:GetChannelConfig": channelConfig(t, map[string]string{"Org1": "Org1MSP"})},
		}
		c := parallelClient(tr)
		_, err := c.UpdateDevice(t.Context(), api.DeviceUpdate{ID: "d1"})
		require.NoError(t, err)
		tr.systemCalls["cscc:GetChannelConfig"] = channelConfig(t, map[string]string{"Org1": "Org1MSP", "City": "CityMSP"})
		c.parallelOff.Store(time.Now().Add(-time.Second).UnixNano())
		_, err = c.UpdateDevice(t.Context(), api.DeviceUpdate{ID: "d1"})
		require.NoError(t, err)
		require.Equal(t, [][]string{{"Org1MSP"}, nil}, tr.orgsSeen[:2])
		require.ElementsMatch(t, []string{"Org1MSP", "CityMSP"}, tr.orgsSeen[2], "an org that joined since is named")
	})
	t.Run("without the option the gateway plans", func(t *testing.T) {
		tr := &scriptedTransport{script: []outcome{{code: "VALID", result: deviceJSON}}}
		_, err := fastClient(tr).UpdateDevice(t.Context(), api.DeviceUpdate{ID: "d1"})
		require.NoError(t, err)
		require.Equal(t, [][]string{nil}, tr.orgsSeen)
	})
}

func TestSubmitTheNamedOrgsFailGoesAgainWithTheGatewaysPlanAndThePlanIsKeptAMinute(t *testing.T) {
	unreachable := status.Error(codes.Unavailable, "no peers available to evaluate chaincode iotledger in channel iotledger")
	for name, first := range map[string]outcome{
		"invalidated as ENDORSEMENT_POLICY_FAILURE": {code: "ENDORSEMENT_POLICY_FAILURE"},
		"a named org unreachable":                   {submitErr: unreachable},
		"endorsement aborted without a chaincode error": {submitErr: endorseError(t,
			&gateway.ErrorDetail{Address: "peer0.org2:7051", MspId: "Org2MSP", Message: "connection refused"})},
	} {
		t.Run(name, func(t *testing.T) {
			tr := &scriptedTransport{script: []outcome{first, {code: "VALID", result: deviceJSON}}}
			c := parallelClient(tr, "Org1MSP", "Org2MSP")
			d, err := c.UpdateDevice(t.Context(), api.DeviceUpdate{ID: "d1"})
			require.NoError(t, err)
			require.Equal(t, "d1", d.ID)
			require.Equal(t, [][]string{{"Org1MSP", "Org2MSP"}, nil}, tr.orgsSeen, "named, then the gateway's plan")

			_, err = c.UpdateDevice(t.Context(), api.DeviceUpdate{ID: "d1"})
			require.NoError(t, err)
			require.Nil(t, tr.orgsSeen[2], "within the minute the next submit leaves the plan to the gateway")

			c.parallelOff.Store(time.Now().Add(-time.Second).UnixNano())
			_, err = c.UpdateDevice(t.Context(), api.DeviceUpdate{ID: "d1"})
			require.NoError(t, err)
			require.Equal(t, []string{"Org1MSP", "Org2MSP"}, tr.orgsSeen[3], "after the pause it names them again")
		})
	}
}

func TestParallelEndorsementNeverResubmitsWhatTheChaincodeRefused(t *testing.T) {
	refused := endorseError(t, &gateway.ErrorDetail{
		Address: "peer0.org2:7051", MspId: "Org2MSP",
		Message: "chaincode response 500, " + api.Errorf(api.CodeAccessDenied, "Org1MSP may not update d1").Error(),
	})
	tr := &scriptedTransport{script: []outcome{{submitErr: refused}, {code: "VALID", result: deviceJSON}}}
	_, err := parallelClient(tr, "Org1MSP", "Org2MSP").UpdateDevice(t.Context(), api.DeviceUpdate{ID: "d1"})
	require.Equal(t, api.CodeAccessDenied, api.CodeOf(err))
	require.Equal(t, 1, tr.submits, "a refusal is the transaction's, whoever endorsed it")
}

func TestParallelEndorsementLeavesASubmitsOwnOrgsAndTheFixedOnesAlone(t *testing.T) {
	t.Run("a private batch names its owner", func(t *testing.T) {
		tr := &scriptedTransport{script: []outcome{{code: "VALID", result: `{"batchId":"b","readings":1}`}}}
		c := parallelClient(tr, "Org1MSP", "Org2MSP")
		require.NoError(t, c.submitWith(t.Context(), submitOptions{endorsingOrgs: []string{"Org2MSP"}}, api.ContractTelemetry, "SubmitPrivateBatch", nil))
		require.Equal(t, [][]string{{"Org2MSP"}}, tr.orgsSeen)
	})
	t.Run("WithEndorsingOrganizations takes precedence", func(t *testing.T) {
		tr := &scriptedTransport{script: []outcome{{code: "ENDORSEMENT_POLICY_FAILURE"}}}
		c := newClientWithTransport(tr, "Org1MSP", WithRetry(5, time.Millisecond),
			WithEndorsingOrganizations("Org1MSP"), WithParallelEndorsement("Org1MSP", "Org2MSP"))
		_, err := c.UpdateDevice(t.Context(), api.DeviceUpdate{ID: "d1"})
		require.Error(t, err)
		require.Equal(t, 1, tr.submits, "no second transaction with another plan")
		require.Equal(t, [][]string{nil}, tr.orgsSeen, "the transport names the fixed orgs itself")
	})
}
