package device

import (
	"errors"
	"fmt"
	"strings"

	"github.com/iotledger/iotledger/client/hub/wire"
)

// Sentinel errors of a Device.
var (
	// ErrClosed: Close was called.
	ErrClosed = errors.New("device: closed")
	// ErrNotConnected: the device has no connection and does not reconnect
	// on its own (Config.Reconnect unset, or Connect never succeeded).
	ErrNotConnected = errors.New("device: not connected to the hub")
	// ErrAlreadyConnected: Connect was called on a connected device.
	ErrAlreadyConnected = errors.New("device: already connected")
	// ErrConnectionLost: the connection ended before the hub acknowledged a
	// message. The message may or may not have been stored: send the same
	// bytes again (the hub answers an identical resend with success).
	ErrConnectionLost = errors.New("device: connection to the hub lost")
	// ErrNoPuback: the hub did not acknowledge a message within
	// Config.AckTimeout.
	ErrNoPuback = errors.New("device: no PUBACK from the hub")
)

// ConfigError says which setting of a Config is wrong.
type ConfigError struct{ Field, Reason string }

func (e *ConfigError) Error() string { return "device config: " + e.Field + ": " + e.Reason }

// Connection steps a ConnectError names.
const (
	StepDial      = "dial"      // TCP connection to the hub
	StepTLS       = "tls"       // TLS handshake: the hub's certificate is checked against Config.RootCAs
	StepConnect   = "connect"   // MQTT CONNECT with the signed token
	StepSubscribe = "subscribe" // SUBSCRIBE to the device's commands, errors and inbox
)

// ConnectError is why one connection attempt failed. When the hub refused
// it (Refused), Code is the MQTT 5 reason code of its CONNACK or SUBACK;
// the hub does not say on the wire why it refused a token (its log and the
// metric iotledger_hub_auth_failures_total do).
type ConnectError struct {
	Hub    string // host:port
	Step   string // StepDial, StepTLS, StepConnect or StepSubscribe
	Code   byte   // reason code of a refusal (≥ 0x80), 0 otherwise
	Reason string // the hub's reason string, if it sent one
	Topic  string // refused subscription, for StepSubscribe
	Err    error
}

// Refused tells a refusal by the hub from a failure to reach it.
func (e *ConnectError) Refused() bool { return e.Code >= 0x80 }

func (e *ConnectError) Error() string {
	switch {
	case e.Step == StepSubscribe && e.Refused():
		return fmt.Sprintf("hub refused the subscription to %s (reason code %#02x)", e.Topic, e.Code)
	case e.Refused():
		why := e.Reason
		if why == "" {
			why = "no reason given"
		}
		return fmt.Sprintf("hub refused the connection: %s (reason code %#02x)", why, e.Code)
	case e.Step == StepTLS:
		return fmt.Sprintf("TLS handshake with hub %s: %v", e.Hub, e.Err)
	case e.Step == StepDial:
		return fmt.Sprintf("cannot reach hub %s: %v", e.Hub, e.Err)
	}
	return fmt.Sprintf("hub %s: %s: %v", e.Hub, e.Step, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// DisconnectError is why an established connection ended: the hub sent
// DISCONNECT (Code ≥ 0x80, e.g. 0x87 "device revoked on the ledger") or the
// network failed (Err). It matches ErrConnectionLost with errors.Is.
type DisconnectError struct {
	Code   byte
	Reason string
	Err    error
}

func (e *DisconnectError) Error() string {
	if e.Err != nil {
		return "connection to the hub lost: " + e.Err.Error()
	}
	why := e.Reason
	if why == "" {
		why = "no reason given"
	}
	return fmt.Sprintf("disconnected by the hub: %s (reason code %#02x)", why, e.Code)
}

func (e *DisconnectError) Unwrap() error { return e.Err }

// Is makes every DisconnectError match ErrConnectionLost.
func (e *DisconnectError) Is(target error) bool { return target == ErrConnectionLost }

// RefusedError is a message the hub refused: the reason of its MQTT 5
// PUBACK (reason string "<reason>: <detail>") or, when the PUBACK carried
// none or never came, of the message on the device's errors topic. Reason
// is one of the wire.Reason* values (docs/protocol.md §4), or "code_0x.."
// when the hub named none.
type RefusedError struct {
	Topic   string
	Seq     uint64 // reading sequence, for telemetry
	Command string // command id, for acks
	Reason  string
	Code    byte // PUBACK reason code; 0 when the refusal came on the errors topic only
	Message string
}

func (e *RefusedError) Error() string {
	what := "message on " + e.Topic
	switch {
	case e.Seq != 0:
		what = fmt.Sprintf("reading %d", e.Seq)
	case e.Command != "":
		what = "ack of command " + e.Command
	}
	s := fmt.Sprintf("hub refused %s: %s", what, e.Reason)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Temporary tells a refusal worth resending later (the hub could not store
// the message, or the device is over its publish rate: MQTT 5 "quota
// exceeded") from a final one. Resend the same envelope, not a re-signed one.
func (e *RefusedError) Temporary() bool {
	return e.Reason == wire.ReasonUnavailable || e.Reason == reasonRateLimited || e.Code == codeQuotaExceeded
}

const (
	// reasonRateLimited is the hub's reason for a publish over the
	// device's rate.
	reasonRateLimited = "rate_limited"
	// codeQuotaExceeded is MQTT 5's reason code 0x97, "quota exceeded".
	codeQuotaExceeded = 0x97
)

// ReasonOf returns the hub's refusal reason carried by err, or "" when err
// is not a RefusedError.
func ReasonOf(err error) string {
	var r *RefusedError
	if errors.As(err, &r) {
		return r.Reason
	}
	return ""
}

// splitReasonString reads the hub's PUBACK reason string "<reason>:
// <detail>"; a string that does not start with a reason token is detail.
func splitReasonString(s string) (reason, detail string) {
	r, d, ok := strings.Cut(s, ":")
	if !ok || r == "" || strings.TrimLeft(r, "abcdefghijklmnopqrstuvwxyz_") != "" {
		return "", s
	}
	return r, strings.TrimSpace(d)
}
