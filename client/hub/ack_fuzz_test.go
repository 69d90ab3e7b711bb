package hub

import (
	"testing"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/stretchr/testify/require"
)

func FuzzParseAck(f *testing.F) {
	f.Add([]byte(`{"device":"cold-1","command":"cmd-1","status":"acked","result":"ok","ts":1}`))
	f.Add([]byte(`{"device":"cold-1","command":"cmd-1","status":"failed","ts":1}{}`))
	f.Add([]byte(`{"device":"","command":"x","status":"acked"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseAck(b)
		if err != nil {
			return
		}
		require.Contains(t, []api.CommandStatus{api.CommandAcked, api.CommandFailed}, a.Status)
		require.NotEmpty(t, a.Device)
		require.NotEmpty(t, a.Command)
	})
}
