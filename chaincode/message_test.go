package chaincode

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

func (d *testDevice) message(t *testing.T, to, id string, body string) reading.Envelope {
	t.Helper()
	env, err := d.signer.SignMessage(reading.MessagePayload{From: d.id, To: to, ID: id, Ts: 1, TTL: 600, Body: json.RawMessage(body)})
	require.NoError(t, err)
	return env
}

func (w *world) sendMessage(c caller, env reading.Envelope) (string, error) {
	return w.invoke(c, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Message.Send(ctx, string(env.Encode()))
	})
}

func TestMessageWaitsForItsRecipientAndIsDeliveredByTheRecipientsOrg(t *testing.T) {
	w := newWorld(t)
	a := w.enroll(org1Operator, "a", "sensor")
	w.enroll(org2Operator, "c", "valve")

	// Org2 has not let Org1's devices message c: refused in the same words
	// as a message to a device that does not exist.
	_, err := w.sendMessage(org1Hub, a.message(t, "c", "m1", `{"close":true}`))
	require.Equal(t, api.CodeAccessDenied, api.CodeOf(err))
	_, errUnknown := w.sendMessage(org1Hub, a.message(t, "nobody", "m1", `{"close":true}`))
	require.Equal(t, strings.ReplaceAll(err.Error(), " c ", " nobody "), errUnknown.Error(), "the refusal does not tell whether the id exists")

	_, err = w.putPolicy(org2Operator, grant("org1-msgs", []string{"msp:Org1MSP"}, []string{api.ActionDeviceMessage}, []string{"c"}))
	require.NoError(t, err)
	out, err := w.sendMessage(org1Hub, a.message(t, "c", "m1", `{"close":true}`))
	require.NoError(t, err)
	var sent api.StoredMessage
	require.NoError(t, json.Unmarshal([]byte(out), &sent))
	require.Equal(t, "Org2MSP", sent.Owner)
	require.Equal(t, w.now.Add(600*time.Second), sent.ExpiresAt)
	require.Equal(t, api.EventMessageSent, w.lastEvent.Type)
	require.NotNil(t, w.lastEvent.Messages[0].Envelope, "the recipient's hub gets the message from the event")
	k := ckey(t, kindMessage, "c", "a", "m1")
	require.Equal(t, []string{"Org2MSP"}, w.endorsers(k), "only the recipient's org delivers or expires it")

	// Org2's hub lists and delivers it; Org1's hub may do neither.
	list := func(c caller) (string, error) {
		return w.invoke(c, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Message.List(ctx, `{"to":"c"}`)
		})
	}
	_, err = list(org1Hub)
	require.Equal(t, api.CodeAccessDenied, api.CodeOf(err))
	page := must[api.MessagePage](w, org2Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Message.List(ctx, `{"to":"c"}`)
	})
	require.Len(t, page.Messages, 1)
	m, err := reading.ParseMessage(*page.Messages[0].Envelope)
	require.NoError(t, err)
	require.NoError(t, m.Verify(a.signer.Public()), "the recipient checks the sender's signature itself")

	deliver := func(c caller) (string, error) {
		return w.invoke(c, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Message.MarkDelivered(ctx, "c", "a", "m1")
		})
	}
	_, err = deliver(org1Hub)
	require.Equal(t, api.CodeAccessDenied, api.CodeOf(err))
	_, err = deliver(org2Hub)
	require.NoError(t, err)
	require.Equal(t, api.EventMessageDelivered, w.lastEvent.Type)
	require.Nil(t, w.lastEvent.Messages[0].Envelope)
	require.NotContains(t, w.state, k)
	_, err = deliver(org2Hub)
	require.Equal(t, api.CodeNotFound, api.CodeOf(err))
}

