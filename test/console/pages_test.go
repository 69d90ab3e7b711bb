package console_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/test/testnet"
)

// TestPolicyPutShowsTheLedgersRefusalInline: a policy the chaincode
// refuses (its CEL condition does not compile) comes back next to the form
// with the chaincode's code and message; text that is not JSON is caught
// in the page; and nothing is stored.
func TestPolicyPutShowsTheLedgersRefusalInline(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test on a real network")
	}
	base := startConsole(t, "Org1").signIn(t, "operator")
	ctx := browser(t)
	id := testnet.UniqueID(t, "console-bad-policy")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/policies"),
		chromedp.WaitVisible(chromedp.CSS(`#put-policy textarea[name=body]`)),
		chromedp.SetValue(chromedp.CSS(`#put-policy textarea[name=body]`), `{"id": "`+id+`",`),
		clickStill(`#put-policy button[type=submit]`),
	))
	requireTrue(t, ctx, `document.getElementById('policy-error').textContent.startsWith('Not JSON')`, "text that is not JSON was not caught")

	bad := `{"id": "` + id + `", "statements": [{"effect": "allow", "principals": ["msp:Org2MSP"], "actions": ["telemetry:read"], "resources": ["*"], "condition": "request.time >"}]}`
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#put-policy textarea[name=body]`), bad),
		clickStill(`#put-policy button[type=submit]`),
	))
	requireTrue(t, ctx, `/^[A-Z_]+: .*condition/i.test(document.getElementById('policy-error').textContent)`, "the ledger's refusal is not shown next to the form")
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#policy-error`)))
	require.NoError(t, err)
	t.Logf("shown: %s", msg)
	require.Equal(t, "alert", eval[string](t, ctx, `document.getElementById('policy-error').getAttribute('role')`), "the error is announced")

	op := connect(t, "Org1", "operator")
	page, err := op.ListPolicies(t.Context(), api.PolicyQuery{})
	require.NoError(t, err)
	for _, p := range page.Policies {
		require.NotEqual(t, id, p.ID, "the refused policy was stored")
	}
}

// TestAuditTrailPageShowsWhoDidWhatToADevice: the enrollment and a
// suspension, each with its submitter, endorsers and validation code, in
// ledger order.
func TestAuditTrailPageShowsWhoDidWhatToADevice(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test on a real network")
	}
	id, _ := enrollConsoleDevice(t, "console-audit")
	op := connect(t, "Org1", "operator")
	_, err := op.SetDeviceStatus(t.Context(), id, api.StatusSuspended, "maintenance")
	require.NoError(t, err)
	testnet.Settle(t.Context(), t, fabric)
	base := startConsole(t, "Org1").signIn(t, "operator")
	ctx := browser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/audit?device="+id)))
	requireTrue(t, ctx, `document.querySelectorAll('#audit tbody tr').length >= 2`, "the audit trail has not both transactions")
	cells := eval[[][]string](t, ctx, `[...document.querySelectorAll('#audit tbody tr')].map((r) => [...r.cells].map((c) => c.textContent))`)
	require.GreaterOrEqual(t, len(cells), 2)
	require.Contains(t, cells[0][3], "device:Enroll")
	require.Contains(t, cells[1][3], "device:")
	require.Contains(t, cells[1][3], "status")
	for _, row := range cells[:2] {
		require.Contains(t, row[2], "Org1MSP", "who submitted it")
		require.Contains(t, row[4], "Org1MSP", "who endorsed it")
		require.Equal(t, "VALID", row[5])
		require.NotEmpty(t, row[6], "the transaction id")
	}
}

// TestHealthPageShowsEveryNodeOfTheNetwork: the page reports the network
// healthy, with its orderers and both orgs' peers.
func TestHealthPageShowsEveryNodeOfTheNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test on a real network")
	}
	base := startConsole(t, "Org1").signIn(t, "operator")
	ctx := browser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/health")))
	requireTrue(t, ctx, `document.getElementById('overall').textContent.startsWith('Healthy')`, "the network is not shown healthy")
	kinds := eval[[]string](t, ctx, `[...document.querySelectorAll('#nodes tbody tr')].map((r) => r.cells[1].textContent + ' ' + r.cells[4].textContent)`)
	st, err := fabric.Status(t.Context())
	require.NoError(t, err)
	require.Len(t, kinds, len(st.Nodes), "one row per node")
	var orderers, peers int
	for _, k := range kinds {
		switch k {
		case "orderer ok":
			orderers++
		case "peer ok":
			peers++
		}
	}
	require.GreaterOrEqual(t, orderers, 1, "healthy orderers: %v", kinds)
	require.Equal(t, 2, peers, "both orgs' peers healthy: %v", kinds)
}

