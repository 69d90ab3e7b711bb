package wire

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/stretchr/testify/require"
)

// docExamples returns the code blocks of docs/protocol.md that follow an
// "<!-- example:NAME -->" marker, by name.
func docExamples(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../../../docs/protocol.md")
	require.NoError(t, err)
	out := map[string]string{}
	rest := string(b)
	for {
		i := strings.Index(rest, "<!-- example:")
		if i < 0 {
			return out
		}
		rest = rest[i+len("<!-- example:"):]
		name, after, ok := strings.Cut(rest, " -->")
		require.True(t, ok)
		open := strings.Index(after, "```")
		require.GreaterOrEqual(t, open, 0, name)
		body := after[open+3:]
		body = body[strings.Index(body, "\n")+1:] // skip the language tag
		end := strings.Index(body, "```")
		require.GreaterOrEqual(t, end, 0, name)
		out[name] = strings.TrimSuffix(body[:end], "\n")
		rest = body[end:]
	}
}

func TestProtocolDocWorkedExampleVerifies(t *testing.T) {
	ex := docExamples(t)
	for _, name := range []string{"private-key", "public-key", "payload", "message-hex", "message-sha256", "signature", "envelope", "leaf", "token", "ack-payload", "ack-envelope", "refused-payload", "refused-payload-error"} {
		require.Contains(t, ex, name)
	}
	key, err := reading.ParsePublicKey(ex["public-key"])
	require.NoError(t, err)
	require.Equal(t, reading.ECDSAP256, key.Algorithm())
	signer, err := reading.ParsePrivateKey([]byte(ex["private-key"]))
	require.NoError(t, err)
	require.True(t, signer.Public().Equal(key), "the example private key belongs to the public key")

	payload := []byte(ex["payload"])
	p, err := reading.ParsePayload(payload)
	require.NoError(t, err)
	require.Equal(t, "cold-0001", p.Device)

	msg := reading.Message(reading.DomainReading, payload)
	require.Equal(t, hex.EncodeToString(msg), strings.ReplaceAll(ex["message-hex"], "\n", ""))
	sum := sha256.Sum256(msg)
	require.Equal(t, hex.EncodeToString(sum[:]), ex["message-sha256"])

	sig, err := base64.StdEncoding.DecodeString(ex["signature"])
	require.NoError(t, err)
	require.NoError(t, key.Verify(msg, sig))

	env, err := reading.ParseEnvelope([]byte(ex["envelope"]))
	require.NoError(t, err)
	require.Equal(t, payload, env.Payload)
	require.Equal(t, sig, env.Signature)
	require.Equal(t, ex["envelope"], string(env.Encode()))
	r, err := env.Decode()
	require.NoError(t, err)
	require.NoError(t, r.Verify(key))
	leaf := r.LeafHash()
	require.Equal(t, hex.EncodeToString(leaf[:]), ex["leaf"])

	_, err = reading.ParsePayload([]byte(ex["refused-payload"]))
	require.EqualError(t, err, ex["refused-payload-error"], "the parsing rules' example is refused as documented")

	tok, err := ParseToken(ex["token"])
	require.NoError(t, err)
	require.Equal(t, int64(1767225601234), tok.TimestampMS)
	require.Equal(t, "9f86d081884c7d659a2feaa0c55ad015", tok.Nonce)
	require.NoError(t, tok.Verify(key, "hub1", "cold-0001"))

	ackEnv, err := reading.ParseEnvelope([]byte(ex["ack-envelope"]))
	require.NoError(t, err)
	require.Equal(t, ex["ack-payload"], string(ackEnv.Payload))
	ack, err := reading.ParseAck(ackEnv)
	require.NoError(t, err)
	require.Equal(t, api.AckPayload{Device: "cold-0001", Command: "cmd-7f3a", Status: api.CommandAcked, Result: "setpoint 4.0", Ts: 1767225660000}, ack)
	require.NoError(t, key.Verify(reading.Message(reading.DomainAck, ackEnv.Payload), ackEnv.Signature))
	require.Error(t, key.Verify(reading.Message(reading.DomainReading, ackEnv.Payload), ackEnv.Signature), "domains separate purposes")
}

func TestProtocolDocNamesEveryTopicKindAndReason(t *testing.T) {
	b, err := os.ReadFile("../../../docs/protocol.md")
	require.NoError(t, err)
	doc := string(b)
	for _, k := range []Kind{KindTelemetry, KindAcks, KindCommands, KindErrors, KindInbox} {
		require.Contains(t, doc, "iotledger/v1/devices/<me>/"+string(k))
	}
	for _, r := range []string{ReasonMalformed, ReasonWrongDevice, ReasonBadSignature, ReasonReplay, ReasonDeviceInactive,
		ReasonUnknownDevice, ReasonNotAuthorized, ReasonUnavailable, ReasonLedgerRefused, ReasonUnknownCommand, ReasonTooLarge} {
		require.Contains(t, doc, "`"+r+"`")
	}
}