func TestMessageRefusals(t *testing.T) {
	w := newWorld(t)
	a := w.enroll(org1Operator, "a", "sensor")
	w.enroll(org1Operator, "b", "sensor")
	ok := a.message(t, "b", "m1", `{}`)
	_, err := w.sendMessage(org1Hub, ok)
	require.NoError(t, err)

	forged := a.message(t, "b", "m2", `{}`)
	forged.Signature = ok.Signature
	other := &testDevice{id: "a", signer: newKey(t, reading.ECDSAP256)}
	cases := []struct {
		name string
		who  caller
		env  reading.Envelope
		code api.Code
		says string
	}{
		{"replay", org1Hub, ok, api.CodeReplay, "already waiting"},
		{"forged signature", org1Hub, forged, api.CodeBadSignature, "signature does not verify"},
		{"signed by another key", org1Hub, other.message(t, "b", "m3", `{}`), api.CodeBadSignature, "signature does not verify"},
		{"another org's hub", org2Hub, a.message(t, "b", "m4", `{}`), api.CodeAccessDenied, "may not telemetry:write"},
		{"unknown sender", org1Hub, (&testDevice{id: "ghost", signer: newKey(t, reading.Ed25519)}).message(t, "b", "m5", `{}`), api.CodeNotFound, "not enrolled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(w.state)
			_, err := w.sendMessage(tc.who, tc.env)
			require.Equal(t, tc.code, api.CodeOf(err), "%v", err)
			require.ErrorContains(t, err, tc.says)
			require.Len(t, w.state, before)
		})
	}
	t.Run("not a message", func(t *testing.T) {
		refused(t, w, org1Hub, api.CodeInvalidArgument, "exactly one of body and sealed", func(ctx contractapi.TransactionContextInterface) (string, error) {
			env := reading.Envelope{Payload: []byte(`{"from":"a","to":"b","id":"x","ts":1}`), Signature: []byte{1}}
			return w.c.Message.Send(ctx, string(env.Encode()))
		})
	})
	t.Run("mailbox full", func(t *testing.T) {
		for i := range maxPendingMessages {
			w.state[ckey(t, kindMessage, "b", "z", "filler-"+strconv.Itoa(i))] = []byte("{}")
		}
		_, err := w.sendMessage(org1Hub, a.message(t, "b", "m9", `{}`))
		require.Equal(t, api.CodeResourceExhausted, api.CodeOf(err), "%v", err)
		require.ErrorContains(t, err, "messages already wait for b")
	})
}

func TestUndeliveredMessageExpiresAndSaysSo(t *testing.T) {
	w := newWorld(t)
	a := w.enroll(org1Operator, "a", "sensor")
	w.enroll(org1Operator, "b", "sensor")
	_, err := w.sendMessage(org1Hub, a.message(t, "b", "m1", `{}`))
	require.NoError(t, err)
	expire := func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Message.Expire(ctx, "b", "a", "m1")
	}
	refused(t, w, org1Hub, api.CodeFailedPrecondition, "still valid", expire)
	w.now = w.now.Add(601 * time.Second)
	page := must[api.MessagePage](w, org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Message.List(ctx, `{"to":"b"}`)
	})
	require.Empty(t, page.Messages, "an expired message is not handed out")
	refused(t, w, org1Hub, api.CodeFailedPrecondition, "call message:Expire", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Message.MarkDelivered(ctx, "b", "a", "m1")
	})
	must[api.StoredMessage](w, org1Hub, expire)
	require.Equal(t, api.EventMessageExpired, w.lastEvent.Type)
	require.Equal(t, []string{"b", "a"}, w.lastEvent.Devices, "the sender's hub learns of it")
}

func TestSealedMessageIsStoredWithoutItsBody(t *testing.T) {
	w := newWorld(t)
	a := w.enroll(org1Operator, "a", "sensor")
	bKey, err := reading.GenerateEncryptionKey()
	require.NoError(t, err)
	must[api.Device](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Enroll(ctx, jsonArg(t, api.EnrollRequest{ID: "b", Type: "sensor", PublicKey: newKey(t, reading.Ed25519).Public().PEM(),
			Activate: true, EncryptionKey: bKey.PublicKey().Bytes()}))
	})
	recipient, err := reading.ParseEncryptionKey(w.getDevice("b").EncryptionKey)
	require.NoError(t, err)
	sealed, err := reading.Seal(recipient, "a", "b", "s1", []byte(`{"pin":"4711-secret"}`))
	require.NoError(t, err)
	env, err := a.signer.SignMessage(reading.MessagePayload{From: "a", To: "b", ID: "s1", Ts: 1, Sealed: sealed})
	require.NoError(t, err)
	_, err = w.sendMessage(org1Hub, env)
	require.NoError(t, err)
	stored := w.state[ckey(t, kindMessage, "b", "a", "s1")]
	require.NotContains(t, string(stored), "4711-secret")
	require.NotContains(t, string(w.lastRaw), "4711-secret")
	var sm api.StoredMessage
	require.NoError(t, json.Unmarshal(stored, &sm))
	m, err := reading.ParseMessage(*sm.Envelope)
	require.NoError(t, err)
	body, err := m.Open(bKey)
	require.NoError(t, err)
	require.JSONEq(t, `{"pin":"4711-secret"}`, string(body))

	refused(t, w, org1Operator, api.CodeInvalidArgument, "encryptionKey", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Enroll(ctx, jsonArg(t, api.EnrollRequest{ID: "c", Type: "sensor", PublicKey: newKey(t, reading.Ed25519).Public().PEM(), EncryptionKey: []byte{1, 2}}))
	})
}
