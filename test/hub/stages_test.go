package hub_test

import (
	"io"
	gomaps "maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/test/testnet"
)

// A hub says where the time of its submits goes: each stage of each
// SubmitBatch, to its Config.SubmitTrace and to a Prometheus histogram.
func TestHubTimesEachStageOfItsSubmits(t *testing.T) {
	op := connect(t, "operator")
	c := connect(t, "hub")
	var mu sync.Mutex
	stages := map[client.Stage]int{}
	trace := &client.SubmitTrace{StageDone: func(tx string, stage client.Stage, d time.Duration, err error) {
		if tx != "telemetry:SubmitBatch" || err != nil || d <= 0 {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		stages[stage]++
	}}
	h, err := hub.New(hub.Config{
		HubID: "hub-stages", MQTTAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(),
		Ledger: c, Events: client.EventFeed{Client: c}, BatchWait: 100 * time.Millisecond, SubmitTrace: trace,
	})
	require.NoError(t, err)
	require.NoError(t, h.Start(t.Context()))
	t.Cleanup(func() { _ = h.Close() })

	d := enroll(t, op, testnet.UniqueID(t, "stages"))
	require.NoError(t, d.dial(t, h.MQTTAddr(), "hub-stages"))
	d.publishReading(t, 1, 3.5)
	require.Eventually(t, func() bool { return committed(t, op, d.id, 1) }, waitFor, 200*time.Millisecond, "reading never reached the ledger")
	require.Eventually(t, func() bool { return h.Outbox().Depth() == 0 }, waitFor, 100*time.Millisecond)

	mu.Lock()
	got := gomaps.Clone(stages)
	mu.Unlock()
	for _, s := range []client.Stage{client.StageEndorse, client.StageSubmit, client.StageCommitStatus} {
		require.GreaterOrEqual(t, got[s], 1, "stage %s of the committed batch was not traced: %v", s, got)
	}

	resp, err := http.Get("http://" + h.HTTPAddr() + "/metrics")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, stage := range []string{"endorse", "submit", "commit-status"} {
		series := `iotledger_hub_submit_stage_duration_seconds_count{result="ok",stage="` + stage + `"} `
		require.Contains(t, string(body), series)
		i := strings.Index(string(body), series)
		require.NotEqual(t, "0", strings.Fields(string(body)[i+len(series):])[0], "no %s observed", stage)
	}
}
