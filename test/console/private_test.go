package console_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/test/testnet"
)

func TestOrg2IsRefusedOrg1sPrivateDeviceAndExplainSaysWhy(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test on a real network")
	}
	op, hub := connect(t, "Org1", "operator"), connect(t, "Org1", "hub")
	device := testnet.UniqueID(t, "console-private")
	signer := enroll(t, op, api.EnrollRequest{ID: device, Type: "monitor", Private: true})
	v := 72.0
	env, err := signer.SignReading(reading.Payload{Device: device, Seq: 1, Timestamp: time.Now().UnixMilli(), Values: []reading.Value{{Name: "heart_rate", Number: &v}}})
	require.NoError(t, err)
	_, err = hub.SubmitPrivateBatch(t.Context(), api.BatchRequest{Readings: []reading.Envelope{env}})
	require.NoError(t, err)
	testnet.Settle(t.Context(), t, fabric)

	org1, org2 := startConsole(t, "Org1"), startConsole(t, "Org2")
	org1.index.Sync(t)
	org2.index.Sync(t)
	ctx := browser(t)

	// Org1's operator sees the private value: Org1's index resolves it.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(org1.signIn(t, "operator")+"/devices/"+device)))
	requirePoints(t, ctx, 1)

	// Org2's operator is refused the device, and Explain says why.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(org2.signIn(t, "operator")+"/devices/"+device),
		chromedp.WaitVisible(chromedp.CSS(`#explain-denied`)),
	))
	status, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#status`)))
	require.NoError(t, err)
	require.Contains(t, status, "ACCESS_DENIED")
	require.NoError(t, chromedp.Do(ctx,
		clickStill(`#explain-denied`),
		chromedp.WaitVisible(chromedp.CSS(`#explanation .denied`)),
	))
	why, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#explanation`)))
	require.NoError(t, err)
	require.Contains(t, why, "Denied")
	require.Contains(t, why, "Org1MSP", "Explain names the owner org whose default applies")
	screenshot(t, ctx, "explain")
}
