package adversary_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/test/adversary/rawgw"
)

// The attacker's tools work as the attack tests assume: Org2's server logs
// what it is sent, withholds its endorsement on demand, and writes raw
// state, which validates exactly where Org2's endorsement alone suffices.
func TestHostileOrg2ServerLogsWithholdsAndWritesRawState(t *testing.T) {
	e := env(t)
	ctx := e.ctx(t)
	z := newDevice(t, "harness-z")
	e.enroll(ctx, t, e.org2Operator, z, api.EnrollRequest{Type: "probe"})
	x := newDevice(t, "harness-x")
	e.enroll(ctx, t, e.org1Operator, x, api.EnrollRequest{Type: "probe"})
	e.settle(t)

	t.Run("logs every invocation with its arguments", func(t *testing.T) {
		require.True(t, slices.ContainsFunc(e.hostile.entries(t), func(en logEntry) bool {
			return en.Function == "device:Enroll" && len(en.Args) == 1 && strings.Contains(string(en.Args[0]), x.id)
		}), "Org2's chaincode was asked to endorse Org1's enrollment of %s", x.id)
	})

	t.Run("reads raw state and key endorsers", func(t *testing.T) {
		var stored api.Device
		require.NoError(t, json.Unmarshal(e.hostileGet(t, deviceKey(t, z.id)), &stored))
		require.Equal(t, z.id, stored.ID)
		require.Equal(t, "Org2MSP", stored.Owner)
		require.Equal(t, "Org2MSP", e.hostileEndorsers(t, deviceKey(t, z.id)))
		require.Equal(t, "Org1MSP", e.hostileEndorsers(t, deviceKey(t, x.id)))
		require.Empty(t, e.hostileGet(t, deviceKey(t, "no-such-"+z.id)))
	})

	t.Run("a raw write validates on Org2's keys only", func(t *testing.T) {
		key := deviceKey(t, z.id)
		changed := withField(t, e.hostileGet(t, key), "firmware", "hostile-1")
		require.Equal(t, peer.TxValidationCode_VALID, e.hostileWrite(t, "PutComposite", "dev", `["`+z.id+`"]`, string(changed)))
		got, err := e.org2Operator.Device(ctx, z.id)
		require.NoError(t, err)
		require.Equal(t, "hostile-1", got.Firmware)

		require.Equal(t, peer.TxValidationCode_ENDORSEMENT_POLICY_FAILURE,
			e.hostileWrite(t, "Put", deviceKey(t, x.id), "{}"), "Org1's key needs Org1's endorsement")
		require.Equal(t, peer.TxValidationCode_ENDORSEMENT_POLICY_FAILURE,
			e.hostileWrite(t, "Put", compositeKey(t, "hostile", z.id), "new"), "a new key needs the chaincode's policy (both orgs)")
		got, err = e.org1Operator.Device(ctx, x.id)
		require.NoError(t, err)
		require.Equal(t, x.id, got.ID)
	})

	t.Run("withholds its endorsement while told to", func(t *testing.T) {
		t.Run("refusing", func(t *testing.T) {
			e.hostile.withhold(t)
			_, err := e.raw(t, "Org2", "operator").Evaluate(ctx, rawgw.Proposal{Function: "device:Get", Args: []string{z.id}}, "Org2MSP")
			require.ErrorContains(t, err, "withholds its endorsement")
			_, err = e.org1Operator.EnrollDevice(ctx, api.EnrollRequest{ID: newDevice(t, "harness-w").id, Type: "probe", PublicKey: z.signer.Public().PEM()})
			require.ErrorContains(t, err, "withholds its endorsement", "a new key needs Org2's endorsement too")
		})
		got, err := e.org2Operator.Device(ctx, z.id)
		require.NoError(t, err, "endorses again once the file is gone")
		require.Equal(t, z.id, got.ID)
	})
}