// TestFleetReadingsPerSecondFollowCommittedReadings: the fleet overview's
// readings per second, counted by the org's index, take in readings
// committed while the page is open, without a reload.
func TestFleetReadingsPerSecondFollowCommittedReadings(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test on a real network")
	}
	id, key := enrollConsoleDevice(t, "console-rate")
	base := startConsole(t, "Org1").signIn(t, "operator")
	ctx := browser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/")))
	requireTrue(t, ctx, `document.getElementById('rate-total').dataset.readings !== undefined`, "the fleet shows no readings per second")
	before, err := strconv.Atoi(eval[string](t, ctx, `document.getElementById('rate-total').dataset.readings`))
	require.NoError(t, err)
	submitReadings(t, id, key, 1, 25, time.Second)
	requireTrue(t, ctx, `Number(document.getElementById('rate-total').dataset.readings) >= `+strconv.Itoa(before+25),
		"the 25 committed readings never showed on the open page")
	requireTrue(t, ctx, `[...document.querySelectorAll('#rate-orgs tbody tr')].some((r) => r.cells[0].textContent === 'Org1MSP' && Number(r.cells[2].textContent) >= 25)`,
		"Org1's share is not shown")
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#rate-total`)))
	require.NoError(t, err)
	require.Contains(t, text, "readings/s fleet-wide")
	t.Logf("shown: %s", text)
}

// TestChartOfOneReadingShowsTheHourAroundIt: a device with one reading
// has a chart of one point, which uPlot alone would pad to years.
func TestChartOfOneReadingShowsTheHourAroundIt(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test on a real network")
	}
	id, key := enrollConsoleDevice(t, "console-one")
	submitReadings(t, id, key, 1, 1, time.Second)
	base := startConsole(t, "Org1").signIn(t, "operator")
	ctx := browser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/devices/"+id)))
	requirePoints(t, ctx, 1)
	requireTrue(t, ctx, `document.getElementById('chart').dataset.xSpan !== undefined`, "the chart has no x range")
	span, err := strconv.ParseFloat(eval[string](t, ctx, `document.getElementById('chart').dataset.xSpan`), 64)
	require.NoError(t, err)
	require.Equal(t, 3600.0, span, "the x axis spans the hour around the reading (seconds)")
}

// TestDevicePageScreenshotForTheREADME draws a device's chart of committed
// readings; with IOTLEDGER_UPDATE_SCREENSHOTS=1 it writes the README's
// docs/img/console-device.png.
func TestDevicePageScreenshotForTheREADME(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test on a real network")
	}
	id, key := enrollConsoleDevice(t, "fridge")
	// A reading every 20 minutes over the last half day: the day's
	// summary has a bucket for each.
	submitReadings(t, id, key, 1, 40, 20*time.Minute)
	base := startConsole(t, "Org1").signIn(t, "operator")
	ctx := browser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/devices/"+id)))
	requirePoints(t, ctx, 40)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.Greater(t, len(png), 10_000, "a screenshot of a drawn page")
	require.Equal(t, "\x89PNG", string(png[:4]), "a PNG (quality 100; below it Chromium writes JPEG)")
	if os.Getenv("IOTLEDGER_UPDATE_SCREENSHOTS") == "1" {
		path := filepath.Join("..", "..", "docs", "img", "console-device.png")
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, png, 0o644)) //nolint:gosec // G306: a documentation image, meant to be read
		t.Logf("wrote %s", path)
	}
}

// submitReadings commits readings seq from..from+n-1 of the device, every
// step ending now, as Org1's hub.
func submitReadings(t *testing.T, id string, key *reading.Signer, from uint64, n int, step time.Duration) {
	t.Helper()
	hub := connect(t, "Org1", "hub")
	start := time.Now().Add(-time.Duration(n) * step)
	var envs []reading.Envelope
	for i := range n {
		seq := from + uint64(i)
		v := 4 + 1.2*math.Sin(float64(i)/4) + float64(i)/30
		env, err := key.SignReading(reading.Payload{Device: id, Seq: seq, Timestamp: start.Add(time.Duration(i) * step).UnixMilli(),
			Values: []reading.Value{{Name: "temperature", Unit: "Cel", Number: &v}}})
		require.NoError(t, err)
		envs = append(envs, env)
	}
	_, err := hub.SubmitBatch(context.Background(), api.BatchRequest{Readings: envs})
	require.NoError(t, err)
}
