package adversary_test

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// The values of a private device's readings stay with its owner org: no
// other org's chaincode is ever sent them, not even as transient data of a
// proposal it is asked to endorse. Org2's server logs everything it is sent.
func TestPrivateReadingsNeverReachAnotherOrgsChaincode(t *testing.T) {
	e := env(t)
	ctx := e.ctx(t)
	p := newDevice(t, "priv")
	e.enroll(ctx, t, e.org1Operator, p, api.EnrollRequest{Type: "monitor", Private: true})
	secret := "diagnosis-SECRET-" + unique()
	private := []reading.Envelope{
		p.reading(t, num("heart_rate", 87.123), text("diagnosis", secret)),
		p.reading(t, num("heart_rate", 91.456), text("diagnosis", secret)),
	}
	receipt, err := e.org1Hub.SubmitPrivateBatch(ctx, api.BatchRequest{Readings: private})
	require.NoError(t, err)
	require.Equal(t, 2, receipt.Size)
	kept, err := e.org1Operator.PrivateBatch(ctx, receipt.BatchID)
	require.NoError(t, err)
	require.Len(t, kept.Readings, 2)
	for i, want := range []string{"87.123", "91.456"} {
		got, err := kept.Readings[i].Decode()
		require.NoError(t, err)
		require.Equal(t, map[string]string{"heart_rate": want, "diagnosis": secret}, valuesOf(got.Values))
	}

	// Control: a public reading does reach Org2's chaincode, and its log
	// shows it.
	c := newDevice(t, "pub")
	e.enroll(ctx, t, e.org1Operator, c, api.EnrollRequest{Type: "thermometer"})
	public := c.reading(t, num("temperature", 21.5))
	_, err = e.org1Hub.SubmitBatch(ctx, api.BatchRequest{Readings: []reading.Envelope{public}})
	require.NoError(t, err)
	entries := e.hostile.entries(t)
	publicB64 := []byte(base64.StdEncoding.EncodeToString(public.Payload))
	require.True(t, slices.ContainsFunc(entries, func(en logEntry) bool {
		return en.Function == "telemetry:SubmitBatch" && slices.ContainsFunc(en.Args, func(a []byte) bool {
			return containsAny(a, map[string][]byte{"payload": publicB64}) != ""
		})
	}), "Org2's log holds the public reading of %s", c.id)

	secrets := map[string][]byte{"the diagnosis": []byte(secret), "the heart rate": []byte("87.123")}
	for i, env := range private {
		secrets["payload "+strconv.Itoa(i)] = env.Payload
		secrets["base64 payload "+strconv.Itoa(i)] = []byte(base64.StdEncoding.EncodeToString(env.Payload))
	}
	for _, en := range entries {
		require.NotEqual(t, "telemetry:SubmitPrivateBatch", en.Function, "Org2's chaincode was asked to endorse the private batch (tx %s)", en.TxID)
		for i, a := range en.Args {
			require.Empty(t, containsAny(a, secrets), "argument %d of %s (tx %s) holds a private value", i, en.Function, en.TxID)
		}
		for k, v := range en.Transient {
			for _, blob := range append([][]byte{[]byte(k), v}, batchPayloads(v)...) {
				require.Empty(t, containsAny(blob, secrets), "transient %q of %s (tx %s) holds a private value", k, en.Function, en.TxID)
				require.NotContains(t, string(blob), p.id, "transient %q of %s (tx %s) names the private device", k, en.Function, en.TxID)
			}
		}
	}
}

// valuesOf renders reading values as name → text.
func valuesOf(vs []reading.Value) map[string]string {
	out := make(map[string]string, len(vs))
	for _, v := range vs {
		switch {
		case v.Number != nil:
			out[v.Name] = strconv.FormatFloat(*v.Number, 'f', -1, 64)
		case v.String != nil:
			out[v.Name] = *v.String
		case v.Bool != nil:
			out[v.Name] = strconv.FormatBool(*v.Bool)
		}
	}
	return out
}

// batchPayloads decodes a transient value holding a batch and returns its
// readings' payload bytes (none if it is not a batch).
func batchPayloads(v []byte) [][]byte {
	var b api.BatchRequest
	if json.Unmarshal(v, &b) != nil {
		return nil
	}
	out := make([][]byte, 0, len(b.Readings))
	for _, r := range b.Readings {
		out = append(out, r.Payload)
	}
	return out
}
