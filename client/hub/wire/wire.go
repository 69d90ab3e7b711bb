// Package wire holds the device-facing MQTT protocol of the iotledger hub:
// topic names, the signed connect token, and the JSON of the messages the
// hub sends to devices (commands, error replies, inbox deliveries). The hub
// and the device simulator both speak it; docs/protocol.md describes it for
// firmware authors.
package wire

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/iotledger/iotledger/chaincode/reading"
)

// TopicPrefix starts every device topic.
const TopicPrefix = "iotledger/v1/devices/"

// Kind is the last level of a device topic.
type Kind string

// Topic kinds. Devices publish telemetry, acks and (to other devices) inbox;
// they subscribe to their own commands, errors and inbox.
const (
	KindTelemetry Kind = "telemetry"
	KindAcks      Kind = "acks"
	KindCommands  Kind = "commands"
	KindErrors    Kind = "errors"
	KindInbox     Kind = "inbox"
)

// Topic returns the topic of a device and kind.
func Topic(device string, kind Kind) string {
	return TopicPrefix + device + "/" + string(kind)
}

// TopicError says why a topic is not a device topic.
type TopicError struct {
	Topic  string
	Reason string
}

func (e *TopicError) Error() string {
	return fmt.Sprintf("topic %q: %s", e.Topic, e.Reason)
}

// ParseTopic splits "iotledger/v1/devices/<id>/<kind>" into its device id
// and kind. Wildcards, unknown kinds and invalid device ids are refused.
func ParseTopic(topic string) (device string, kind Kind, err error) {
	rest, ok := strings.CutPrefix(topic, TopicPrefix)
	if !ok {
		return "", "", &TopicError{Topic: topic, Reason: "not under " + TopicPrefix}
	}
	device, k, ok := strings.Cut(rest, "/")
	if !ok {
		return "", "", &TopicError{Topic: topic, Reason: "missing kind after the device id"}
	}
	if err := reading.ValidateID("device", device); err != nil {
		return "", "", &TopicError{Topic: topic, Reason: err.Error()}
	}
	switch Kind(k) {
	case KindTelemetry, KindAcks, KindCommands, KindErrors, KindInbox:
		return device, Kind(k), nil
	}
	return "", "", &TopicError{Topic: topic, Reason: fmt.Sprintf("unknown kind %q", k)}
}

// Token limits.
const (
	TokenVersion  = "v1"
	MinNonceHex   = 16 // 8 random bytes at least
	MaxNonceHex   = 64
	MaxTokenBytes = 512
)

// Token is a parsed connect password: "v1.<unix ms>.<nonce hex>.<base64 signature>".
type Token struct {
	TimestampMS int64
	Nonce       string // lowercase hex, exactly as sent
	Signature   []byte
}

// TokenError says why a connect token is malformed.
type TokenError struct{ Reason string }

func (e *TokenError) Error() string { return "auth token: " + e.Reason }

// ParseToken parses a connect password. It checks the structure only; the
// hub then checks the signature, the clock window and the nonce. A token is
// not JSON: it has one spelling per value (no leading zeros, lowercase hex,
// strict padded base64), so equal tokens are equal strings.
func ParseToken(s string) (Token, error) {
	if len(s) > MaxTokenBytes {
		return Token{}, &TokenError{Reason: fmt.Sprintf("longer than %d bytes", MaxTokenBytes)}
	}
	if !utf8.ValidString(s) {
		return Token{}, &TokenError{Reason: "invalid UTF-8 (a token is ASCII)"}
	}
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return Token{}, &TokenError{Reason: "want 4 dot-separated fields: v1.<unix ms>.<nonce hex>.<base64 signature>"}
	}
	if parts[0] != TokenVersion {
		return Token{}, &TokenError{Reason: fmt.Sprintf("unsupported version %q, want %q", parts[0], TokenVersion)}
	}
	ts := parts[1]
	if ts == "" || len(ts) > 16 || strings.TrimLeft(ts, "0123456789") != "" || (len(ts) > 1 && ts[0] == '0') {
		return Token{}, &TokenError{Reason: "timestamp must be decimal Unix milliseconds without leading zeros"}
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return Token{}, &TokenError{Reason: "timestamp: " + err.Error()}
	}
	nonce := parts[2]
	if len(nonce) < MinNonceHex || len(nonce) > MaxNonceHex || len(nonce)%2 != 0 {
		return Token{}, &TokenError{Reason: fmt.Sprintf("nonce must be %d-%d lowercase hex digits (even count)", MinNonceHex, MaxNonceHex)}
	}
	if strings.ToLower(nonce) != nonce {
		return Token{}, &TokenError{Reason: "nonce must be lowercase hex"}
	}
	if _, err := hex.DecodeString(nonce); err != nil {
		return Token{}, &TokenError{Reason: "nonce is not hex"}
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(parts[3])
	// Strict decoding still skips CR and LF; the canonical encoding is the
	// only spelling accepted.
	if err != nil || base64.StdEncoding.EncodeToString(sig) != parts[3] {
		return Token{}, &TokenError{Reason: "signature is not standard base64"}
	}
	if len(sig) == 0 || len(sig) > reading.MaxSignatureBytes {
		return Token{}, &TokenError{Reason: fmt.Sprintf("signature must be 1-%d bytes", reading.MaxSignatureBytes)}
	}
	return Token{TimestampMS: ms, Nonce: nonce, Signature: sig}, nil
}

// Time is the token's timestamp.
func (t Token) Time() time.Time { return time.UnixMilli(t.TimestampMS) }

// AuthPayload is the payload a device signs (under reading.DomainAuth) to
// connect to a hub: hubID "\n" deviceID "\n" ts "\n" nonce.
func AuthPayload(hubID, deviceID string, tsMS int64, nonce string) []byte {
	return []byte(hubID + "\n" + deviceID + "\n" + strconv.FormatInt(tsMS, 10) + "\n" + nonce)
}

// Verify checks the token's signature for a device connecting to a hub.
func (t Token) Verify(key *reading.PublicKey, hubID, deviceID string) error {
	msg := reading.Message(reading.DomainAuth, AuthPayload(hubID, deviceID, t.TimestampMS, t.Nonce))
	return key.Verify(msg, t.Signature)
}

// SignToken makes the connect password of a device for a hub.
func SignToken(s *reading.Signer, hubID, deviceID string, at time.Time, nonce []byte) (string, error) {
	if len(nonce)*2 < MinNonceHex || len(nonce)*2 > MaxNonceHex {
		return "", &TokenError{Reason: fmt.Sprintf("nonce must be %d-%d bytes", MinNonceHex/2, MaxNonceHex/2)}
	}
	ms := at.UnixMilli()
	n := hex.EncodeToString(nonce)
	sig, err := s.Sign(reading.DomainAuth, AuthPayload(hubID, deviceID, ms, n))
	if err != nil {
		return "", err
	}
	return TokenVersion + "." + strconv.FormatInt(ms, 10) + "." + n + "." + base64.StdEncoding.EncodeToString(sig), nil
}
