package client

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
)

func TestSeenSendsTheSequenceNumbersAsAJSONArray(t *testing.T) {
	tr := &scriptedTransport{script: []outcome{{result: `{"device":"d1","highWater":42,"window":1024,"seqs":[{"seq":42,"state":"accepted"},{"seq":43,"state":"not-seen"}]}`}}}
	got, err := fastClient(tr).Seen(t.Context(), "d1", []uint64{42, 43})
	require.NoError(t, err)
	require.Equal(t, []string{"d1", "[42,43]"}, tr.lastArgs)
	require.Equal(t, &api.SeenAnswer{Device: "d1", HighWater: 42, Window: 1024, Seqs: []api.SeqSeen{
		{Seq: 42, State: api.SeqAccepted}, {Seq: 43, State: api.SeqNotSeen},
	}}, got)
}

func TestPrivateBatchKeepsTheStoredBytesForHashing(t *testing.T) {
	stored := `{"readings":[{"p":"eyJkZXZpY2UiOiJtIiwic2VxIjoxfQ==","s":"AQI="}]}`
	tr := &scriptedTransport{script: []outcome{{result: stored}}}
	got, err := fastClient(tr).PrivateBatch(t.Context(), "tx9")
	require.NoError(t, err)
	require.Equal(t, []string{"tx9"}, tr.lastArgs)
	require.Equal(t, []byte(stored), got.Raw)
	require.Equal(t, privateBatch.Readings, got.Readings)

	tr = &scriptedTransport{script: []outcome{{result: `{"readings":[],"extra":1}`}}}
	_, err = fastClient(tr).PrivateBatch(t.Context(), "tx9")
	require.ErrorContains(t, err, "decoding private batch tx9")
}
