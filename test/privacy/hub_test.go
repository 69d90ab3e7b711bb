package privacy_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/client/hub/wire"
	"github.com/iotledger/iotledger/client/hub/wire/wiretest"
	"github.com/iotledger/iotledger/index"
	"github.com/iotledger/iotledger/test/testnet"
)

// A private monitor needs nothing special: it speaks the device protocol to
// a hub, and the hub routes its readings through SubmitPrivateBatch.
func TestHubKeepsAPrivateMonitorsValuesOffTheChannel(t *testing.T) {
	ctx := testContext(t)
	org1Operator := connect(ctx, t, "Org1", "operator")
	org1Hub := connect(ctx, t, "Org1", "hub")
	org1Admin := connect(ctx, t, "Org1", "admin")
	org2Operator := connect(ctx, t, "Org2", "operator")

	const hubID = "hub-private"
	h, err := hub.New(hub.Config{HubID: hubID, MQTTAddr: "127.0.0.1:0", DataDir: t.TempDir(), Ledger: org1Hub, BatchWait: 100 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, h.Start(ctx))
	t.Cleanup(func() { _ = h.Close() })

	mon := newMonitor(t, "hub-vitals")
	_, err = org1Operator.EnrollDevice(ctx, api.EnrollRequest{ID: mon.id, Type: "vitals-monitor", PublicKey: mon.signer.Public().PEM(), Activate: true, Private: true})
	require.NoError(t, err)

	conn := dialHub(ctx, t, h.MQTTAddr(), hubID, mon)
	var envs []reading.Envelope
	for i := range 3 {
		env := mon.vitals(t, 100+float64(i)+0.0625, "hub-secret-"+mon.id)
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := conn.Publish(pctx, &paho.Publish{Topic: wire.Topic(mon.id, wire.KindTelemetry), QoS: 1, Payload: env.Encode()})
		cancel()
		require.NoError(t, err)
		envs = append(envs, env)
	}

	require.Eventually(t, func() bool {
		seen, err := org1Operator.Seen(ctx, mon.id, []uint64{1, 2, 3})
		return err == nil && seen.HighWater == 3 && seen.Seqs[0].State == api.SeqAccepted && seen.Seqs[1].State == api.SeqAccepted
	}, 2*time.Minute, 200*time.Millisecond, "the hub never committed the readings")
	testnet.Settle(ctx, t, fabric)
	ix1, ix2 := testnet.StartIndex(t, fabric, "Org1"), testnet.StartIndex(t, fabric, "Org2")
	ix1.Sync(t)
	ix2.Sync(t)

	for i, env := range envs {
		seq := uint64(i + 1)
		// Org1's index finds the reading's batch, and the owner reads the
		// reading, values and all, as the device signed it: from its index
		// and from its collection.
		r, err := ix1.Reading(ctx, mon.id, seq)
		require.NoError(t, err)
		require.True(t, r.Private)
		require.Equal(t, env.Payload, r.Payload)
		require.Equal(t, env.Signature, r.Signature)
		kept, err := org1Operator.PrivateBatch(ctx, r.BatchTx)
		require.NoError(t, err)
		require.Contains(t, kept.Readings, env, "the owner reads reading %d's values", seq)

		// Org2 knows of the private batch, never its values: its index has
		// no payload, signature or values of the reading, and its operator
		// is refused the batch.
		b, err := ix2.Batch(ctx, r.BatchTx)
		require.NoError(t, err)
		require.True(t, b.Private)
		require.Equal(t, "Org1MSP", b.MSPID)
		if r2, err := ix2.Reading(ctx, mon.id, seq); err == nil {
			require.Nil(t, r2.Payload, "Org2's index holds reading %d's payload", seq)
			require.Nil(t, r2.Signature, "Org2's index holds reading %d's signature", seq)
			require.Empty(t, r2.Values, "Org2's index holds reading %d's values", seq)
		} else {
			require.ErrorIs(t, err, index.ErrNotFound)
		}
		_, err = org2Operator.PrivateBatch(ctx, r.BatchTx)
		require.Error(t, err, "Org2 reads the private batch of reading %d", seq)

		// The batch's block carries neither the payload nor the signature,
		// only the hashes of Org1's collection.
		block := blockBytes(ctx, t, org1Admin, r.BatchTx)
		require.False(t, bytes.Contains(block, []byte(base64.StdEncoding.EncodeToString(env.Payload))), "the block carries reading %d's payload", seq)
		require.False(t, bytes.Contains(block, []byte(base64.StdEncoding.EncodeToString(env.Signature))), "the block carries reading %d's signature", seq)
		require.True(t, bytes.Contains(block, []byte("_implicit_org_Org1MSP")), "the block carries the hashes of reading %d's private record", seq)
	}
}

// dialHub connects a device to a hub over MQTT 5 with a signed token.
func dialHub(ctx context.Context, t *testing.T, addr, hubID string, m *monitor) *paho.Client {
	t.Helper()
	return wiretest.DialMQTT(ctx, t, addr, hubID, m.id, m.signer, paho.ClientConfig{})
}
