package reading

import (
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSealedMessageOpensOnlyForItsRecipientAndItsHeader(t *testing.T) {
	sender, err := GenerateKey(ECDSAP256)
	require.NoError(t, err)
	bob, err := GenerateEncryptionKey()
	require.NoError(t, err)
	eve, err := GenerateEncryptionKey()
	require.NoError(t, err)
	recipient, err := ParseEncryptionKey(bob.PublicKey().Bytes())
	require.NoError(t, err)

	sealed, err := Seal(recipient, "alice", "bob", "m1", []byte(`{"door":"open"}`))
	require.NoError(t, err)
	env, err := sender.SignMessage(MessagePayload{From: "alice", To: "bob", ID: "m1", Ts: 1, Sealed: sealed})
	require.NoError(t, err)
	m, err := ParseMessage(env)
	require.NoError(t, err)
	require.NoError(t, m.Verify(sender.Public()))
	require.NotContains(t, string(env.Payload), "door", "the body travels sealed")

	body, err := m.Open(bob)
	require.NoError(t, err)
	require.JSONEq(t, `{"door":"open"}`, string(body))
	_, err = m.Open(eve)
	require.ErrorContains(t, err, "opening the message")

	// The ciphertext is bound to sender, recipient and id: moved into
	// another message it does not open.
	moved := m.MessagePayload
	moved.ID = "m2"
	_, err = moved.Open(bob)
	require.ErrorContains(t, err, "opening the message")
	moved = m.MessagePayload
	moved.From = "mallory"
	_, err = moved.Open(bob)
	require.ErrorContains(t, err, "opening the message")
}

func TestSignedPlainMessageVerifiesWithTheSendersKeyOnly(t *testing.T) {
	sender, err := GenerateKey(Ed25519)
	require.NoError(t, err)
	other, err := GenerateKey(Ed25519)
	require.NoError(t, err)
	env, err := sender.SignMessage(MessagePayload{From: "a", To: "b", ID: "1", Ts: 1, TTL: 60, Body: json.RawMessage(`{"x":1}`)})
	require.NoError(t, err)
	m, err := ParseMessage(env)
	require.NoError(t, err)
	require.NoError(t, m.Verify(sender.Public()))
	require.Error(t, m.Verify(other.Public()))
	require.Equal(t, int64(60), m.Lifetime())
	// A signature made for a reading is no signature of a message.
	sig, err := sender.Sign(DomainReading, env.Payload)
	require.NoError(t, err)
	m.Signature = sig
	require.Error(t, m.Verify(sender.Public()))
}

func TestParseMessageRefusesWhatIsNotOneMessage(t *testing.T) {
	sealed := `{"suite":"` + SealSuite + `","enc":"` + b64(make([]byte, 32)) + `","ct":"AAAA"}`
	cases := []struct {
		name, payload, says string
	}{
		{"body and sealed", `{"from":"a","to":"b","id":"1","ts":1,"body":{},"sealed":` + sealed + `}`, "exactly one of body and sealed"},
		{"neither", `{"from":"a","to":"b","id":"1","ts":1}`, "exactly one of body and sealed"},
		{"to itself", `{"from":"a","to":"a","id":"1","ts":1,"body":{}}`, "does not message itself"},
		{"bad id", `{"from":"a","to":"b","id":"x y","ts":1,"body":{}}`, "id"},
		{"ttl too long", `{"from":"a","to":"b","id":"1","ts":1,"ttl":9999999,"body":{}}`, "ttl"},
		{"unknown suite", `{"from":"a","to":"b","id":"1","ts":1,"sealed":{"suite":"rot13","enc":"` + b64(make([]byte, 32)) + `","ct":"AA=="}}`, "sealed.suite"},
		{"short enc", `{"from":"a","to":"b","id":"1","ts":1,"sealed":{"suite":"` + SealSuite + `","enc":"AA==","ct":"AA=="}}`, "sealed.enc"},
		{"case variant", `{"from":"a","TO":"b","to":"b","id":"1","ts":1,"body":{}}`, "case-sensitive"},
		{"duplicate key", `{"from":"a","to":"b","to":"c","id":"1","ts":1,"body":{}}`, "duplicate key"},
		{"duplicate key in the body", `{"from":"a","to":"b","id":"1","ts":1,"body":{"x":1,"x":2}}`, "duplicate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseMessage(Envelope{Payload: []byte(tc.payload), Signature: []byte{1}})
			require.ErrorContains(t, err, tc.says)
		})
	}
	_, err := ParseMessage(Envelope{Payload: make([]byte, MaxMessageBytes+1), Signature: []byte{1}})
	require.ErrorContains(t, err, "message payload must be")
	_, err = ParseEncryptionKey(make([]byte, 31))
	require.ErrorContains(t, err, "32 bytes")
}

func FuzzParseMessage(f *testing.F) {
	f.Add([]byte(`{"from":"a","to":"b","id":"1","ts":1,"body":{"x":1}}`))
	f.Add([]byte(`{"from":"a","to":"b","id":"1","ts":1,"sealed":{"suite":"x","enc":"","ct":""}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(Envelope{Payload: b, Signature: []byte{1}})
		if err != nil {
			return
		}
		// What parses is one valid message.
		require.NoError(t, m.Validate())
	})
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
