package console_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/test/testnet"
)

func TestOperatorSeesTheFleetAndWatchesAChartUpdateLive(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test on a real network")
	}
	op, hub := connect(t, "Org1", "operator"), connect(t, "Org1", "hub")
	kind := testnet.UniqueID(t, "console-type")
	device := testnet.UniqueID(t, "console")
	signer := enroll(t, op, api.EnrollRequest{ID: device, Type: kind, Groups: []string{"console-test"}})

	org1 := startConsole(t, "Org1")
	base := org1.signIn(t, "operator")
	ctx := browser(t)

	// The fleet page lists the device under its type.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#filter input[name=type]`)),
		chromedp.SendKeys(chromedp.CSS(`#filter input[name=type]`), kind),
		clickStill(`#filter button[type=submit]`),
		chromedp.WaitVisible(chromedp.CSS(`#devices a[href="/devices/`+device+`"]`)),
	))
	who, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`header .who strong`)))
	require.NoError(t, err)
	require.Equal(t, "operator", who)

	// The device page's chart grows as readings are committed and indexed.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/devices/"+device),
		chromedp.WaitVisible(chromedp.CSS(`#chart[data-points]`)),
	))
	submit := func(seqs ...uint64) {
		var envs []reading.Envelope
		for _, s := range seqs {
			v := 4 + float64(s)/10
			env, err := signer.SignReading(reading.Payload{Device: device, Seq: s, Timestamp: time.Now().UnixMilli(),
				Values: []reading.Value{{Name: "temperature", Unit: "Cel", Number: &v}}})
			require.NoError(t, err)
			envs = append(envs, env)
		}
		_, err := hub.SubmitBatch(t.Context(), api.BatchRequest{Readings: envs})
		require.NoError(t, err)
	}
	submit(1, 2, 3)
	requirePoints(t, ctx, 3)
	submit(4, 5)
	requirePoints(t, ctx, 5)
	screenshot(t, ctx, "device")
}

// requirePoints waits until the page's chart holds at least n points.
func requirePoints(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	ok, err := chromedp.Run(ctx, chromedp.Poll[bool](
		`Number(document.querySelector('#chart').dataset.points || 0) >= `+strconv.Itoa(n),
		chromedp.WithPollingTimeout(time.Minute), chromedp.WithPollingInterval(200*time.Millisecond)))
	require.NoError(t, err, "the chart did not reach %d points", n)
	require.True(t, ok)
}
