package device_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/device"
	"github.com/iotledger/iotledger/client/hub/wire"
)

func TestASealedMessageReachesARecipientThatConnectsLaterAndOpensOnlyThere(t *testing.T) {
	f := newFixture(t)
	alice := f.device(t, "alice-1", nil)
	connect(t, alice)
	f.ledger.Messaging[[2]string{"alice-1", "bob-1"}] = true
	bobKey, err := reading.GenerateEncryptionKey()
	require.NoError(t, err)
	bob := f.device(t, "bob-1", nil) // enrolled, not connected yet
	sealTo, err := reading.ParseEncryptionKey(bobKey.PublicKey().Bytes())
	require.NoError(t, err)
	require.NoError(t, alice.SendMessage(t.Context(), "bob-1", "m1", []byte(`{"door":"open"}`), sealTo, 600))

	got := make(chan wire.InboxMessage, 1)
	bob.OnInbox(func(m wire.InboxMessage) { got <- m })
	connect(t, bob)
	var in wire.InboxMessage
	select {
	case in = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("bob never got the message the ledger kept for it")
	}
	aliceKey, err := f.ledger.Device(t.Context(), "alice-1")
	require.NoError(t, err)
	pub, err := reading.ParsePublicKey(aliceKey.PublicKey)
	require.NoError(t, err)
	m, body, err := device.OpenMessage(in, "bob-1", pub, bobKey)
	require.NoError(t, err)
	require.Equal(t, "m1", m.ID)
	require.JSONEq(t, `{"door":"open"}`, string(body))

	eve, err := reading.GenerateEncryptionKey()
	require.NoError(t, err)
	_, _, err = device.OpenMessage(in, "bob-1", pub, eve)
	require.Error(t, err, "only bob's key opens it")
	_, _, err = device.OpenMessage(in, "carol-1", pub, bobKey)
	require.Error(t, err, "a message for bob is no message for carol")
}
