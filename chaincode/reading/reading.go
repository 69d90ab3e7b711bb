// Package reading defines the device wire format shared by the chaincode, the
// hub, the simulator and the CLI: what a device signs, how it is encoded on
// the wire, how its signature is checked against the key enrolled on the
// ledger, and how batches of readings are committed to with a Merkle tree.
//
// A device never sends a structure that has to be re-serialised before its
// signature can be checked. It signs the exact bytes of a JSON payload and
// ships those bytes base64-encoded next to the signature:
//
//	Envelope  = {"p": base64(payload bytes), "s": base64(signature)}
//	message   = domain || payload bytes        (domain e.g. "iotledger-reading-v1\n")
//	signature = ECDSA P-256 ASN.1 DER over SHA-256(message), or Ed25519 over message
//
// Every JSON input is decoded with DecodeStrict, so the signed bytes mean the
// same to any JSON parser: duplicate keys, case variants of field names,
// unknown keys, invalid UTF-8 and trailing data are refused.
//
// Nothing in this package reads a clock or a random source except Sign's
// ECDSA nonce, so it is safe to call from chaincode.
package reading

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// Signature domains. Each kind of signed message has its own prefix so a
// signature made for one purpose can never be replayed as another.
const (
	DomainReading = "iotledger-reading-v1\n"
	DomainAck     = "iotledger-ack-v1\n"
	DomainAuth    = "iotledger-auth-v1\n"
	DomainMessage = "iotledger-message-v1\n"
)

// Limits on untrusted input. They bound the work a peer or a hub does for one
// message and keep ledger entries small.
const (
	MaxPayloadBytes   = 8 * 1024
	MaxSignatureBytes = 128
	MaxValues         = 64
	MaxIDLength       = 128
	MaxNameLength     = 64
	MaxUnitLength     = 16
	MaxStringValue    = 256
)

// Value is one SenML-style measurement: a name, an optional unit and exactly
// one of a number, a string or a boolean.
type Value struct {
	Name   string   `json:"n"`
	Unit   string   `json:"u,omitempty"`
	Number *float64 `json:"v,omitempty"`
	String *string  `json:"vs,omitempty"`
	Bool   *bool    `json:"vb,omitempty"`
}

// Payload is what a device reports in one reading.
type Payload struct {
	Device    string  `json:"device"`
	Seq       uint64  `json:"seq"`
	Timestamp int64   `json:"ts"` // device clock, Unix milliseconds
	Values    []Value `json:"values"`
}

// Envelope carries the signed payload bytes and the device's signature.
type Envelope struct {
	Payload   []byte `json:"p"`
	Signature []byte `json:"s"`
}

// Reading is a decoded, structurally valid envelope. Its signature has not
// been checked yet: call Verify with the device's enrolled key.
type Reading struct {
	Payload
	Raw       []byte // payload bytes exactly as signed
	Signature []byte
}

// ValidationError says what is wrong with a message and where.
type ValidationError struct {
	Field  string
	Reason string
	Err    error // the *DecodeError when the JSON itself was refused
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return "invalid reading: " + e.Reason
	}
	return fmt.Sprintf("invalid reading: %s: %s", e.Field, e.Reason)
}

func (e *ValidationError) Unwrap() error { return e.Err }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// decodeFailed reports JSON that DecodeStrict refused.
func decodeFailed(field, what string, err error) error {
	return &ValidationError{Field: field, Reason: what + ": " + err.Error(), Err: err}
}

// ParseEnvelope decodes {"p":…,"s":…} bytes received from a device.
func ParseEnvelope(data []byte) (Envelope, error) {
	var env Envelope
	if err := DecodeStrict(data, &env); err != nil {
		return Envelope{}, decodeFailed("", "envelope is not {\"p\": base64, \"s\": base64}", err)
	}
	return env, nil
}

// Decode checks the envelope's structure and parses its payload.
func (e Envelope) Decode() (*Reading, error) {
	if len(e.Payload) == 0 {
		return nil, invalid("p", "missing payload")
	}
	if len(e.Payload) > MaxPayloadBytes {
		return nil, invalid("p", "payload is %d bytes, the limit is %d", len(e.Payload), MaxPayloadBytes)
	}
	if len(e.Signature) == 0 {
		return nil, invalid("s", "missing signature")
	}
	if len(e.Signature) > MaxSignatureBytes {
		return nil, invalid("s", "signature is %d bytes, the limit is %d", len(e.Signature), MaxSignatureBytes)
	}
	p, err := ParsePayload(e.Payload)
	if err != nil {
		return nil, err
	}
	return &Reading{Payload: p, Raw: e.Payload, Signature: e.Signature}, nil
}

