package wire

import (
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/stretchr/testify/require"
)

func TestParseTopicAcceptsDeviceTopics(t *testing.T) {
	for _, k := range []Kind{KindTelemetry, KindAcks, KindCommands, KindErrors, KindInbox} {
		dev, kind, err := ParseTopic(Topic("cold-1", k))
		require.NoError(t, err)
		require.Equal(t, "cold-1", dev)
		require.Equal(t, k, kind)
	}
}

func TestParseTopicRefusesEverythingElse(t *testing.T) {
	for _, topic := range []string{
		"", "iotledger/v1/devices/", "iotledger/v1/devices/cold-1", "iotledger/v1/devices/cold-1/",
		"iotledger/v1/devices/+/telemetry", "iotledger/v1/devices/#", "iotledger/v1/devices/cold-1/telemetry/x",
		"iotledger/v1/devices/cold-1/config", "iotledger/v2/devices/cold-1/telemetry", "$SYS/broker",
		"iotledger/v1/devices/" + strings.Repeat("a", 129) + "/telemetry", "iotledger/v1/devices/a b/telemetry",
	} {
		_, _, err := ParseTopic(topic)
		require.Error(t, err, topic)
	}
}

func TestSignedTokenParsesAndVerifies(t *testing.T) {
	for _, alg := range []reading.Algorithm{reading.ECDSAP256, reading.Ed25519} {
		s, err := reading.GenerateKey(alg)
		require.NoError(t, err)
		at := time.UnixMilli(1767225600123)
		tok, err := SignToken(s, "hub-a", "cold-1", at, []byte("0123456789abcdef"))
		require.NoError(t, err)
		p, err := ParseToken(tok)
		require.NoError(t, err)
		require.Equal(t, at.UnixMilli(), p.TimestampMS)
		require.Equal(t, "30313233343536373839616263646566", p.Nonce)
		require.NoError(t, p.Verify(s.Public(), "hub-a", "cold-1"))
		require.Error(t, p.Verify(s.Public(), "hub-b", "cold-1"), "token bound to its hub")
		require.Error(t, p.Verify(s.Public(), "hub-a", "cold-2"), "token bound to its device")
	}
}

func TestParseTokenRefusesMalformedTokens(t *testing.T) {
	sig := "MEUCIQDx"
	for _, tok := range []string{
		"", "v1", "v1.1.2", "v2.1767225600123.00112233445566778899.AAAA",
		"v1.abc.0011223344556677.AAAA", "v1.01767225600123.0011223344556677.AAAA", "v1.-5.0011223344556677.AAAA",
		"v1.1767225600123.00112233.AAAA", "v1.1767225600123.0011223344556677X.AAAA",
		"v1.1767225600123.00112233445566AA.AAAA", "v1.1767225600123.0011223344556677.@@@@",
		"v1.1767225600123.0011223344556677.", "v1.1767225600123.0011223344556677." + sig + ".x",
		"v1.1767225600123.0011223344556677." + strings.Repeat("A", 600),
	} {
		_, err := ParseToken(tok)
		require.Error(t, err, tok)
	}
}

// The connect token is not JSON, so it has no keys to duplicate or to vary
// in case; what the strict JSON rules ask of it is that one token string has
// one meaning: no case variants of its fixed parts, no invalid UTF-8, and one
// spelling for each value.
func TestParseTokenRefusesVariantSpellings(t *testing.T) {
	for _, tc := range []struct{ name, token, reason string }{
		{"version in upper case", "V1.1767225600123.0011223344556677.MEUCIQDx", `unsupported version "V1", want "v1"`},
		{"nonce in upper case", "v1.1767225600123.00112233445566AB.MEUCIQDx", "nonce must be lowercase hex"},
		{"invalid UTF-8 in the nonce", "v1.1767225600123.0011223344556677\xff.MEUCIQDx", "invalid UTF-8 (a token is ASCII)"},
		{"invalid UTF-8 in the signature", "v1.1767225600123.0011223344556677.MEUC\xc0IQDx", "invalid UTF-8 (a token is ASCII)"},
		{"lone surrogate encoded in UTF-8", "v1.1767225600123.0011223344556677.\xed\xa0\x80", "invalid UTF-8 (a token is ASCII)"},
		{"non-ASCII digits", "v1.١٧٦٧.0011223344556677.MEUCIQDx", "timestamp must be decimal Unix milliseconds without leading zeros"},
		{"leading zero", "v1.01767225600123.0011223344556677.MEUCIQDx", "timestamp must be decimal Unix milliseconds without leading zeros"},
		{"base64 without padding", "v1.1767225600123.0011223344556677.AQ", "signature is not standard base64"},
		{"base64 with nonzero padding bits", "v1.1767225600123.0011223344556677.AR==", "signature is not standard base64"},
		{"base64 with line breaks", "v1.1767225600123.0011223344556677.ME\r\nUCIQDx", "signature is not standard base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseToken(tc.token)
			var te *TokenError
			require.ErrorAs(t, err, &te)
			require.Equal(t, tc.reason, te.Reason)
		})
	}
}

func FuzzParseToken(f *testing.F) {
	f.Add("v1.1767225600123.0011223344556677.MEUCIQDx")
	f.Add("v1.0.00000000000000000000000000000000.AA==")
	f.Add("....")
	f.Add("V1.1767225600123.0011223344556677.MEUCIQDx")
	f.Add("v1.1767225600123.0011223344556677\xff.MEUCIQDx")
	f.Add("v1.1767225600123.0011223344556677.AR==")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			return
		}
		require.NotEmpty(t, tok.Signature)
		require.LessOrEqual(t, len(tok.Signature), reading.MaxSignatureBytes)
		require.GreaterOrEqual(t, len(tok.Nonce), MinNonceHex)
		require.GreaterOrEqual(t, tok.TimestampMS, int64(0))
		require.True(t, utf8.ValidString(s))
		// One spelling per meaning: the parsed token prints back to the
		// exact string that was accepted.
		again := TokenVersion + "." + strconv.FormatInt(tok.TimestampMS, 10) + "." + tok.Nonce + "." + base64.StdEncoding.EncodeToString(tok.Signature)
		require.Equal(t, s, again)
	})
}

func FuzzParseTopic(f *testing.F) {
	f.Add("iotledger/v1/devices/cold-1/telemetry")
	f.Add("iotledger/v1/devices/+/inbox")
	f.Add("iotledger/v1/devices//acks")
	f.Fuzz(func(t *testing.T, topic string) {
		dev, kind, err := ParseTopic(topic)
		if err != nil {
			return
		}
		require.Equal(t, topic, Topic(dev, kind), "a parsed topic must round-trip")
		require.NoError(t, reading.ValidateID("device", dev))
	})
}
