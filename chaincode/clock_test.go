package chaincode

import (
	"testing"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

func TestProposalTimestampFarFromTheEndorsersClockIsRefused(t *testing.T) {
	cases := []struct {
		name   string
		offset time.Duration // peer clock minus proposal timestamp
		ok     bool
		says   string
	}{
		{"in step", 0, true, ""},
		{"a little behind, inside the bound", 4 * time.Minute, true, ""},
		{"a little ahead, inside the bound", -4 * time.Minute, true, ""},
		{"two hours ahead", -2 * time.Hour, false, "is 2h0m0s ahead of this endorser's clock"},
		{"fifty years ahead", -50 * 365 * 24 * time.Hour, false, "ahead of this endorser's clock"},
		{"one hour behind", time.Hour, false, "is 1h0m0s behind this endorser's clock"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.peerClockOffset = tc.offset
			before := len(w.state)
			req := api.EnrollRequest{ID: "clock-1", Type: "sensor", PublicKey: newKey(t, reading.Ed25519).Public().PEM()}
			_, err := w.invoke(org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Device.Enroll(ctx, jsonArg(t, req))
			})
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Equal(t, api.CodeClockSkew, api.CodeOf(err))
			require.ErrorContains(t, err, "the proposal timestamp "+w.now.Format(time.RFC3339Nano))
			require.ErrorContains(t, err, tc.says)
			require.ErrorContains(t, err, w.now.Add(tc.offset).Format(time.RFC3339Nano))
			require.ErrorContains(t, err, "the bound is 5m0s")
			require.Len(t, w.state, before, "a refused proposal writes nothing")
			require.Nil(t, w.lastEvent)
		})
	}
}

func TestEvaluationsAreBoundByTheClockToo(t *testing.T) {
	// A forged time would make an expired or not-yet-valid policy window
	// apply to a read.
	w := newWorld(t)
	w.enroll(org1Operator, "clock-2", "sensor")
	w.peerClockOffset = 3 * time.Hour
	refused(t, w, org1Operator, api.CodeClockSkew, "behind this endorser's clock", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Get(ctx, "clock-2")
	})
}

func TestMaxClockSkewMustBePositive(t *testing.T) {
	_, err := NewContracts(WithMaxClockSkew(0))
	require.ErrorContains(t, err, "must be positive")
	c, err := NewContracts(WithMaxClockSkew(time.Second))
	require.NoError(t, err)
	require.NotNil(t, c)
}

func TestClockBoundFromTheServersEnvironment(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == EnvMaxClockSkew {
				return v
			}
			return ""
		}
	}
	opts, err := OptionsFromEnv(env(""))
	require.NoError(t, err)
	require.Empty(t, opts)
	opts, err = OptionsFromEnv(env("90s"))
	require.NoError(t, err)
	require.Len(t, opts, 1)
	for _, bad := range []string{"soon", "-1m", "0s"} {
		_, err := OptionsFromEnv(env(bad))
		require.ErrorContains(t, err, EnvMaxClockSkew, bad)
	}
}
