package wire

import "encoding/json"

// Refusal reasons the hub reports on a device's errors topic, in the reason
// string of an MQTT 5 PUBACK, and as the "reason" label of its metrics.
const (
	ReasonMalformed      = "malformed"         // not an envelope, or the payload does not parse
	ReasonWrongDevice    = "wrong_device"      // payload names another device than the connected one
	ReasonBadSignature   = "bad_signature"     // signature does not verify with the enrolled key
	ReasonReplay         = "replay"            // (device, seq) already accepted with other content
	ReasonDeviceInactive = "device_inactive"   // device is not active on the ledger
	ReasonUnknownDevice  = "unknown_device"    // device is not enrolled (or not readable by this hub)
	ReasonNotAuthorized  = "not_authorized"    // topic not allowed for this device
	ReasonUnavailable    = "unavailable"       // hub could not store the message; retry later
	ReasonLedgerRefused  = "ledger_refused"    // the ledger refused a message the hub had accepted
	ReasonUnknownCommand = "unknown_command"   // ack for a command that does not exist / not this device's
	ReasonTooLarge       = "payload_too_large" // message exceeds the size limit
	ReasonUndeliverable  = "undeliverable"     // an inbox message that cannot reach its recipient (offline, another hub, or expired)
	ReasonRateLimited    = "rate_limited"      // the device publishes faster than its quota; not stored, send it again later
)

// ReasonEnvelopeTooLarge refuses a telemetry or ack envelope over its size
// limit (ReasonTooLarge is for the signed payload inside it, and for inbox
// messages).
const ReasonEnvelopeTooLarge = "envelope_too_large"

// ErrorMessage is what the hub publishes on iotledger/v1/devices/<id>/errors
// when it refuses something a device sent.
type ErrorMessage struct {
	Reason  string `json:"reason"`            // one of the Reason constants
	Message string `json:"message"`           // human-readable detail
	Topic   string `json:"topic"`             // topic of the refused message
	Seq     uint64 `json:"seq,omitempty"`     // reading sequence, when known
	Command string `json:"command,omitempty"` // command id, for refused acks
	Ts      int64  `json:"ts"`                // hub clock, Unix ms
}

// InboxMessage is what a device receives on its inbox topic: the hub wraps
// the sender's payload and stamps the sender, which it authenticated.
type InboxMessage struct {
	From    string          `json:"from"`    // sending device id (authenticated by the hub)
	To      string          `json:"to"`      // receiving device id (bound by the hub's signature)
	Hub     string          `json:"hub"`     // id of the hub that relayed it
	Ts      int64           `json:"ts"`      // hub clock when relayed, Unix ms
	Payload json.RawMessage `json:"payload"` // the sender's bytes if they are JSON, else a JSON string of base64
}

// MaxInboxBytes bounds a device-to-device message.
const MaxInboxBytes = 8 * 1024