// ParsePayload decodes and validates reading payload bytes.
func ParsePayload(data []byte) (Payload, error) {
	var p Payload
	if err := DecodeStrict(data, &p); err != nil {
		return Payload{}, decodeFailed("p", "payload is not valid reading JSON", err)
	}
	return p, p.Validate()
}

// Validate checks a payload's fields.
func (p Payload) Validate() error {
	if err := ValidateID("device", p.Device); err != nil {
		return err
	}
	if p.Seq == 0 {
		return invalid("seq", "must be a positive integer (sequence numbers start at 1)")
	}
	if p.Timestamp <= 0 {
		return invalid("ts", "must be Unix milliseconds > 0")
	}
	if len(p.Values) == 0 {
		return invalid("values", "at least one value is required")
	}
	if len(p.Values) > MaxValues {
		return invalid("values", "%d values, the limit is %d", len(p.Values), MaxValues)
	}
	seen := make(map[string]bool, len(p.Values))
	for i, v := range p.Values {
		field := fmt.Sprintf("values[%d]", i)
		if err := v.validate(field); err != nil {
			return err
		}
		if seen[v.Name] {
			return invalid(field, "duplicate name %q", v.Name)
		}
		seen[v.Name] = true
	}
	return nil
}

func (v Value) validate(field string) error {
	if v.Name == "" || len(v.Name) > MaxNameLength || !printable(v.Name) {
		return invalid(field+".n", "name must be 1-%d printable characters", MaxNameLength)
	}
	if len(v.Unit) > MaxUnitLength || !printable(v.Unit) {
		return invalid(field+".u", "unit must be at most %d printable characters", MaxUnitLength)
	}
	n := 0
	if v.Number != nil {
		n++
		if math.IsNaN(*v.Number) || math.IsInf(*v.Number, 0) {
			return invalid(field+".v", "must be a finite number")
		}
	}
	if v.String != nil {
		n++
		if len(*v.String) > MaxStringValue || !utf8.ValidString(*v.String) {
			return invalid(field+".vs", "must be valid UTF-8 of at most %d bytes", MaxStringValue)
		}
	}
	if v.Bool != nil {
		n++
	}
	if n != 1 {
		return invalid(field, "exactly one of v, vs, vb is required, got %d", n)
	}
	return nil
}

// ValidateID checks an identifier (device, command, group...): 1-128
// characters of letters, digits and . _ - : @.
func ValidateID(field, id string) error {
	if id == "" {
		return invalid(field, "is required")
	}
	if len(id) > MaxIDLength {
		return invalid(field, "%q is longer than %d characters", id[:16]+"…", MaxIDLength)
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("._-:@", r):
		default:
			return invalid(field, "%q contains %q; use letters, digits and . _ - : @", id, r)
		}
	}
	return nil
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return false
		}
	}
	return utf8.ValidString(s)
}

// Message returns the bytes a device signs for a payload in a domain.
func Message(domain string, payload []byte) []byte {
	msg := make([]byte, 0, len(domain)+len(payload))
	msg = append(msg, domain...)
	return append(msg, payload...)
}

// SignedMessage is the message the reading's signature covers.
func (r *Reading) SignedMessage() []byte { return Message(DomainReading, r.Raw) }

// Verify checks the reading's signature with the device's enrolled key.
func (r *Reading) Verify(key *PublicKey) error {
	return key.Verify(r.SignedMessage(), r.Signature)
}

// LeafHash is the reading's Merkle leaf: it commits to both the signed bytes
// and the signature, so a proof shows exactly what the device sent.
func (r *Reading) LeafHash() [32]byte { return LeafHash(r.Raw, r.Signature) }

// Value returns the named value, if present.
func (p Payload) Value(name string) (Value, bool) {
	for _, v := range p.Values {
		if v.Name == name {
			return v, true
		}
	}
	return Value{}, false
}

// Encode renders an envelope as the JSON a device publishes.
func (e Envelope) Encode() []byte {
	out, err := json.Marshal(e)
	if err != nil { // cannot happen for two byte slices
		panic(err)
	}
	return out
}

// ErrBadSignature is returned when a signature does not verify.
var ErrBadSignature = errors.New("signature does not verify with the enrolled key")
