package privacy_test

import (
	"context"
	"crypto/rand"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/client/hub/wire"
)

// A private monitor needs nothing special: it speaks the device protocol to
// a hub, and the hub routes its readings through SubmitPrivateBatch.
func TestHubKeepsAPrivateMonitorsValuesOffTheChannel(t *testing.T) {
	ctx := testContext(t)
	org1Operator := connect(ctx, t, "Org1", "operator")
	org1Hub := connect(ctx, t, "Org1", "hub")

	const hubID = "hub-private"
	h, err := hub.New(hub.Config{HubID: hubID, MQTTAddr: "127.0.0.1:0", DataDir: t.TempDir(), Ledger: org1Hub, BatchWait: 100 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, h.Start(ctx))
	t.Cleanup(func() { _ = h.Close() })

	mon := newMonitor(t, "hub-vitals")
	_, err = org1Operator.EnrollDevice(ctx, api.EnrollRequest{ID: mon.id, Type: "vitals-monitor", PublicKey: mon.signer.Public().PEM(), Activate: true, Private: true})
	require.NoError(t, err)

	conn := dialHub(ctx, t, h.MQTTAddr(), hubID, mon)
	for i := range 3 {
		env := mon.vitals(t, 100+float64(i)+0.0625, "hub-secret-"+mon.id)
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := conn.Publish(pctx, &paho.Publish{Topic: wire.Topic(mon.id, wire.KindTelemetry), QoS: 1, Payload: env.Encode()})
		cancel()
		require.NoError(t, err)
	}

	require.Eventually(t, func() bool {
		seen, err := org1Operator.Seen(ctx, mon.id, []uint64{1, 2, 3})
		return err == nil && seen.HighWater == 3 && seen.Seqs[0].State == api.SeqAccepted && seen.Seqs[1].State == api.SeqAccepted
	}, 2*time.Minute, 200*time.Millisecond, "the hub never committed the readings")
	// TODO(index): find each reading's batch in Org1's index, as this test
	// did with telemetry:Get, then check that the owner reads the values
	// (client.PrivateBatch) and that the batch's block carries neither the
	// payloads nor the signatures, only the hashes of Org1's collection
	// (blockBytes, as TestPrivateVitalsStayWithTheOwnerAndOffTheChannel does).
}

// dialHub connects a device to a hub over MQTT 5 with a signed token.
func dialHub(ctx context.Context, t *testing.T, addr, hubID string, m *monitor) *paho.Client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	nonce := make([]byte, 16)
	_, err = rand.Read(nonce)
	require.NoError(t, err)
	tok, err := wire.SignToken(m.signer, hubID, m.id, time.Now(), nonce)
	require.NoError(t, err)
	c := paho.NewClient(paho.ClientConfig{Conn: conn})
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = c.Connect(cctx, &paho.Connect{ClientID: m.id, Username: m.id, UsernameFlag: true, Password: []byte(tok),
		PasswordFlag: true, KeepAlive: 30, CleanStart: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	return c
}
