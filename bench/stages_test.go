package bench

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/client"
)

func TestStageTimesKeepSuccessfulBatchStagesWhileRecording(t *testing.T) {
	s := &stageTimes{}
	tr := s.trace()
	const batch = "telemetry:SubmitBatch"
	tr.StageDone(batch, client.StageEndorse, 10*time.Millisecond, nil) // not recording yet
	s.record(true)
	tr.StageDone(batch, client.StageEndorse, 100*time.Millisecond, nil)
	tr.StageDone(batch, client.StageSubmit, 5*time.Millisecond, nil)
	tr.StageDone(batch, client.StageCommitStatus, 300*time.Millisecond, nil)
	tr.StageDone(batch, client.StageEndorse, 900*time.Millisecond, errors.New("refused"))
	tr.StageDone("device:Enroll", client.StageEndorse, 700*time.Millisecond, nil)
	s.record(false)
	tr.StageDone(batch, client.StageCommitStatus, 800*time.Millisecond, nil)

	rows := s.results(500)
	require.Len(t, rows, 2)
	require.Equal(t, LatBatchEndorse, rows[0].Name)
	require.Equal(t, 1, rows[0].Count)
	require.InDelta(t, 100, rows[0].MaxMs, 0.001)
	require.Equal(t, LatBatchCommit, rows[1].Name)
	require.Equal(t, 1, rows[1].Count)
	require.InDelta(t, 300, rows[1].MaxMs, 0.001)
	require.Contains(t, rows[0].Note, "500 readings/s")
	require.Contains(t, rows[0].Note, "1 failed attempts not counted")
	require.NotContains(t, rows[1].Note, "failed")

	require.Empty(t, (&stageTimes{}).results(1), "no rows without samples")
}
