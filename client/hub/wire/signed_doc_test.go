package wire

import (
	"crypto/ecdh"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/reading"
)

func TestProtocolDocSignedCommandExampleVerifies(t *testing.T) {
	ex := docExamples(t)
	for _, name := range []string{"command-ca", "command-hub-cert", "command-hub-key", "command-payload", "command-signed"} {
		require.Contains(t, ex, name)
	}
	// The example's hub identity is the one that signed it.
	signer, err := NewHubSigner([]byte(ex["command-hub-cert"]), []byte(ex["command-hub-key"]))
	require.NoError(t, err)
	var m SignedMessage
	require.NoError(t, json.Unmarshal([]byte(ex["command-signed"]), &m))
	require.Equal(t, signer.chain, m.Chain, "x5c is the example hub certificate")
	require.Equal(t, ex["command-payload"], string(m.Payload), "p is the example payload, byte for byte")

	at := time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC) // the command's issuedAt
	v, err := NewHubVerifier([]byte(ex["command-ca"]), func() time.Time { return at })
	require.NoError(t, err)
	cmd, hub, err := v.VerifyCommand("cold-0001", []byte(ex["command-signed"]))
	require.NoError(t, err)
	require.Equal(t, "cmd-7f3a", cmd.ID)
	require.Equal(t, "set-setpoint", cmd.Name)
	require.Equal(t, "hub1", hub.Subject.CommonName)

	// The same bytes are no command for another device, in another domain,
	// or with one payload byte changed.
	_, _, err = v.VerifyCommand("cold-0002", []byte(ex["command-signed"]))
	require.Error(t, err)
	_, _, err = v.Verify(DomainInbox, []byte(ex["command-signed"]))
	require.ErrorContains(t, err, "signature does not verify")
	m.Payload[len(m.Payload)-3] ^= 1
	tampered, err := json.Marshal(m)
	require.NoError(t, err)
	_, _, err = v.VerifyCommand("cold-0001", tampered)
	require.Error(t, err)
}

func TestProtocolDocSealedMessageExampleVerifiesAndOpens(t *testing.T) {
	ex := docExamples(t)
	for _, name := range []string{"message-recipient-key", "message-payload", "message-envelope", "public-key"} {
		require.Contains(t, ex, name)
	}
	env, err := reading.ParseEnvelope([]byte(ex["message-envelope"]))
	require.NoError(t, err)
	require.Equal(t, ex["message-payload"], string(env.Payload), "p is the example payload, byte for byte")
	m, err := reading.ParseMessage(env)
	require.NoError(t, err)
	sender, err := reading.ParsePublicKey(ex["public-key"])
	require.NoError(t, err)
	require.NoError(t, m.Verify(sender), "signed by cold-0001's key of §9")
	raw, err := hex.DecodeString(ex["message-recipient-key"])
	require.NoError(t, err)
	key, err := ecdh.X25519().NewPrivateKey(raw)
	require.NoError(t, err)
	body, err := m.Open(key)
	require.NoError(t, err)
	require.JSONEq(t, `{"door":"open"}`, string(body))
	other, err := reading.GenerateEncryptionKey()
	require.NoError(t, err)
	_, err = m.Open(other)
	require.Error(t, err, "only cold-0002 opens it")
}
