package console_test

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/client/device"
	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/client/hub/wire"
	"github.com/iotledger/iotledger/console"
	"github.com/iotledger/iotledger/console/identity"
	"github.com/iotledger/iotledger/test/testnet"
)

// startHub runs Org1's hub in the test, as `iotledger hub` would: MQTT
// over TLS with the org's hub certificate, commands signed as the hub
// identity, health on HTTP.
func startHub(t *testing.T, hubID string) *hub.Hub {
	t.Helper()
	p, err := fabric.Profile("Org1")
	require.NoError(t, err)
	files, err := p.Identity("hub")
	require.NoError(t, err)
	signer, err := wire.LoadHubSigner(files.Cert, files.Key)
	require.NoError(t, err)
	cert, err := tls.LoadX509KeyPair(p.HubTLS.Cert, p.HubTLS.Key)
	require.NoError(t, err)
	c := connect(t, "Org1", "hub")
	h, err := hub.New(hub.Config{HubID: hubID, MQTTAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(),
		Ledger: c, Events: client.EventFeed{Client: c}, BatchWait: 100 * time.Millisecond, Signer: signer,
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	require.NoError(t, err)
	require.NoError(t, h.Start(t.Context()))
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// connectDevice enrolls a device and connects it to h; it acks every
// command with "done".
func connectDevice(t *testing.T, op *client.Client, h *hub.Hub, hubID, id string) *device.Device {
	t.Helper()
	p, err := fabric.Profile("Org1")
	require.NoError(t, err)
	key := enroll(t, op, api.EnrollRequest{ID: id, Type: "valve"})
	roots, err := identity.CertPool(p.HubTLS.CACert)
	require.NoError(t, err)
	d, err := device.New(device.Config{ID: id, Signer: key, Hub: h.MQTTAddr(), HubID: hubID, RootCAs: roots})
	require.NoError(t, err)
	d.OnCommand(func(context.Context, api.Command) (api.CommandStatus, string) { return api.CommandAcked, "done" })
	require.NoError(t, d.Connect(t.Context()))
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func TestOperatorSendsACommandSeesItAckedAndRevokesTheDevice(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test on a real network")
	}
	const hubID = "console-hub"
	op := connect(t, "Org1", "operator")
	h := startHub(t, hubID)
	id := testnet.UniqueID(t, "console-valve")
	dev := connectDevice(t, op, h, hubID, id)
	org1 := startConsole(t, "Org1", func(c *console.Config) { c.Hubs = console.HubEndpoints{URLs: []string{"http://" + h.HTTPAddr()}} })
	// The device's identity arrives a second after its page, as on a
	// loaded machine: filling it in must not move the actions, and the
	// clicks wait for their target to stay still.
	base := org1.signInVia(t, "operator", slowPath("/api/v1/devices/"+id, time.Second))
	ctx := browser(t)

	// The fleet overview counts the device on its hub.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/")))
	requireTrue(t, ctx, `document.querySelector('#connected').textContent.startsWith('1 devices connected')`, "the hub's connected device is not shown")

	// A command sent from the commands page is followed to its ack.
	step(t, ctx, "sending a command from the commands page",
		chromedp.Navigate(base+"/commands"),
		chromedp.WaitVisible(chromedp.CSS(`#send input[name=device]`)),
		chromedp.SendKeys(chromedp.CSS(`#send input[name=device]`), id),
		chromedp.SendKeys(chromedp.CSS(`#send input[name=name]`), "open"),
		clickStill(`#send button[type=submit]`),
		chromedp.WaitVisible(chromedp.CSS(`#commands tr[data-command]`)),
	)
	requireTrue(t, ctx, `[...document.querySelectorAll('#commands .cmd-status')].some((e) => e.textContent === 'acked')`, "the command never showed as acked")

	// Revoking the device from its page, through the confirmation dialog,
	// makes its hub disconnect it.
	step(t, ctx, "opening the revocation dialog on the device page",
		chromedp.Navigate(base+"/devices/"+id),
		chromedp.WaitVisible(chromedp.CSS(`#identity:not([aria-busy])`)),
		clickStill(`[data-action=revoke]`),
		chromedp.WaitVisible(chromedp.CSS(`#confirm`)),
	)
	step(t, ctx, "confirming the revocation",
		chromedp.SendKeys(chromedp.CSS(`#confirm input[name=reason]`), "stolen"),
		chromedp.SendKeys(chromedp.CSS(`#confirm input[name=confirm]`), id),
		clickStill(`#confirm button[value=ok]`),
	)
	requireTrue(t, ctx, `[...document.querySelectorAll('#identity dd')].some((e) => e.textContent === 'revoked')`, "the device page does not show the device revoked")
	deadline := time.Now().Add(time.Minute)
	for dev.Connected() {
		require.True(t, time.Now().Before(deadline), "the hub did not disconnect the revoked device")
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/")))
	requireTrue(t, ctx, `document.querySelector('#connected').textContent.startsWith('0 devices connected')`, "the fleet still counts the revoked device")
	screenshot(t, ctx, "revoked")
}

// requireTrue waits up to a minute for a JavaScript expression to be true.
func requireTrue(t *testing.T, ctx context.Context, expr, msg string) {
	t.Helper()
	ok, err := chromedp.Run(ctx, chromedp.Poll[bool](`Boolean(`+expr+`)`,
		chromedp.WithPollingTimeout(time.Minute), chromedp.WithPollingInterval(200*time.Millisecond)))
	require.NoError(t, err, msg)
	require.True(t, ok, msg)
}
