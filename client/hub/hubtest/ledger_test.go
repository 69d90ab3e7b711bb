package hubtest

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode"
	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

func signed(t *testing.T, s *reading.Signer, dev string, seqs ...uint64) api.BatchRequest {
	t.Helper()
	var req api.BatchRequest
	for _, seq := range seqs {
		v := 1.0
		env, err := s.SignReading(reading.Payload{Device: dev, Seq: seq, Timestamp: time.Now().UnixMilli(),
			Values: []reading.Value{{Name: "temperature", Unit: "Cel", Number: &v}}})
		require.NoError(t, err)
		req.Readings = append(req.Readings, env)
	}
	return req
}

// The chaincode's own vectors (chaincode/replay_test.go,
// TestSeenAnswersFromTheReplayState and the window's edges): the fake's
// replay window says what the chaincode's does.
func TestSeenAnswersAsTheChaincodesReplayState(t *testing.T) {
	l := NewLedger()
	s, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	l.Enroll("d", s.Public(), api.StatusActive)
	ans, err := l.Seen(t.Context(), "d", []uint64{1})
	require.NoError(t, err)
	require.Equal(t, &api.SeenAnswer{Device: "d", Window: chaincode.ReplayWindow, Seqs: []api.SeqSeen{{Seq: 1, State: api.SeqNotSeen}}}, ans)

	_, err = l.SubmitBatch(t.Context(), signed(t, s, "d", 2, 1, 1500))
	require.NoError(t, err)
	ans, err = l.Seen(t.Context(), "d", []uint64{1500, 1, 476, 477, 1499, 1501, 1500})
	require.NoError(t, err)
	require.Equal(t, uint64(1500), ans.HighWater)
	require.Equal(t, []api.SeqSeen{
		{Seq: 1500, State: api.SeqAccepted}, {Seq: 1, State: api.SeqBelowWindow}, {Seq: 476, State: api.SeqBelowWindow},
		{Seq: 477, State: api.SeqNotSeen}, {Seq: 1499, State: api.SeqNotSeen}, {Seq: 1501, State: api.SeqNotSeen},
		{Seq: 1500, State: api.SeqAccepted},
	}, ans.Seqs)

	// Below the window is refused whatever it was; within it, what was not
	// accepted is taken.
	_, err = l.SubmitBatch(t.Context(), signed(t, s, "d", 476))
	require.Equal(t, api.CodeReplay, api.CodeOf(err))
	_, err = l.SubmitBatch(t.Context(), signed(t, s, "d", 477))
	require.NoError(t, err)
	_, err = l.SubmitBatch(t.Context(), signed(t, s, "d", math.MaxUint64))
	require.NoError(t, err)
	ans, err = l.Seen(t.Context(), "d", []uint64{math.MaxUint64, math.MaxUint64 - 2, math.MaxUint64 - chaincode.ReplayWindow, math.MaxUint64 - chaincode.ReplayWindow + 1})
	require.NoError(t, err)
	require.Equal(t, []api.SeqSeen{
		{Seq: math.MaxUint64, State: api.SeqAccepted}, {Seq: math.MaxUint64 - 2, State: api.SeqNotSeen},
		{Seq: math.MaxUint64 - chaincode.ReplayWindow, State: api.SeqBelowWindow},
		{Seq: math.MaxUint64 - chaincode.ReplayWindow + 1, State: api.SeqNotSeen},
	}, ans.Seqs)
	require.Equal(t, 1, l.Refused())
}

func TestSeenRefusesWhatTheChaincodeRefuses(t *testing.T) {
	l := NewLedger()
	s, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	l.Enroll("d", s.Public(), api.StatusActive)
	for _, tc := range []struct {
		name   string
		setup  func()
		device string
		seqs   []uint64
		code   api.Code
	}{
		{"no sequence numbers", func() {}, "d", nil, api.CodeInvalidArgument},
		{"too many", func() {}, "d", make([]uint64, chaincode.MaxBatchReadings+1), api.CodeInvalidArgument},
		{"sequence number 0", func() {}, "d", []uint64{3, 0}, api.CodeInvalidArgument},
		{"unknown device", func() {}, "nope", []uint64{1}, api.CodeNotFound},
		{"neither write nor read", func() { l.DenyWrite["d"], l.DenyReads = true, true }, "d", []uint64{1}, api.CodeAccessDenied},
		{"another org's private device", func() { l.DenyWrite["d"] = false; l.SetPrivate("d"); l.SetOwner("d", "Org2MSP") }, "d", []uint64{1}, api.CodeFailedPrecondition},
	} {
		tc.setup()
		_, err := l.Seen(t.Context(), tc.device, tc.seqs)
		require.Equal(t, tc.code, api.CodeOf(err), tc.name)
	}
	l.SetOwner("d", "Org1MSP")
	_, err = l.Seen(t.Context(), "d", []uint64{1})
	require.NoError(t, err, "the owner's peers answer for its private device")
}
