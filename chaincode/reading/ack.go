package reading

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxAckResultBytes bounds an ack's result text. It is the one limit: the
// hub refuses a longer result before its PUBACK and the chaincode refuses it
// in command:Ack, so an ack the hub stores is one the ledger can take.
const MaxAckResultBytes = 1024

// CommandStatus is a command's lifecycle state as the ledger records it:
// pending → delivered → acked | failed | expired. A device's ack reports one
// of the two final states the device decides (chaincode/api names the rest).
type CommandStatus string

// The states an ack may report.
const (
	CommandAcked  CommandStatus = "acked"
	CommandFailed CommandStatus = "failed"
)

// Ack is what a device signs (domain DomainAck) to acknowledge a command; it
// travels as an Envelope.
type Ack struct {
	Device  string        `json:"device"`
	Command string        `json:"command"`
	Status  CommandStatus `json:"status"` // "acked" or "failed"
	Result  string        `json:"result,omitempty"`
	Ts      int64         `json:"ts"` // device clock, Unix ms
}

// AckError says why an ack was refused and which part is at fault.
type AckError struct {
	Field  string // payload, signature, device, command, status or result
	Reason string
	Err    error // the underlying *DecodeError or *ValidationError, if any
}

func (e *AckError) Error() string { return "ack " + e.Field + ": " + e.Reason }

func (e *AckError) Unwrap() error { return e.Err }

// ParseAck checks an ack envelope's sizes and decodes and validates its
// payload. The signature is not checked: verify Message(DomainAck,
// env.Payload) with the device's enrolled key.
func ParseAck(env Envelope) (Ack, error) {
	if len(env.Payload) == 0 || len(env.Payload) > MaxPayloadBytes {
		return Ack{}, &AckError{Field: "payload", Reason: fmt.Sprintf("must be 1..%d bytes, got %d", MaxPayloadBytes, len(env.Payload))}
	}
	if len(env.Signature) == 0 || len(env.Signature) > MaxSignatureBytes {
		return Ack{}, &AckError{Field: "signature", Reason: fmt.Sprintf("must be 1..%d bytes, got %d", MaxSignatureBytes, len(env.Signature))}
	}
	var a Ack
	if err := DecodeStrict(env.Payload, &a); err != nil {
		return Ack{}, &AckError{Field: "payload", Reason: "not JSON of {device, command, status, result, ts}: " + err.Error(), Err: err}
	}
	for _, id := range []struct{ field, value string }{{"device", a.Device}, {"command", a.Command}} {
		if err := ValidateID(id.field, id.value); err != nil {
			reason := err.Error()
			if ve := (*ValidationError)(nil); errors.As(err, &ve) {
				reason = ve.Reason
			}
			return Ack{}, &AckError{Field: id.field, Reason: reason, Err: err}
		}
	}
	if a.Status != CommandAcked && a.Status != CommandFailed {
		return Ack{}, &AckError{Field: "status", Reason: fmt.Sprintf("%q must be %q or %q", a.Status, CommandAcked, CommandFailed)}
	}
	if len(a.Result) > MaxAckResultBytes || !utf8.ValidString(a.Result) {
		return Ack{}, &AckError{Field: "result", Reason: fmt.Sprintf("must be UTF-8 of at most %d bytes (got %d bytes)", MaxAckResultBytes, len(a.Result))}
	}
	return a, nil
}
