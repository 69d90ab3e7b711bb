package hub

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub/hubtest"
	"github.com/iotledger/iotledger/client/hub/wire"
)

// message signs a device-to-device message from d.
func (d *device) message(t *testing.T, to, id string) []byte {
	t.Helper()
	env, err := d.signer.SignMessage(reading.MessagePayload{From: d.id, To: to, ID: id, Ts: 1, Body: json.RawMessage(`{"door":"open"}`)})
	require.NoError(t, err)
	return env.Encode()
}

func TestASignedMessageToAnOfflineRecipientIsKeptOnTheLedgerAndDeliveredWhenItSubscribes(t *testing.T) {
	fx := newFixture(t)
	a := fx.enroll(t, "dev-a", api.StatusActive)
	b := fx.enroll(t, "dev-b", api.StatusActive)
	fx.ledger.Set(func(f *hubtest.Ledger) { f.Messaging[[2]string{a.id, b.id}] = true })
	ma := fx.connect(t, a)
	_, err := ma.publish(t, wire.Topic(b.id, wire.KindInbox), a.message(t, b.id, "m1"))
	require.NoError(t, err)
	require.Equal(t, 1, fx.ledger.SentMessages(), "relayed through the ledger's message contract")
	require.Equal(t, 1, fx.ledger.WaitingMessages())

	mb := fx.connect(t, b)
	require.Equal(t, []byte{1}, mb.subscribe(t, wire.Topic(b.id, wire.KindInbox)))
	got := mb.next(t, wire.Topic(b.id, wire.KindInbox))
	var in wire.InboxMessage
	require.NoError(t, jsonUnmarshal(got.Payload, &in))
	require.Equal(t, a.id, in.From)
	require.Equal(t, b.id, in.To)
	var env reading.Envelope
	require.NoError(t, json.Unmarshal(in.Payload, &env))
	m, err := reading.ParseMessage(env)
	require.NoError(t, err)
	require.NoError(t, m.Verify(a.signer.Public()), "the recipient checks the sender's own signature")
	eventually(t, func() bool { return fx.ledger.WaitingMessages() == 0 }, "the delivered message is still kept on the ledger")
}

func TestASignedMessageToAConnectedRecipientGoesStraightToIt(t *testing.T) {
	fx := newFixture(t)
	a := fx.enroll(t, "dev-a", api.StatusActive)
	b := fx.enroll(t, "dev-b", api.StatusActive)
	fx.ledger.Set(func(f *hubtest.Ledger) { f.Messaging[[2]string{a.id, b.id}] = true })
	ma, mb := fx.connect(t, a), fx.connect(t, b)
	require.Equal(t, []byte{1}, mb.subscribe(t, wire.Topic(b.id, wire.KindInbox)))
	_, err := ma.publish(t, wire.Topic(b.id, wire.KindInbox), a.message(t, b.id, "m1"))
	require.NoError(t, err)
	var in wire.InboxMessage
	require.NoError(t, jsonUnmarshal(mb.next(t, wire.Topic(b.id, wire.KindInbox)).Payload, &in))
	require.Equal(t, a.id, in.From)
	require.Zero(t, fx.ledger.SentMessages(), "no ledger transaction for a recipient on the same hub")
}

func TestMessagesTheHubCannotVouchForAreRefused(t *testing.T) {
	fx := newFixture(t)
	a := fx.enroll(t, "dev-a", api.StatusActive)
	b := fx.enroll(t, "dev-b", api.StatusActive)
	c := fx.enroll(t, "dev-c", api.StatusActive)
	fx.ledger.Set(func(f *hubtest.Ledger) { f.Messaging[[2]string{a.id, b.id}] = true })
	ma := fx.connect(t, a)
	require.Equal(t, []byte{1}, ma.subscribe(t, wire.Topic(a.id, wire.KindErrors)))
	reason := func(payload []byte) string {
		t.Helper()
		_, _ = ma.publish(t, wire.Topic(b.id, wire.KindInbox), payload)
		var e wire.ErrorMessage
		require.NoError(t, jsonUnmarshal(ma.next(t, wire.Topic(a.id, wire.KindErrors)).Payload, &e))
		return e.Reason
	}
	forged := a.message(t, b.id, "m1")
	var env reading.Envelope
	require.NoError(t, json.Unmarshal(forged, &env))
	other := c.message(t, b.id, "x")
	var otherEnv reading.Envelope
	require.NoError(t, json.Unmarshal(other, &otherEnv))
	env.Signature = otherEnv.Signature
	require.Equal(t, wire.ReasonBadSignature, reason(env.Encode()), "a signature that is not the sender's")
	require.Equal(t, wire.ReasonWrongDevice, reason(c.message(t, b.id, "m2")), "a message of another device")
	require.Equal(t, wire.ReasonUndeliverable, reason([]byte(`{"door":"open"}`)), "an unsigned message for a recipient that is not here")
	require.Zero(t, fx.ledger.SentMessages())
}

func TestAMessageAnotherHubKeptIsDeliveredToARecipientConnectedHere(t *testing.T) {
	fx := newFixture(t)
	a := fx.enroll(t, "dev-a", api.StatusActive) // connected elsewhere
	b := fx.enroll(t, "dev-b", api.StatusActive)
	fx.ledger.Set(func(f *hubtest.Ledger) { f.Messaging[[2]string{a.id, b.id}] = true })
	mb := fx.connect(t, b)
	require.Equal(t, []byte{1}, mb.subscribe(t, wire.Topic(b.id, wire.KindInbox)))
	var env reading.Envelope
	require.NoError(t, json.Unmarshal(a.message(t, b.id, "far-1"), &env))
	_, err := fx.ledger.SendMessage(t.Context(), env) // another hub's message:Send; its event reaches this hub
	require.NoError(t, err)
	var in wire.InboxMessage
	require.NoError(t, jsonUnmarshal(mb.next(t, wire.Topic(b.id, wire.KindInbox)).Payload, &in))
	require.Equal(t, a.id, in.From)
	eventually(t, func() bool { return fx.ledger.WaitingMessages() == 0 }, "the delivered message is still kept on the ledger")
}

func TestTheSenderIsToldWhenItsRelayedMessageExpiresUndelivered(t *testing.T) {
	fx := newFixture(t)
	a := fx.enroll(t, "dev-a", api.StatusActive)
	b := fx.enroll(t, "dev-b", api.StatusActive)
	fx.ledger.Set(func(f *hubtest.Ledger) { f.Messaging[[2]string{a.id, b.id}] = true })
	ma := fx.connect(t, a)
	require.Equal(t, []byte{1}, ma.subscribe(t, wire.Topic(a.id, wire.KindErrors)))
	env, err := a.signer.SignMessage(reading.MessagePayload{From: a.id, To: b.id, ID: "short", Ts: 1, TTL: 1, Body: json.RawMessage(`{}`)})
	require.NoError(t, err)
	_, err = ma.publish(t, wire.Topic(b.id, wire.KindInbox), env.Encode())
	require.NoError(t, err)
	var e wire.ErrorMessage
	require.NoError(t, jsonUnmarshal(ma.next(t, wire.Topic(a.id, wire.KindErrors)).Payload, &e))
	require.Equal(t, wire.ReasonUndeliverable, e.Reason)
	require.Contains(t, e.Message, "message short to dev-b expired")
}
